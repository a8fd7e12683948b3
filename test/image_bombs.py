"""Decompression bombs and forged image headers, as bytes (shared by tests and benchmarks).

Each is small on the wire and declares (or makes a decoder allocate) far more than it
carries: the ones from issue 14 (a 35-byte GIF declaring 32000x32000, a JPEG whose frame
header sits behind 64 KiB of APP data declaring 30000x30000, a 16383x16383 WebP, a valid PNG
whose IDAT length says 0xFFFFFFF0) plus variants inside the size limits (truncated bodies),
for every format OpenCV decodes that a header can lie in.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _small(width: int = 64, height: int = 48) -> np.ndarray:
    rng = np.random.default_rng(3)
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 2)


def jpeg_with_size(width: int, height: int, app_padding: int = 0, base: bytes | None = None) -> bytes:
    """A real small JPEG whose frame header is rewritten to width x height, with optional APP
    segments (``app_padding`` bytes in all) between SOI and the first segment."""
    data = bytearray(base or cv2.imencode(".jpg", _small())[1].tobytes())
    pad = b""
    while len(pad) < app_padding:
        chunk = min(65533, app_padding - len(pad))
        pad += b"\xff\xe2" + struct.pack(">H", chunk + 2) + b"\x00" * chunk
    data[2:2] = pad
    i = 2
    while data[i] == 0xFF and not 0xC0 <= data[i + 1] <= 0xC2:
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    data[i + 5:i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_with_size(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A PNG whose IHDR (CRC fixed, so decoders believe it) says width x height, 8-bit RGB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = idat if idat is not None else zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))


def png_lying_idat_length() -> bytes:
    """A valid small PNG whose IDAT length field says 0xFFFFFFF0."""
    data = bytearray(cv2.imencode(".png", _small())[1].tobytes())
    at = data.find(b"IDAT") - 4
    data[at:at + 4] = struct.pack(">I", 0xFFFFFFF0)
    return bytes(data)


def gif(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    """A minimal GIF: logical screen ``screen``, one image descriptor of size ``frame``."""
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0, 0, 0)
    desc = b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame, 0)
    return head + desc + b"\x02\x02\x4c\x01\x00" + b"\x3b"


def webp_with_size(width: int, height: int) -> bytes:
    """A real small lossy WebP whose VP8 frame header (and a VP8X canvas) say width x height."""
    data = bytearray(cv2.imencode(".webp", _small(), [cv2.IMWRITE_WEBP_QUALITY, 50])[1].tobytes())
    vp8 = data.find(b"VP8 ")
    start = vp8 + 8 + 3  # chunk header, then the 3-byte frame tag; then 9d 01 2a
    data[start + 3:start + 7] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + bytes(data[12:])
    return b"RIFF" + struct.pack("<I", len(body)) + body


WEBP_BOMB = Path(__file__).resolve().parent / "data" / "bomb_webp_16383.webp"


def webp_real_bomb() -> bytes:
    """A real lossless WebP of 16383x16383 pixels of one colour, 10 KB (issue 14's WebP): made
    once with cv2.imencode(".webp", np.full((16383, 16383, 3), 90, np.uint8),
    [cv2.IMWRITE_WEBP_QUALITY, 101])."""
    return WEBP_BOMB.read_bytes()


def bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(cv2.imencode(".bmp", _small())[1].tobytes())
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def tiff_with_size(width: int, height: int) -> bytes:
    data = bytearray(cv2.imencode(".tiff", _small())[1].tobytes())
    order = "<" if data[:2] == b"II" else ">"
    at = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[at:at + 2])[0]
    for k in range(count):
        e = at + 2 + 12 * k
        tag, typ = struct.unpack(order + "HH", data[e:e + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[e + 2:e + 12] = struct.pack(order + "HII", 4, 1, value)  # LONG
    return bytes(data)


def pnm_with_size(width: int, height: int) -> bytes:
    return f"P6\n{width} {height}\n255\n".encode() + b"\x80" * 300


def bombs() -> dict[str, bytes]:
    """name -> bytes; every one must be refused before decoding."""
    return {
        "gif_screen_32000": gif((32000, 32000), (32000, 32000)),  # 35 bytes, issue 14
        "gif_frame_32000": gif((16, 16), (32000, 32000)),
        "jpeg_sof_after_64k_30000": jpeg_with_size(30000, 30000, app_padding=70_000),  # issue 14
        "jpeg_30000": jpeg_with_size(30000, 30000),
        "jpeg_truncated_8k": jpeg_with_size(7680, 4320),  # inside the limit, body far too short
        "png_idat_length_0xfffffff0": png_lying_idat_length(),  # issue 14
        "png_100000": png_with_size(100_000, 100_000),
        "png_tiny_idat_8k": png_with_size(7680, 4320),  # inside the limit, 1/1000 of its data
        "webp_16383": webp_real_bomb(),  # issue 14
        "webp_vp8x_16383": webp_with_size(16383, 16383),
        "bmp_30000": bmp_with_size(30000, 30000),
        "tiff_30000": tiff_with_size(30000, 30000),
        "pnm_30000": pnm_with_size(30000, 30000),
    }
