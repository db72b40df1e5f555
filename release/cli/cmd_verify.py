"""`booru-release verify`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer
from rich.table import Table

from release.atomic import atomic_output
from release.cli import app
from release.cli.errors import EXIT_FAILED, command
from release.cli.output import (
    IO_DEPTH_DEFAULT,
    IoDepthOpt,
    JsonOpt,
    ProgressView,
    WorkersOpt,
    emit_json,
    human_bytes,
    message,
    one_stdout,
    out_console,
)
from release.cli.s3_opts import AddressingOpt, EndpointOpt, NameOpt, ProfileOpt, RegionOpt, make_store
from release.errors import BadInput
from release.filelists import write_list

if TYPE_CHECKING:
    from release.verify import Mode, VerifyReport

SHOWN_PROBLEMS = 50


@app.command(
    "verify",
    epilog="""[b]Examples[/b]

  booru-release verify danbooru2019 --manifest danbooru2019.manifest.jsonl.zst

  booru-release verify mydl --manifest m.jsonl.zst --files-from buckets-0000-0099.txt --refetch-list refetch.txt

  booru-release verify danbooru2019 --manifest m.jsonl.zst --fast --complete

  booru-release verify downloads/danbooru2019 --torrent danbooru2019-0.torrent --torrent danbooru2019-1.torrent

  # a cut's artefacts: SHA256SUMS.sig made by a key of allowed_signers, then every artefact's sha256
  booru-release verify out/danbooru2019 --signature allowed_signers
