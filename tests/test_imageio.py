"""Decoding and validating images: every supported format and depth, and every way a file can be unusable.

Unusable input must raise `ImageDecodeError` naming the input -- never crash, never give a
half-decoded frame -- and absurd sizes are refused from the header, before any decoding.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import cv2
import numpy as np
import pytest

from defectscope import imageio
from defectscope.errors import DefectscopeError, ImageDecodeError
from defectscope.imageio import MIN_SIDE_PX, decode_frame, frame_from_array, read_frame
from defectscope.records import Frame

H, W = 96, 128


def _encode(pixels: np.ndarray, ext: str, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, pixels, list(params))
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def grey8() -> np.ndarray:
    """A smooth diagonal ramp 0-255: JPEG keeps it within a few grey levels."""
    yy, xx = np.indices((H, W), dtype=np.float32)
    return np.clip((xx / (W - 1) * 0.7 + yy / (H - 1) * 0.3) * 255 + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def bgr_bands() -> np.ndarray:
    """Three vertical bands: pure blue, pure green, pure red (BGR order)."""
    img = np.zeros((H, W, 3), np.uint8)
    third = W // 3
    img[:, :third, 0] = 255
    img[:, third : 2 * third, 1] = 255
    img[:, 2 * third :, 2] = 255
    return img


# BT.601 luma of pure blue, green and red at 255
LUMA_BGR = (round(0.114 * 255), round(0.587 * 255), round(0.299 * 255))


# --- what decodes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ext, max_err_grey", [(".png", 0), (".bmp", 0), (".tif", 0), (".jpg", 4)])
def test_8bit_grey_decodes_to_the_same_pixels(grey8, ext, max_err_grey):
    data = _encode(grey8, ext, (cv2.IMWRITE_JPEG_QUALITY, 98) if ext == ".jpg" else ())
    frame = decode_frame(data, source=f"ramp{ext}")
    assert frame.pixels.shape == (H, W) and frame.pixels.dtype == np.uint8
    assert (frame.bit_depth, frame.channels) == (8, 1)
    assert np.abs(frame.pixels.astype(int) - grey8).max() <= max_err_grey
    assert frame.source == f"ramp{ext}"


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_is_scaled_by_its_full_range_so_65535_is_255(ext):
    levels = np.array([0, 257 * 1, 257 * 100, 257 * 200, 65535], np.uint16)
    img = np.repeat(np.repeat(levels[None, :], H, axis=0), W // len(levels) + 1, axis=1)[:, :W]
    frame = decode_frame(_encode(img, ext), source=f"deep{ext}")
    assert frame.bit_depth == 16
    np.testing.assert_array_equal(frame.pixels, (img.astype(np.float64) / 257).round().astype(np.uint8))
    assert frame.pixels.max() == 255 and frame.pixels.min() == 0


def test_16bit_dark_frame_stays_dark_instead_of_being_stretched():
    """Scaling is by the full 16-bit range, never by the image's own maximum (STYLE: no guessed scaling)."""
    img = np.full((H, W), 257 * 20, np.uint16)
    img[:, : W // 2] = 257 * 10
    frame = decode_frame(_encode(img, ".png"))
    assert set(np.unique(frame.pixels)) == {10, 20}


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".jpg"])
def test_colour_is_converted_to_bt601_luma(bgr_bands, ext):
    data = _encode(bgr_bands, ext, (cv2.IMWRITE_JPEG_QUALITY, 98) if ext == ".jpg" else ())
    frame = decode_frame(data, source=f"bands{ext}")
    assert frame.channels == 3 and frame.pixels.ndim == 2
    third = W // 3
    centres = [
        frame.pixels[H // 2, third // 2],
        frame.pixels[H // 2, third + third // 2],
        frame.pixels[H // 2, 2 * third + third // 2],
    ]
    tol = 0 if ext != ".jpg" else 6
    for got, want in zip(centres, LUMA_BGR):
        assert abs(int(got) - want) <= tol


def test_jpeg_luma_decode_matches_colour_decode_then_conversion():
    rng = np.random.default_rng(3)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (0, 0), 2.0)
    data = _encode(photo, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 90))
    frame = decode_frame(data)
    via_colour = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY
    )
    assert frame.channels == 3
    assert np.abs(frame.pixels.astype(int) - via_colour).max() <= 2


