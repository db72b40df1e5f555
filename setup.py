"""The compiled part of booru-release (everything else is in pyproject.toml).

release._native is the per-file read loop of the hashing engine. It needs a C compiler, the Python
headers, OpenSSL's libcrypto headers (Debian: libssl-dev) and xxhash.h (Debian: libxxhash-dev);
scripts/setup.sh installs them.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "release._native",
            sources=["release/_native.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