""",
)
@command
def verify_cmd(
    root_arg: Annotated[
        str, typer.Argument(metavar="ROOT", help="Downloaded (possibly partial) release root, or s3://BUCKET/PREFIX.")
    ],
    manifest: Annotated[Path | None, typer.Option(help="Manifest to check against.")] = None,
    torrent: Annotated[
        list[Path] | None,
        typer.Option(help="Check against .torrent files instead (repeatable): piece by piece, no manifest."),
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Presence and size only, no hashing.")] = False,
    strong: Annotated[bool, typer.Option("--strong", help="Compare sha256 instead of xxh3-128.")] = False,
    files_from: Annotated[
        Path | None, typer.Option(help="rsync --files-from list: only these files are expected.")
    ] = None,
    complete: Annotated[bool, typer.Option("--complete", help="Also fail on MISSING and EXTRA files.")] = False,
    refetch_list: Annotated[
        Path | None, typer.Option(help="Write CORRUPT and MISSING paths as a --files-from list (-: stdout).")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write every file's status as JSON lines (-: stdout).")] = None,
    workers: WorkersOpt = None,
    io_depth: IoDepthOpt = IO_DEPTH_DEFAULT,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    addressing_style: AddressingOpt = "auto",
    name: NameOpt = None,
    signature: Annotated[
        Path | None,
        typer.Option(help="ROOT is a cut's output: check SHA256SUMS.sig against this allowed-signers file."),
    ] = None,
    deep: Annotated[bool, typer.Option("--deep", help="s3://: download and hash (see --sample).")] = False,
    sample: Annotated[float, typer.Option(help="s3:// --deep: the fraction of objects to download.")] = 1.0,
    json_out: JsonOpt = False,
) -> int:
    """Check a full or partial download file by file: OK / CORRUPT / MISSING / EXTRA.

    s3://BUCKET/PREFIX checks a mirror from its listing (size and ETag; --deep downloads and hashes).

    With --torrent: piece by piece, OK / CORRUPT / SUSPECT (shares a failed piece) / MISSING / UNCHECKED.
    Exit 0 when every present file is OK (MISSING and EXTRA fail only with --complete), 1 otherwise.
    """
    one_stdout(json_out, refetch_list=refetch_list, report=report)
    if signature is not None:
        if manifest is not None or torrent or files_from is not None:
            raise BadInput("--signature", "--signature works alone: not with --manifest, --torrent, --files-from")
        return _verify_signature(Path(root_arg), signature, json_out)
    if root_arg.startswith("s3://"):
        if manifest is None or torrent or fast or strong or files_from is not None:
            raise BadInput("s3://", "a bucket is checked with --manifest alone (and --deep, --sample)")
        if not 0 < sample <= 1:
            raise BadInput("--sample", "a fraction in (0, 1]")
        from release.publish.check import parse_s3_url, verify_bucket

        bucket, prefix = parse_s3_url(root_arg)
        store = make_store(bucket, prefix, endpoint_url, profile, region, addressing_style, "when_required", 16)
        return _finish(
            lambda rep, ref, view: verify_bucket(
                store, manifest, name=name, deep=deep, sample=sample, complete=complete, report_out=rep,
                refetch_out=ref, progress=view,
            ),
            refetch_list, report, json_out,
        )  # fmt: skip
    root = Path(root_arg)
    if torrent:
        if manifest is not None or fast or strong or files_from is not None or report is not None:
            raise BadInput("--torrent", "--torrent works alone: not with --manifest, --fast, --strong, --files-from")
        return _verify_torrents(root, torrent, complete, refetch_list, workers, json_out)
    if manifest is None:
        raise BadInput("--manifest", "verify needs --manifest FILE or --torrent FILE")
    if fast and strong:
        raise BadInput("--fast/--strong", "choose one of --fast and --strong")
    from release.verify import verify_tree  # imported here: keeps `--help` and other commands fast

    mode: Mode = "fast" if fast else "sha256" if strong else "xxh3_128"
    return _finish(
        lambda rep, ref, view: verify_tree(
            root, manifest, mode=mode, files_from=files_from, complete=complete, report_out=rep, refetch_out=ref,
            workers=workers, io_depth=io_depth, progress=view,
        ),
        refetch_list, report, json_out,
    )  # fmt: skip


def _verify_signature(folder: Path, allowed: Path, json_out: bool) -> int:
    from release.cut.signing import verify_signed

    with ProgressView(not json_out) as view:
        result = verify_signed(folder, allowed, view)
    if json_out:
        emit_json(result.model_dump() | {"failed": result.failed})
    else:
        message(f"SHA256SUMS signed by {result.signer}: {result.artefacts:,} artefacts listed")
        for label, names in (("differs", result.bad), ("missing", result.missing), ("not listed", result.unlisted)):
            for name in names[:SHOWN_PROBLEMS]:
                message(f"  [red]{label}[/] {name}")
        message("[red]FAILED[/]" if result.failed else "[green]OK[/]: every artefact matches")
    return EXIT_FAILED if result.failed else 0


def _finish(
    check: Callable[[BinaryIO | None, BinaryIO | None, ProgressView], VerifyReport],
    refetch_list: Path | None,
    report: Path | None,
    json_out: bool,
) -> int:
    """Run a check with its report and refetch outputs; print or emit the result; the exit code."""
    with contextlib.ExitStack() as stack, ProgressView(not json_out) as view:
        refetch_out: BinaryIO | None = stack.enter_context(atomic_output(refetch_list)) if refetch_list else None
        report_out: BinaryIO | None = stack.enter_context(atomic_output(report)) if report else None
        result = check(report_out, refetch_out, view)
    if json_out:
        emit_json(result.model_dump() | {"failed": result.failed})
    else:
        _print(result)
    return EXIT_FAILED if result.failed else 0


def _print(result: VerifyReport) -> None:
    from release.verify import STATUSES

    console = out_console()
    table = Table("subset", "range", *STATUSES)
    for subset, ranges in sorted(result.by_range.items()):
        for label, counts in sorted(ranges.items()):
            table.add_row(subset, label, *(f"{getattr(counts, s):,}" for s in STATUSES))
    table.add_row("[b]all[/b]", "", *(f"[b]{getattr(result.totals, s):,}[/b]" for s in STATUSES))
    console.print(table)
    order = {"CORRUPT": 0, "EXTRA": 1, "MISSING": 2}
    shown = sorted(result.problems, key=lambda p: order[p.status])[:SHOWN_PROBLEMS]
    for problem in shown:
        console.print(f"{problem.status:8} {problem.path}  ({problem.reason})")
    hidden = result.totals.CORRUPT + result.totals.MISSING + result.totals.EXTRA - len(shown)
    if hidden > 0:
        console.print(f"… {hidden:,} more not shown (use --report FILE or --json)")
    if result.listed_not_in_manifest:
        message(f"{result.listed_not_in_manifest:,} listed path(s) are neither in the manifest nor on disk")
    totals = result.totals
    if totals.MISSING and not (totals.OK or totals.CORRUPT) and result.root and not result.files_from:
        message(
            f"[yellow]None of the manifest's {totals.MISSING:,} files is in {result.root}[/]: is it the release's "
            "root (the folder that holds original/ and metadata/)?"
        )
    verdict = "FAILED" if result.failed else "OK"
    console.print(
        f"{verdict}: {result.totals.OK:,} files OK, {human_bytes(result.bytes_checked)} checked ({result.mode})"
    )


def _verify_torrents(
    root: Path, torrents: list[Path], complete: bool, refetch_list: Path | None, workers: int | None, json_out: bool
) -> int:
    from release.torrents.check import STATUSES, check_torrent

    results = []
    with ProgressView(not json_out) as view:
        for torrent in torrents:
            results.append(check_torrent(root, torrent, workers, view))
    failed = any(r.failed(complete) for r in results)
    if refetch_list is not None:
        wanted = {"CORRUPT", "SUSPECT", "MISSING", "UNCHECKED"}
        paths = sorted({p.path for r in results for p in r.problems if p.status in wanted})
        with atomic_output(refetch_list) as handle:
            write_list(handle, paths)
    if json_out:
        emit_json({"torrents": [r.model_dump() | {"failed": r.failed(complete)} for r in results], "failed": failed})
        return EXIT_FAILED if failed else 0
    console = out_console()
    table = Table("torrent", "pieces ok", "failed", "unchecked", *STATUSES)
    for r in results:
        table.add_row(
            Path(r.torrent).name,
            f"{r.pieces_ok:,}",
            f"{r.pieces_failed:,}",
            f"{r.pieces_unchecked:,}",
            *(f"{r.counts[s]:,}" for s in STATUSES),
        )
    console.print(table)
    problems = [p for r in results for p in r.problems]
    for problem in problems[:SHOWN_PROBLEMS]:
        console.print(f"{problem.status:9} {problem.path}  ({problem.reason})")
    if len(problems) > SHOWN_PROBLEMS:
        console.print(f"… {len(problems) - SHOWN_PROBLEMS:,} more not shown (use --json)")
    ok = sum(r.counts["OK"] for r in results)
    console.print(f"{'FAILED' if failed else 'OK'}: {ok:,} files OK, {human_bytes(sum(r.bytes for r in results))}")
    return EXIT_FAILED if failed else 0