def test_grey_jpeg_reports_one_channel(grey8):
    assert decode_frame(_encode(grey8, ".jpg")).channels == 1


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_bgra_is_converted_to_luma_ignoring_alpha(bgr_bands, ext):
    bgra = np.dstack([bgr_bands, np.full((H, W), 7, np.uint8)])  # nearly transparent: alpha must not matter
    frame = decode_frame(_encode(bgra, ext))
    assert frame.channels == 4
    assert int(frame.pixels[H // 2, 5]) == LUMA_BGR[0]
    assert int(frame.pixels[H // 2, W - 5]) == LUMA_BGR[2]


def test_16bit_colour_png_decodes_to_8bit_luma():
    img = np.zeros((H, W, 3), np.uint16)
    img[..., 1] = 65535  # pure green
    frame = decode_frame(_encode(img, ".png"))
    assert (frame.bit_depth, frame.channels) == (16, 3)
    assert abs(int(frame.pixels.mean()) - LUMA_BGR[1]) <= 1


def test_sha256_of_the_encoded_bytes_is_recorded(tmp_path, grey8):
    data = _encode(grey8, ".png")
    path = tmp_path / "endface.png"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert decode_frame(data).sha256 == digest
    frame = read_frame(path)
    assert frame.sha256 == digest and frame.source == str(path)
    assert frame_from_array(grey8).sha256 == ""


def test_decode_time_is_recorded(grey8):
    assert decode_frame(_encode(grey8, ".png")).decode_ms > 0


def test_smallest_accepted_frame_is_64_px_a_side():
    assert MIN_SIDE_PX == 64
    frame = decode_frame(_encode(np.zeros((64, 64), np.uint8), ".png"))
    assert frame.pixels.shape == (64, 64)


# --- frame_from_array -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda g: g.copy(),
        lambda g: g[:, :, None].copy(),
        lambda g: np.dstack([g, g, g]),
        lambda g: np.dstack([g, g, g, g]),
        lambda g: g.astype(np.uint16) * 257,
    ],
    ids=["grey", "grey-1ch", "bgr", "bgra", "uint16"],
)
def test_frame_from_array_leaves_its_input_untouched_and_pixels_read_only(grey8, make):
    src = make(grey8)
    before = src.copy()
    frame = frame_from_array(src, source="cam0")
    np.testing.assert_array_equal(src, before)
    assert src.flags.writeable, "the caller's array must stay writeable"
    assert not frame.pixels.flags.writeable
    with pytest.raises(ValueError):
        frame.pixels[0, 0] = 1
    assert not np.shares_memory(frame.pixels, src)
    assert frame.pixels.shape == (H, W) and frame.source == "cam0"
    np.testing.assert_allclose(frame.pixels.astype(int), grey8.astype(int), atol=1)


def test_frame_record_refuses_non_uint8_or_non_2d_pixels():
    with pytest.raises(ValueError, match="uint8"):
        Frame(np.zeros((70, 70), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        Frame(np.zeros((70, 70, 3), np.uint8))


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((70, 70), np.float32), "float32 pixels are not supported"),
        (np.zeros((70, 70), np.int32), "int32 pixels are not supported"),
        (np.zeros((70, 70, 2), np.uint8), "got shape"),
        (np.zeros((70,), np.uint8), "got shape"),
        (np.zeros((63, 500), np.uint8), "too small"),
        (np.broadcast_to(np.uint8(0), (8001, 8001)), "MP limit"),  # 64.02 MP, no memory allocated
    ],
    ids=["float32", "int32", "2-channel", "1-d", "63px", "over-64MP"],
)
def test_frame_from_array_refuses_unusable_arrays_with_the_source_named(bad, message):
    with pytest.raises(ImageDecodeError, match=message) as info:
        frame_from_array(bad, source="camera-3")
    assert "camera-3" in str(info.value)


def test_frame_from_array_refuses_what_is_not_an_array():
    with pytest.raises(ImageDecodeError, match="expected a NumPy array"):
        frame_from_array([[0] * 70] * 70, source="list")


# --- what is refused --------------------------------------------------------------------------------


def _truncated_jpeg(grey8) -> bytes:
    big = cv2.resize(grey8, (W * 4, H * 4))
    data = _encode(big, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 90))
    return data[: int(len(data) * 0.6)]


