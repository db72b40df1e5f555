"""The compiled part of booru-release, and the release catalogue as package data (the rest is in pyproject.toml).

release._native is the per-file read loop of the hashing engine; release._records tokenises manifest
record lines for verify. They need a C compiler, the Python headers, OpenSSL's libcrypto headers
(Debian: libssl-dev), xxhash.h (Debian: libxxhash-dev) and, to read small files through io_uring,
liburing (Debian: liburing-dev; without it the read loop uses plain system calls); scripts/setup.sh
installs them.

The catalogue lives in manifests/releases/ (the repository layout); a built package carries a copy in
release/catalogue/, so an installed booru-release knows the published releases (release.releases).
The same goes for the Ansible playbooks and roles (ansible/ -> release/ansible/, for publish seedboxes).
"""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
CATALOGUE = Path(__file__).resolve().parent / "manifests" / "releases"
ANSIBLE = Path(__file__).resolve().parent / "ansible"
# io_uring reads of small files (release/_ring.c) when liburing's headers are there (Debian: liburing-dev);
# without them the read loop uses plain system calls
LIBURING = Path("/usr/include/liburing.h").exists()


class BuildWithCatalogue(build_py):
    """build_py that also copies manifests/releases/*.toml into the package as release/catalogue/, and
    ansible/ as release/ansible/."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "release" / "catalogue"
        target.mkdir(parents=True, exist_ok=True)
        for toml in sorted(CATALOGUE.glob("*.toml")):
            shutil.copyfile(toml, target / toml.name)
        # the playbooks and roles `publish seedboxes` runs (release.publish.seedboxes)
        shutil.copytree(ANSIBLE, Path(self.build_lib) / "release" / "ansible", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ansible"))


setup(
    cmdclass={"build_py": BuildWithCatalogue},
    ext_modules=[
        Extension(
            "release._native",
            sources=["release/_native.c", "release/_ring.c"],
            depends=["release/_buf.h", "release/_digests.h", "release/_ring.h"],
            libraries=["crypto", *(["uring"] if LIBURING else [])],
            define_macros=[("HAVE_LIBURING", "1")] if LIBURING else [],
            extra_compile_args=FLAGS,
        ),
        Extension("release._records", sources=["release/_records.c"], extra_compile_args=FLAGS),
        Extension(
            "release._bencode", sources=["release/_bencode.c"], depends=["release/_buf.h"], extra_compile_args=FLAGS
        ),
        Extension(
            "release._listing", sources=["release/_listing.c"], depends=["release/_buf.h"], extra_compile_args=FLAGS
        ),
    ],
)
