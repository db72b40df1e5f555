"""The compiled part of booru-release (everything else is in pyproject.toml).

release._native is the per-file read loop of the hashing engine; release._records tokenises manifest
record lines for verify. They need a C compiler, the Python headers, OpenSSL's libcrypto headers
(Debian: libssl-dev) and xxhash.h (Debian: libxxhash-dev); scripts/setup.sh installs them.
"""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension("release._native", sources=["release/_native.c"], libraries=["crypto"], extra_compile_args=FLAGS),
        Extension("release._records", sources=["release/_records.c"], extra_compile_args=FLAGS),
    ]
)
