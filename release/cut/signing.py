"""`SHA256SUMS` of a release's artefacts, its ssh signature (`ssh-keygen -Y`), and checking both.

Every file under the output folder is an artefact except hidden ones (a dot at the start of any
component: the cut's state and lock, temporaries, journals) and the checksum file and signature
themselves. Lines are `sha256sum -c` compatible and sorted by path, so the file is the same bytes
whenever the artefacts are. The signature uses the namespace `booru-release`; checking it needs an
allowed-signers file (`ssh-keygen(1)`, ALLOWED SIGNERS) naming the maintainer's public key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel

from release.atomic import atomic_output
from release.errors import BadInput, ConsistencyFailure, InputIOError
from release.hashing import hash_path
from release.progress import ProgressFn, Ticker, no_progress

CHECKSUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
NAMESPACE = "booru-release"


def artefacts(folder: Path) -> list[str]:
    """The artefacts under `folder`, as sorted POSIX paths relative to it."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and not (top == str(folder) and name in (CHECKSUMS, SIGNATURE)):
                found.append(Path(top, name).relative_to(folder).as_posix())
    return sorted(found)


def _sha256(path: Path, ticker: Ticker) -> str:
    digests, nbytes, error = hash_path(str(path), ("sha256",))
    if error is not None:
        raise InputIOError(str(path), f"cannot read: {error}")
    ticker.add(0, nbytes)
    return digests[0]


def write_checksums(folder: Path, progress: ProgressFn = no_progress) -> tuple[Path, int]:
    """Write `folder/SHA256SUMS` of every artefact; return its path and the artefact count."""
    names = artefacts(folder)
    ticker = Ticker(progress, "sha256", len(names), sum((folder / n).stat().st_size for n in names))
    target = folder / CHECKSUMS
    with atomic_output(target) as out:
        for name in names:
            out.write(f"{_sha256(folder / name, ticker)}  {name}\n".encode("utf-8", "surrogateescape"))
            ticker.add(1)
    ticker.finish()
    return target, len(names)


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise BadInput("ssh-keygen", "is not installed", "install openssh-client")
    return found


def sign(listing: Path, key: Path) -> Path:
    """Sign `listing` with the ssh private `key`; write `<listing>.sig` atomically and return it."""
    with open(listing, "rb") as data:
        done = subprocess.run(
            [_ssh_keygen(), "-Y", "sign", "-f", str(key), "-n", NAMESPACE], stdin=data, capture_output=True
        )
    if done.returncode != 0:
        problem = done.stderr.decode(errors="replace").strip() or f"ssh-keygen exited {done.returncode}"
        raise BadInput(str(key), f"cannot sign with this key: {problem}", "a passphrase-less key, or an ssh-agent")
    target = listing.with_name(listing.name + ".sig")
    with atomic_output(target) as out:
        out.write(done.stdout)
    return target


class SignatureReport(BaseModel):
    """What `verify --signature` found."""

    folder: str
    signer: str
    artefacts: int
    bad: list[str]
    missing: list[str]
    unlisted: list[str]

    @property
    def failed(self) -> bool:
        """True when an artefact differs from SHA256SUMS, is missing, or is not listed."""
        return bool(self.bad or self.missing or self.unlisted)


def _signer(listing: Path, signature: Path, allowed: Path) -> str:
    """The principal of `allowed` whose key made `signature` over `listing`; ConsistencyFailure if none."""
    tool = _ssh_keygen()
    found = subprocess.run(
        [tool, "-Y", "find-principals", "-s", str(signature), "-f", str(allowed)], capture_output=True, text=True
    )
    principals = found.stdout.split()
    if found.returncode != 0 or not principals:
        raise ConsistencyFailure(str(signature), "not signed by any key of the allowed signers", str(allowed))
    with open(listing, "rb") as data:
        checked = subprocess.run(
            [tool, "-Y", "verify", "-f", str(allowed), "-I", principals[0], "-n", NAMESPACE, "-s", str(signature)],
            stdin=data,
            capture_output=True,
        )
    if checked.returncode != 0:
        raise ConsistencyFailure(str(listing), "the signature does not match this SHA256SUMS (edited since?)")
    return principals[0]


def read_checksums(listing: Path) -> dict[str, str]:
    """The artefacts a SHA256SUMS file lists (relative path -> sha256)."""
    expected: dict[str, str] = {}
    for number, line in enumerate(listing.read_text(encoding="utf-8", errors="surrogateescape").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or name.startswith("/") or ".." in name.split("/"):
            raise BadInput(f"{listing}:{number}", "not a `sha256sum` line with a safe relative path")
        expected[name] = digest
    return expected


def listed_together(files: list[Path]) -> bool:
    """Whether one release's SHA256SUMS (beside the first of `files`) lists every one of them with its
    current sha256: then they are artefacts of one cut, as it wrote them. False when it cannot tell."""
    folder = files[0].resolve().parent
    try:
        expected = read_checksums(folder / CHECKSUMS)
        names = [path.resolve().relative_to(folder).as_posix() for path in files]
    except (OSError, ValueError, BadInput):
        return False
    ticker = Ticker(no_progress, "sha256", len(files))
    try:
        return all(name in expected and _sha256(folder / name, ticker) == expected[name] for name in names)
    except InputIOError:
        return False


def verify_signed(folder: Path, allowed: Path, progress: ProgressFn = no_progress) -> SignatureReport:
    """Check `folder/SHA256SUMS.sig` against the allowed signers, then every artefact against SHA256SUMS."""
    listing, signature = folder / CHECKSUMS, folder / SIGNATURE
    for needed in (listing, signature, allowed):
        if not needed.is_file():
            raise BadInput(str(needed), "no such file")
    signer = _signer(listing, signature, allowed)
    expected = read_checksums(listing)
    ticker = Ticker(progress, "sha256", len(expected))
    report = SignatureReport(
        folder=str(folder), signer=signer, artefacts=len(expected), bad=[], missing=[], unlisted=[]
    )
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            report.missing.append(name)
        elif _sha256(path, ticker) != digest:
            report.bad.append(name)
        ticker.add(1)
    ticker.finish()
    report.unlisted = [name for name in artefacts(folder) if name not in expected]
    return report
