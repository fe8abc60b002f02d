"""Decode and validate images into `Frame` records.

JPEG, PNG, BMP and TIFF; 8- or 16-bit; grey, colour or with alpha. Anything else -- corrupt,
truncated, empty, non-image, too small or absurdly large -- raises `ImageDecodeError` with a
message that names the input, never a crash and never a half-decoded frame.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageDecodeError
from .records import Frame

__all__ = ["MAX_PIXELS", "MIN_SIDE_PX", "decode_frame", "read_frame", "frame_from_array"]

MAX_PIXELS = 64_000_000  # a 64 MP frame is far beyond any end-face microscope; beyond it we refuse
MAX_FILE_BYTES = 256 * 1024 * 1024
MIN_SIDE_PX = 64

_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def read_frame(path: str | Path) -> Frame:
    """Read and decode the image file at `path`. Raises ImageDecodeError on any unusable input."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageDecodeError(
                f"{path}: file is {size / 1e6:.0f} MB, over the {MAX_FILE_BYTES / 1e6:.0f} MB "
                "limit; is this really one microscope frame?"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return decode_frame(data, source=str(path))


def decode_frame(data: bytes, *, source: str = "<bytes>") -> Frame:
    """Decode encoded image bytes into a grey uint8 `Frame`.

    16-bit images are scaled by their full range (value / 257), so a frame's brightness means
    the same whatever its bit depth; colour is converted to luma.
    """
    t0 = time.perf_counter()
    if not data:
        raise ImageDecodeError(f"{source}: empty file (0 bytes)")
    kind = _sniff(data)
    if kind is None:
        raise ImageDecodeError(
            f"{source}: not a JPEG, PNG, BMP or TIFF image (starts with {data[:8]!r}); check the file"
        )
    # decompression bombs are refused from the size the header declares, before decoding
    w, h, jpeg_channels = _declared_header(data, kind)
    if w * h > MAX_PIXELS:
        raise ImageDecodeError(
            f"{source}: header declares {w}x{h} px, over the {MAX_PIXELS / 1e6:.0f} MP limit"
        )
    buffer = np.frombuffer(data, np.uint8)
    # a JPEG is decoded straight to its luma channel: 3x faster than decoding colour and
    # converting (the same grey to within a level); EXIF orientation is ignored as for the others
    flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION if kind == "JPEG" else cv2.IMREAD_UNCHANGED
    pixels = cv2.imdecode(buffer, flags)
    if pixels is None or pixels.size == 0:
        if kind == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise ImageDecodeError(f"{source}: truncated JPEG (no end-of-image marker); re-acquire the image")
        raise ImageDecodeError(f"{source}: corrupt or truncated {kind}; the decoder could not read it")
    frame = frame_from_array(pixels, source=source, _sha256=hashlib.sha256(data).hexdigest())
    return Frame(
        frame.pixels,
        source=source,
        sha256=frame.sha256,
        bit_depth=frame.bit_depth,
        channels=jpeg_channels if kind == "JPEG" else frame.channels,
        decode_ms=(time.perf_counter() - t0) * 1e3,
    )


def frame_from_array(pixels: np.ndarray, *, source: str = "<array>", _sha256: str = "") -> Frame:
    """Build a `Frame` from an array: (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA; uint8 or uint16.

    The input is not modified.
    """
    if not isinstance(pixels, np.ndarray):
        raise ImageDecodeError(f"{source}: expected a NumPy array, got {type(pixels).__name__}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise ImageDecodeError(
            f"{source}: expected (H, W), (H, W, 3) or (H, W, 4) pixels, got shape {pixels.shape}"
        )
    h, w = pixels.shape[:2]
    if min(h, w) < MIN_SIDE_PX:
        raise ImageDecodeError(
            f"{source}: {w}x{h} px is too small to inspect (need at least {MIN_SIDE_PX} px a side)"
        )
    if h * w > MAX_PIXELS:
        raise ImageDecodeError(f"{source}: {w}x{h} px is over the {MAX_PIXELS / 1e6:.0f} MP limit")
    if pixels.dtype == np.uint8:
        bit_depth = 8
    elif pixels.dtype == np.uint16:
        bit_depth = 16
        pixels = cv2.convertScaleAbs(pixels, alpha=1.0 / 257.0)
    else:
        raise ImageDecodeError(
            f"{source}: {pixels.dtype} pixels are not supported; export 8- or 16-bit integers"
        )
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels == 3:
        grey = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    elif channels == 4:
        grey = cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY)
    else:
        grey = np.array(pixels, dtype=np.uint8, copy=True)
    return Frame(grey, source=source, sha256=_sha256, bit_depth=bit_depth, channels=channels)


def _sniff(data: bytes) -> str | None:
    for signature, kind in _SIGNATURES.items():
        if data.startswith(signature):
            return kind
    return None


def _declared_header(data: bytes, kind: str) -> tuple[int, int, int]:
    """Width and height the header declares (0, 0 when it does not say: TIFF) and, for a JPEG,
    its number of colour components (else 1)."""
    if kind == "PNG" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"), 1
    if kind == "BMP" and len(data) >= 26:
        w = abs(int.from_bytes(data[18:22], "little", signed=True))
        return w, abs(int.from_bytes(data[22:26], "little", signed=True)), 1
    if kind == "JPEG":
        return _jpeg_header(data)
    return 0, 0, 1


def _jpeg_header(data: bytes) -> tuple[int, int, int]:
    """Width, height and number of colour components from the first SOF marker, or (0, 0, 1)
    when there is none."""
    i = 2
    n = len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            w, h = int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
            return w, h, data[i + 9]
        i += 2 + length
    return 0, 0, 1
