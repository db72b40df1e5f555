"""Image and file bytes for the synthetic dataset: real, decodable images of exact target sizes.

A handful of small base images per type is encoded once with Pillow; each file is a base image
grown to its target size with filler the format tolerates (JPEG COM segments, a private PNG
chunk, GIF comment blocks), so every jpg/png/gif decodes and ends with its proper end marker.
Filler bytes come from SHAKE-128 of the file's seed: stable across machines and Python versions.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from functools import cache

from PIL import Image, ImageDraw

BASES_PER_TYPE = 6
_DIMS = ((96, 64), (64, 96), (80, 80), (120, 72), (48, 48), (72, 120))
# `--drawn`: Danbooru's originals are a few megapixels (3.3 TB over 3.69M files in Danbooru2019, ~0.9 MB
# each); converting one costs what its pixels cost, whatever filler makes up its size in bytes
DRAWN_SIDES = (1000, 2000)
_OTHER_MAGIC: dict[str, bytes] = {
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01",
    "mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
    "swf": b"FWS\x0a",
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    "rar": b"Rar!\x1a\x07\x00",
    "pdf": b"%PDF-1.4\n",
    "html": b"<!DOCTYPE html>\n<html><body>",
    "avi": b"RIFF\x00\x00\x00\x00AVI LIST",
    "mpg": b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01",
    "wmv": b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c",
    "mp3": b"ID3\x03\x00\x00\x00\x00\x00\x00",
    "bmp": b"BM",
}
PIL_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "gif": "GIF", "bmp": "BMP"}


def filler(seed: bytes, size: int) -> bytes:
    """`size` deterministic pseudo-random bytes derived from `seed`."""
    return hashlib.shake_128(seed).digest(size) if size > 0 else b""


@cache
def base_image(ext: str, index: int) -> tuple[bytes, int, int]:
    """Encoded base image `index` of a Pillow type, with its width and height."""
    width, height = _DIMS[index % len(_DIMS)]
    image = base_picture(width, height, f"base:{ext}:{index}".encode())
    out = io.BytesIO()
    fmt = PIL_FORMATS[ext]
    if fmt == "GIF":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    image.save(out, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue(), width, height


def scribble(image: Image.Image, rng: random.Random) -> None:
    """Draw an illustration's shapes on `image` (RGB or RGBA), from `rng`: 40 flat-colour polygons with
    dark outlines, then 60 lines."""
    alpha = (255,) if image.mode == "RGBA" else ()
    pen = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(40):
        colour = tuple(rng.randrange(256) for _ in range(3)) + alpha
        points = [(rng.randrange(width), rng.randrange(height)) for _ in range(rng.randint(3, 7))]
        pen.polygon(points, fill=colour, outline=(20, 20, 20, *alpha), width=rng.randint(2, 6))
    for _ in range(60):
        pen.line([(rng.randrange(width), rng.randrange(height)) for _ in range(2)], fill=(10, 10, 10, *alpha), width=3)


@cache
def drawn_image(ext: str, index: int, shrink: int = 1) -> tuple[bytes, int, int]:
    """Encoded illustration `index` of a Pillow type at Danbooru's size in pixels (1000-2000 a side, divided
    by `shrink`): flat colour regions, outlines and lines, compressible the way drawings are."""
    rng = random.Random(f"drawn:{ext}:{index}")
    width, height = rng.randint(*DRAWN_SIDES), rng.randint(*DRAWN_SIDES)
    image = Image.new("RGB", (width, height), (250, 248, 240))
    scribble(image, rng)
    if shrink > 1:
        image = image.resize((width // shrink, height // shrink), Image.Resampling.BOX)
    out = io.BytesIO()
    fmt = PIL_FORMATS[ext]
    if fmt == "GIF":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    image.save(out, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue(), image.width, image.height


def _grow_jpeg(base: bytes, extra: bytes) -> bytes:
    segments = []
    for start in range(0, len(extra), 65533):
        part = extra[start : start + 65533]
        segments.append(b"\xff\xfe" + struct.pack(">H", len(part) + 2) + part)
    return base[:2] + b"".join(segments) + base[2:]


def _grow_png(base: bytes, extra: bytes) -> bytes:
    chunk_type = b"prVt"
    chunk = struct.pack(">I", len(extra)) + chunk_type + extra + struct.pack(">I", zlib.crc32(chunk_type + extra))
    iend = base.rindex(b"IEND") - 4
    return base[:iend] + chunk + base[iend:]


def _grow_gif(base: bytes, extra: bytes) -> bytes:
    blocks = b"".join(bytes([len(extra[i : i + 255])]) + extra[i : i + 255] for i in range(0, len(extra), 255))
    return base[:-1] + b"\x21\xfe" + blocks + b"\x00" + base[-1:]


def _overhead(ext: str, n: int) -> int:
    if ext in ("jpg", "jpeg"):
        return 4 * max(1, -(-n // 65533))
    if ext == "png":
        return 12
    return 3 + -(-n // 255)  # gif


SPECIAL_EXTS = {"line_art_dark": "png", "line_art_light": "png", "cmyk": "jpg", "png16": "png", "animated_gif": "gif"}


@cache
def special_image(kind: str) -> tuple[bytes, int, int]:
    """An original of a kind that derivers get wrong: line art on transparency (dark or light lines), a CMYK
    JPEG, a 16-bit greyscale PNG, an animated GIF. Drawn with Pillow, the same bytes on every run."""
    width, height = 300, 200
    if kind in ("line_art_dark", "line_art_light"):
        image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        ink = (0, 0, 0, 255) if kind == "line_art_dark" else (255, 255, 255, 255)
        draw = ImageDraw.Draw(image)
        for n in range(12):
            draw.line((10 + n * 23, 10, 290 - n * 19, 190), fill=ink, width=3)
        draw.ellipse((100, 50, 200, 150), outline=ink, width=4)
    elif kind == "cmyk":
        image = base_picture(width, height, b"special:cmyk").convert("CMYK")
    elif kind == "png16":
        ramp = [(x * 65535 // (width - 1)) for x in range(width)] * height
        image = Image.new("I;16", (width, height))
        image.putdata(ramp)
    else:
        frames = [base_picture(width, height, f"special:gif:{n}".encode()).convert("P") for n in range(2)]
        out = io.BytesIO()
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
        return out.getvalue(), width, height
    out = io.BytesIO()
    image.save(out, PIL_FORMATS[SPECIAL_EXTS[kind]], **({"quality": 90} if kind == "cmyk" else {}))
    return out.getvalue(), width, height


def special_bytes(kind: str, size: int, seed: bytes) -> tuple[bytes, int, int]:
    """`special_image(kind)` grown to about `size` bytes like every other file of its type."""
    base, width, height = special_image(kind)
    return _grown(base, SPECIAL_EXTS[kind], size, seed), width, height


def base_picture(width: int, height: int, seed: bytes) -> Image.Image:
    """A gradient with noise: something a photo-like encoder has to work on."""
    noise = Image.frombytes("RGB", (width, height), filler(seed, width * height * 3))
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    return Image.blend(gradient, noise, 0.35)


def image_bytes(ext: str, size: int, seed: bytes, base_index: int, drawn: bool = False) -> tuple[bytes, int, int]:
    """A decodable jpg/jpeg/png/gif of about `size` bytes (exact when size exceeds the base). Drawn: of a
    few megapixels, or a quarter of that when `size` leaves no room for filler after it, else small."""
    kind = "jpg" if ext == "jpeg" else ext
    for shrink in (1, 2) if drawn else ():
        base, width, height = drawn_image(kind, base_index % BASES_PER_TYPE, shrink)
        if size - len(base) > 16:  # else every such file would be the same bytes
            return _grown(base, ext, size, seed), width, height
    base, width, height = base_image(kind, base_index % BASES_PER_TYPE)
    return _grown(base, ext, size, seed), width, height


def _grown(base: bytes, ext: str, size: int, seed: bytes) -> bytes:
    """An encoded jpg/jpeg/png/gif grown with filler its format tolerates to `size` bytes (when that exceeds it)."""
    room = size - len(base)
    if room <= 16:
        return base
    n = room - _overhead(ext, room)
    n -= _overhead(ext, n) - _overhead(ext, room)  # segment counts can shift by one
    grow = {"jpg": _grow_jpeg, "jpeg": _grow_jpeg, "png": _grow_png, "gif": _grow_gif}[ext]
    return grow(base, filler(seed, max(0, n)))


def other_bytes(ext: str, size: int, seed: bytes) -> bytes:
    """Plausible bytes for a non-image (or BMP) type: its magic, then filler."""
    magic = _OTHER_MAGIC[ext]
    if ext == "html":
        return magic + b"x" * max(0, size - len(magic) - 15) + b"</body></html>\n"
    return magic + filler(seed, max(0, size - len(magic)))


def file_bytes(
    ext: str, size: int, seed: bytes, base_index: int, tiny: bool, drawn: bool = False
) -> tuple[bytes, int, int]:
    """Bytes for one file of type `ext`, with the image width and height recorded in metadata."""
    if tiny:
        magic = _OTHER_MAGIC.get(
            ext, b"\xff\xd8\xff" if ext in ("jpg", "jpeg") else b"\x89PNG\r\n\x1a\n" if ext == "png" else b"GIF89a"
        )
        return magic[:4] + filler(seed, size), 1, 1
    if ext in ("jpg", "jpeg", "png", "gif"):
        return image_bytes(ext, size, seed, base_index, drawn)
    dims = _DIMS[base_index % len(_DIMS)]
    return other_bytes(ext, size, seed), dims[0], dims[1]
