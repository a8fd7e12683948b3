"""Image buffers in ROS encodings and compressed bytes <-> BGR uint8 arrays (no ROS imports).

Supported raw encodings (``sensor_msgs/Image``): bgr8, rgb8, bgra8, rgba8, mono8, mono16.
Rows may be padded (``step`` > width * bytes per pixel). mono16 is reduced to 8 bits by keeping
the high byte (``value >> 8``), honouring ``is_bigendian``; no contrast stretching is done, so a
16-bit image that uses only the low range (e.g. a 12-bit sensor) comes out dark.

Every function returns a new, C-contiguous, writable (H, W, 3) uint8 BGR array that does not
share memory with the input buffer.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .errors import ImageError

MAX_SIDE = 8192  # larger images are refused as absurd (a 8192x8192 BGR frame is 192 MiB)

# encoding -> (channels, bytes per channel)
ENCODINGS: dict[str, tuple[int, int]] = {
    "bgr8": (3, 1),
    "rgb8": (3, 1),
    "bgra8": (4, 1),
    "rgba8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
}

_TO_BGR = {
    "rgb8": cv2.COLOR_RGB2BGR,
    "bgra8": cv2.COLOR_BGRA2BGR,
    "rgba8": cv2.COLOR_RGBA2BGR,
    "mono8": cv2.COLOR_GRAY2BGR,
    "mono16": cv2.COLOR_GRAY2BGR,
}


def _check_size(width: int, height: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"{what} has size {width}x{height}: width and height must be > 0")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageError(
            f"{what} is {width}x{height}: larger than {MAX_SIDE} pixels per side is not supported"
        )


def _as_bytes_view(data: Any) -> np.ndarray:
    """A flat uint8 view of any buffer (bytes, bytearray, memoryview, array.array, ndarray)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            data = np.ascontiguousarray(data).view(np.uint8)
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"image data must be a bytes-like buffer, got {type(data).__name__}") from exc


def to_bgr(
    data: Any, encoding: str, width: int, height: int, step: int, is_bigendian: bool = False
) -> np.ndarray:
    """Convert a raw ``sensor_msgs/Image``-style buffer to a BGR uint8 (height, width, 3) array.

    Raises ImageError for an unknown encoding, a zero or absurd (> 8192) size, a step smaller
    than one row of pixels, or data shorter than step * height.
    """
    if encoding not in ENCODINGS:
        raise ImageError(
            f"unsupported image encoding {encoding!r}: use one of {', '.join(ENCODINGS)}"
        )
    width, height, step = int(width), int(height), int(step)
    _check_size(width, height, f"{encoding} image")
    channels, depth = ENCODINGS[encoding]
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageError(
            f"{encoding} image {width}x{height}: step {step} is smaller than width * "
            f"bytes per pixel = {row_bytes}"
        )
    buf = _as_bytes_view(data)
    if buf.size < step * height:
        raise ImageError(
            f"{encoding} image {width}x{height}, step {step}: data has {buf.size} bytes, "
            f"expected at least step * height = {step * height}"
        )
    rows = buf[: step * height].reshape(height, step)[:, :row_bytes]
    if depth == 2:  # mono16: keep the high byte of each sample (value >> 8)
        rows = rows[:, 0::2] if is_bigendian else rows[:, 1::2]
    pixels = rows.reshape(height, width, channels) if channels > 1 else rows
    if encoding == "bgr8":
        return np.array(pixels, dtype=np.uint8, order="C", copy=True)
    # cvtColor accepts strided input and always allocates a fresh contiguous output.
    return cv2.cvtColor(pixels, _TO_BGR[encoding])


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24 and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first JPEG start-of-frame marker (None if not found)."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 9 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def decode_compressed(data: Any) -> np.ndarray:
    """Decode JPEG/PNG (or any format OpenCV reads) bytes to a BGR uint8 (H, W, 3) array.

    The size in a PNG/JPEG header is checked before decoding, so an absurd image is refused
    without allocating it. Raises ImageError for empty, undecodable or too large data.
    """
    buf = _as_bytes_view(data)
    if buf.size == 0:
        raise ImageError("compressed image data is empty")
    head = buf[:65536].tobytes()
    size = _png_size(head) or _jpeg_size(head)
    if size is not None:
        _check_size(size[0], size[1], "compressed image")
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # e.g. a BMP/TIFF header with an absurd size fails an assertion
        raise ImageError(
            f"compressed image data ({buf.size} bytes) could not be decoded: {exc.err or exc}"
        ) from exc
    if image is None:
        raise ImageError(
            f"compressed image data ({buf.size} bytes) could not be decoded: expected JPEG or PNG"
        )
    _check_size(image.shape[1], image.shape[0], "compressed image")
    return np.ascontiguousarray(image)


def from_bgr(bgr: np.ndarray, encoding: str = "bgr8") -> tuple[bytes, int]:
    """Encode a BGR uint8 image for a ``sensor_msgs/Image``: returns (data, step).

    ``encoding`` is bgr8 (default), rgb8 or mono8; rows are not padded (step = width * channels).
    """
    bgr = ensure_bgr(bgr)
    if encoding == "bgr8":
        out = bgr
    elif encoding == "rgb8":
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    elif encoding == "mono8":
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    else:
        raise ImageError(f"cannot publish encoding {encoding!r}: use bgr8, rgb8 or mono8")
    out = np.ascontiguousarray(out)
    return out.tobytes(), int(out.strides[0])


def ensure_bgr(frame: Any) -> np.ndarray:
    """Check a frame is a usable BGR uint8 image; a 2-D (or (H, W, 1)) grayscale frame is
    converted to BGR. Raises ImageError for None, empty, non-uint8 or wrongly shaped frames."""
    if frame is None:
        raise ImageError("no image: got None instead of a BGR uint8 array")
    if not isinstance(frame, np.ndarray):
        raise ImageError(f"image must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ImageError(f"image must be uint8 (8-bit BGR), got dtype {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] != 3):
        raise ImageError(
            f"image shape {frame.shape} is not BGR (H, W, 3) or grayscale (H, W)"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ImageError(f"image is empty (shape {frame.shape})")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return frame
