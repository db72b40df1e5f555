"""Types of the compiled read loop (release/_native.c)."""

def read_group(
    root: str,
    paths: object,
    sizes: bytes,
    starts: bytes | None,
    flags: bytes,
    algos: int,
    piece_start: int,
    piece_end: int,
    piece_length: int,
    mtimes: bytes | None = None,
    spans: bytes | None = None,
    /,
) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes, int, bytes, bytes]: ...

RING_SLOT_SIZE: int  # hashed files smaller than this go through the thread's io_uring ring

def use_ring(on: bool, /) -> None: ...
def has_ring() -> bool: ...
def ring_files() -> int: ...
def ring_bytes() -> int: ...