def _truncated_png(grey8) -> bytes:
    noisy = (grey8.astype(int) + np.random.default_rng(0).integers(0, 40, grey8.shape)).clip(0, 255)
    data = _encode(noisy.astype(np.uint8), ".png")
    return data[: int(len(data) * 0.6)]


BAD_FILES = {
    "empty.png": (lambda g: b"", "empty file"),
    "notes.jpg": (
        lambda g: b"operator notes: connector 7 looked dirty\n" * 3,
        "not a JPEG, PNG, BMP or TIFF",
    ),
    "cut.jpg": (_truncated_jpeg, "truncated JPEG"),
    "cut.png": (_truncated_png, "corrupt or truncated PNG"),
    "tiny.png": (lambda g: _encode(np.zeros((40, 300), np.uint8), ".png"), "too small"),
    "float.tif": (lambda g: _encode(np.ones((H, W), np.float32), ".tif"), "float32 pixels are not supported"),
    "garbage-after-signature.jpg": (lambda g: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "JPEG"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_unusable_file_raises_image_decode_error_naming_the_file(tmp_path, grey8, name):
    make, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(make(grey8))
    with pytest.raises(ImageDecodeError, match=message) as info:
        read_frame(path)
    assert name in str(info.value)
    assert isinstance(info.value, DefectscopeError)


def test_missing_file_and_folder_are_decode_errors_naming_the_path(tmp_path):
    with pytest.raises(ImageDecodeError, match="cannot read the file") as info:
        read_frame(tmp_path / "no-such-endface.png")
    assert "no-such-endface.png" in str(info.value)
    with pytest.raises(ImageDecodeError, match="cannot read the file"):
        read_frame(tmp_path)


def _png_declaring(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
        + b"\x00" * 16
    )


def _bmp_declaring(width: int, height: int) -> bytes:
    header = b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 0, 16, 2835, 2835, 0, 0)
    return header + info + b"\x00" * 16


def _jpeg_declaring(width: int, height: int) -> bytes:
    # JPEG sizes are 16-bit: 65000 x 65000 (4.2 GP) is as absurd as it gets
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof0 + b"\x00" * 16 + b"\xff\xd9"


@pytest.mark.parametrize(
    "name, data, declared",
    [
        ("bomb.png", _png_declaring(100_000, 100_000), "100000x100000"),
        ("bomb.bmp", _bmp_declaring(100_000, 100_000), "100000x100000"),
        ("bomb.jpg", _jpeg_declaring(65_000, 65_000), "65000x65000"),
    ],
)
def test_absurd_declared_size_is_refused_before_decoding(tmp_path, monkeypatch, name, data, declared):
    def no_decoding(*args, **kwargs):
        raise AssertionError("the decoder must not be called for a frame that declares an absurd size")

    monkeypatch.setattr(imageio.cv2, "imdecode", no_decoding)
    path = tmp_path / name
    path.write_bytes(data)
    assert len(data) < 100
    with pytest.raises(ImageDecodeError, match="MP limit") as info:
        read_frame(path)
    assert name in str(info.value) and declared in str(info.value)


def test_plausible_declared_size_still_decodes(grey8):
    """The header check reads real files' sizes right (it does not refuse ordinary frames)."""
    for ext in (".png", ".bmp", ".jpg"):
        assert decode_frame(_encode(grey8, ext)).pixels.shape == (H, W)
