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
    /,
) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes, int]: ...
def count_entries(root: str, /) -> int: ...
