"""derive 512px, one original at a time: geometry, transparency, colour spaces, treacherous files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw

from release import derive
from release.derive import PIXEL_LIMIT, Settings, convert
from release.synth.images import special_image


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _derive(data: bytes, **settings: object) -> tuple[Image.Image, list[str]]:
    flags: list[str] = []
    result = convert(data, Settings(**settings), flags)  # type: ignore[arg-type]
    assert isinstance(result, bytes), result
    image = Image.open(io.BytesIO(result))
    assert image.format == "JPEG" and image.mode == "RGB" and not image.info.get("progressive")
    assert "exif" not in image.info and "icc_profile" not in image.info
    return image, flags


def _line_art(ink: tuple[int, int, int, int]) -> bytes:
    image = Image.new("RGBA", (600, 400), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for n in range(10):
        draw.line((20 + n * 55, 20, 580 - n * 40, 380), fill=ink, width=4)
    return _encode(image, "PNG")


@pytest.mark.parametrize(("ink", "background"), [((0, 0, 0, 255), 255), ((255, 255, 255, 255), 0)])
def test_line_art_on_transparency_stays_visible(ink: tuple[int, int, int, int], background: int) -> None:
    image, flags = _derive(_line_art(ink))
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    content = grey[86:426, :]  # 600x400 fits as 512x341, centred
    assert content.std() > 30, "the lines must stand out from the background"
    assert abs(float(np.median(content)) - background) < 10  # the background contrasts with the ink
    assert "near_uniform" not in flags and "too_dark" not in flags and "too_white" not in flags


def test_black_background_is_the_published_bug_and_is_reported() -> None:
    _, flags = _derive(_line_art((0, 0, 0, 255)), background="black")
    assert "near_uniform" in flags or "too_dark" in flags


@pytest.mark.parametrize(
    ("size", "content"), [((1000, 500), (512, 256)), ((100, 50), (100, 50)), ((50, 900), (28, 512))]
)
def test_fits_inside_the_canvas_centred_never_upscaled(size: tuple[int, int], content: tuple[int, int]) -> None:
    image, _ = _derive(_encode(Image.new("RGB", size, (250, 250, 250)), "PNG"))
    assert image.size == (512, 512)
    bright = np.argwhere(np.asarray(image.convert("L")) > 128)
    (top, left), (bottom, right) = bright.min(axis=0), bright.max(axis=0)
    assert abs((right - left + 1) - content[0]) <= 2 and abs((bottom - top + 1) - content[1]) <= 2
    assert abs((left + right) / 2 - 255.5) <= 1.5 and abs((top + bottom) / 2 - 255.5) <= 1.5


def test_cmyk_and_16bit_originals_become_srgb_pictures() -> None:
    for kind, flag in (("cmyk", "cmyk"), ("png16", "16bit")):
        image, flags = _derive(special_image(kind)[0])
        grey = np.asarray(image.convert("L"), dtype=np.float64)[170:342, :]
        assert flag in flags and grey.std() > 20, kind  # a picture, not a flat or inverted block


def test_a_png_named_like_a_jpeg_is_decoded_by_its_content() -> None:
    image, _ = _derive(_encode(Image.new("RGB", (64, 64), (200, 10, 10)), "PNG"))
    assert image.getpixel((256, 256))[0] > 150


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"\x1a\x45\xdf\xa3" + bytes(100), "not an image (webm)"),
        (b"PK\x03\x04" + bytes(100), "not an image (zip)"),
        (special_image("animated_gif")[0], "animated"),
        (b"\x89PNG\r\n\x1a\n" + bytes(30), "cannot decode"),
    ],
)
def test_files_that_cannot_become_a_512px_image_are_skipped_with_a_reason(data: bytes, reason: str) -> None:
    result = convert(data, Settings(), [])
    assert isinstance(result, str) and result.startswith(reason)


def test_animated_gifs_give_their_first_frame_when_asked() -> None:
    _, flags = _derive(special_image("animated_gif")[0], first_frame=True)
    assert "first_frame" in flags


def test_a_decompression_bomb_is_refused_before_it_is_decoded() -> None:
    side = int(PIXEL_LIMIT**0.5) + 100
    bomb = _encode(Image.new("1", (side, side)), "PNG")  # a few kB that would decode to 100M+ pixels
    result = convert(bomb, Settings(), [])
    assert isinstance(result, str) and result.startswith("decompression bomb")


def test_truncated_originals_decode_what_is_there_or_are_skipped() -> None:
    whole = _encode(Image.linear_gradient("L").resize((400, 300)).convert("RGB"), "JPEG", quality=90)
    cut = whole[: len(whole) * 2 // 3]
    flags: list[str] = []
    assert isinstance(convert(cut, Settings(), flags), bytes) and "truncated" in flags
    assert isinstance(convert(cut, Settings(truncated="skip"), []), str)


def test_the_same_original_gives_the_same_bytes() -> None:
    data = special_image("line_art_dark")[0]
    assert convert(data, Settings(), []) == convert(data, Settings(), [])


def _png(image: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


def _picture(mode: str) -> Image.Image:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (97, 131, len(mode)), dtype=np.uint8)
    image = Image.fromarray(noise if len(mode) > 1 else noise[..., 0])
    ImageDraw.Draw(image).ellipse((10, 10, 90, 70), fill=(255,) * len(mode) if len(mode) > 1 else 255)
    return image


@pytest.mark.parametrize(
    ("mode", "params", "by_libspng"),
    [
        ("RGB", {}, True), ("RGBA", {}, True), ("RGBA", {"optimize": True}, True),
        ("L", {}, False),  # grey: Pillow's path converts it
        ("RGB", {"icc_profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()}, False),
        ("RGB", {"transparency": (255, 255, 255)}, False),
    ],
)  # fmt: skip
def test_plain_pngs_are_decoded_by_libspng_to_pillow_s_pixels(
    mode: str, params: dict[str, object], by_libspng: bool
) -> None:
    data = _png(_picture(mode), **params)
    opened = Image.open(io.BytesIO(data))
    assert derive._plain_png(opened, data, []) is by_libspng
    assert derive._plain_png(opened, data, ["truncated"]) is False  # Pillow decodes what is there
    loaded = derive._load(opened, data, [])
    reference = Image.open(io.BytesIO(data))
    reference.load()
    assert loaded.mode == reference.mode and np.array_equal(np.asarray(loaded), np.asarray(reference))
    assert convert(data, Settings(), []) == convert(data, Settings(), [])


def test_a_png_libspng_refuses_is_left_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _png(_picture("RGB"))

    def refuse(*_: object) -> None:
        raise RuntimeError("pyspng: could not decode")

    expected = convert(data, Settings(), [])
    monkeypatch.setattr(derive.pyspng, "load", refuse)
    assert convert(data, Settings(), []) == expected  # the same bytes, decoded by Pillow


def test_a_16_bit_rgb_png_is_not_a_plain_png() -> None:
    data = bytearray(_png(_picture("RGB")))
    data[24] = 16  # the IHDR bit depth, which Pillow's mode does not show
    assert derive._plain_png(Image.open(io.BytesIO(_png(_picture("RGB")))), bytes(data), []) is False
