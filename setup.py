"""The compiled part of booru-release, and the release catalogue as package data (the rest is in pyproject.toml).

release._native is the per-file read loop of the hashing engine; release._records tokenises manifest
record lines for verify. They need a C compiler, the Python headers, OpenSSL's libcrypto headers
(Debian: libssl-dev) and xxhash.h (Debian: libxxhash-dev); scripts/setup.sh installs them.

The catalogue lives in manifests/releases/ (the repository layout); a built package carries a copy in
release/catalogue/, so an installed booru-release knows the published releases (release.releases).
"""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
CATALOGUE = Path(__file__).resolve().parent / "manifests" / "releases"


class BuildWithCatalogue(build_py):
    """build_py that also copies manifests/releases/*.toml into the package as release/catalogue/."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "release" / "catalogue"
        target.mkdir(parents=True, exist_ok=True)
        for toml in sorted(CATALOGUE.glob("*.toml")):
            shutil.copyfile(toml, target / toml.name)


setup(
    cmdclass={"build_py": BuildWithCatalogue},
    ext_modules=[
        Extension("release._native", sources=["release/_native.c"], libraries=["crypto"], extra_compile_args=FLAGS),
        Extension("release._records", sources=["release/_records.c"], extra_compile_args=FLAGS),
    ],
)
