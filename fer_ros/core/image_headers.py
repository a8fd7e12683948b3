"""The sizes an image file declares, read from its real headers before anything is decoded.

``image_format(data)`` names the format from its magic bytes; ``declared_sizes(data)`` walks
the container and returns the size of every frame it declares (JPEG: every frame header;
PNG: IHDR and every APNG frame, each chunk length checked against the data; GIF: the logical
screen and every image descriptor; WebP: the VP8X canvas, every VP8/VP8L bitstream and
animation frame; BMP, TIFF (every IFD), PNM). A structure that lies about itself (a length
beyond the data, a missing frame header, a body too short for the declared pixels) raises
ImageError: decoders allocate from these headers, so a lie is a decompression bomb.

Pillow was looked at for this: its header readers stop at the first frame / IDAT and its
WebP plugin runs libwebp's decoder on open, so they do not answer these questions.
"""

from __future__ import annotations

import re

from .errors import ImageError
from .limits import MAX_PIXELS, MAX_SIDE

Size = tuple[int, int]

# JPEG frame types libjpeg decodes with Huffman coding: baseline, extended, progressive.
_JPEG_HUFFMAN_SOF = {0xC0, 0xC1, 0xC2}
_JPEG_OTHER_SOF = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, 0xD8} | set(range(0xD0, 0xD8))
_JPEG_NEXT_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")
_DEFLATE_MAX_RATIO = 1032  # deflate cannot compress better than this


def _within_limits(width: int, height: int) -> bool:
    """Sizes beyond the limits are refused by the caller with the size in the message."""
    return 0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and width * height <= MAX_PIXELS


def image_format(data: bytes) -> str | None:
    """'jpeg', 'png', 'gif', 'webp', 'bmp', 'tiff', 'pnm' from the magic bytes, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if len(data) >= 2 and data[0:1] == b"P" and data[1:2] in b"1234567fF":
        return "pnm"
    return None


def declared_sizes(data: bytes, fmt: str) -> list[Size]:
    """(width, height) of every frame ``data`` declares; ImageError for a lying structure."""
    return _READERS[fmt](data)


def _u16(b: bytes, at: int, order: str = "big") -> int:
    return int.from_bytes(b[at:at + 2], order)


def _u32(b: bytes, at: int, order: str = "big") -> int:
    return int.from_bytes(b[at:at + 4], order)


def _need(data: bytes, end: int, what: str) -> None:
    if end > len(data):
        raise ImageError(f"{what} runs past the end of the data ({len(data)} bytes): truncated "
                         "or forged")


# ----- JPEG -----------------------------------------------------------------------------------
def _jpeg(data: bytes) -> list[Size]:
    """Walk every marker segment; entropy-coded data after SOS is skipped to the next marker."""
    frames: list[Size] = []
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise ImageError(f"JPEG marker expected at byte {i}: corrupt JPEG structure")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:  # EOI
            break
        if marker in _JPEG_NO_LENGTH:
            continue
        _need(data, i + 2, f"JPEG marker 0x{marker:02X}")
        length = _u16(data, i)
        if length < 2:
            raise ImageError(f"JPEG marker 0x{marker:02X} has length {length}: corrupt JPEG")
        _need(data, i + length, f"JPEG marker 0x{marker:02X} segment ({length} bytes)")
        if marker in _JPEG_HUFFMAN_SOF or marker in _JPEG_OTHER_SOF:
            if length < 8:
                raise ImageError("JPEG frame header is too short: corrupt JPEG")
            if marker in _JPEG_OTHER_SOF:
                raise ImageError(f"JPEG frame type SOF{marker - 0xC0} (lossless, hierarchical "
                                 "or arithmetic-coded) is not supported: use baseline or "
                                 "progressive JPEG")
            frames.append((_u16(data, i + 5), _u16(data, i + 3)))
        i += length
        if marker == 0xDA:  # SOS: skip the entropy-coded scan to the next real marker
            found = _JPEG_NEXT_MARKER.search(data, i)
            if found is None:
                break  # truncated scan; the size check below still applies
            i = found.start(1) - 1
    if not frames:
        raise ImageError("JPEG has no frame header (SOF): truncated or not a JPEG")
    if len(frames) > 1:
        raise ImageError(f"JPEG declares {len(frames)} frame headers: corrupt or forged JPEG")
    width, height = frames[0]
    blocks = -(-width // 8) * -(-height // 8)
    if _within_limits(width, height) and len(data) * 8 < blocks:  # Huffman coding spends >= 1 bit per 8x8 block of one component
        raise ImageError(f"JPEG declares {width}x{height} but has only {len(data)} bytes, too "
                         "few for that many pixels: truncated or a decompression bomb")
    return frames


# ----- PNG ------------------------------------------------------------------------------------
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png(data: bytes) -> list[Size]:
    """IHDR and every APNG frame control; every chunk length must fit inside the data."""
    frames: list[Size] = []
    raw_bytes = idat = 0
    i, n = 8, len(data)
    while i < n:
        _need(data, i + 8, "PNG chunk header")
        length, kind = _u32(data, i), data[i + 4:i + 8]
        if length > 0x7FFFFFFF:
            raise ImageError(f"PNG chunk {kind.decode('latin-1')!r} declares {length} bytes: forged PNG")
        _need(data, i + 12 + length, f"PNG chunk {kind.decode('latin-1')!r} ({length} bytes)")
        body = data[i + 8:i + 8 + length]
        if i == 8 and kind != b"IHDR":
            raise ImageError("PNG does not start with IHDR: corrupt PNG")
        if kind == b"IHDR":
            if length < 13 or frames:
                raise ImageError("PNG has a short or second IHDR: corrupt PNG")
            width, height, bits, color = _u32(body, 0), _u32(body, 4), body[8], body[9]
            frames.append((width, height))
            per_row = (width * _PNG_CHANNELS.get(color, 4) * max(bits, 1) + 7) // 8
            raw_bytes = height * (per_row + 1)
        elif kind == b"fcTL" and length >= 12:
            frames.append((_u32(body, 4), _u32(body, 8)))
        elif kind in (b"IDAT", b"fdAT"):
            idat += length
        elif kind == b"IEND":
            break
        i += 12 + length
    if not frames:
        raise ImageError("PNG has no IHDR: truncated or not a PNG")
    if _within_limits(*frames[0]) and idat * _DEFLATE_MAX_RATIO < raw_bytes:
        raise ImageError(f"PNG declares {frames[0][0]}x{frames[0][1]} but has only {idat} bytes "
                         "of image data, too few for that many pixels: truncated or a "
                         "decompression bomb")
    return frames


# ----- GIF ------------------------------------------------------------------------------------
def _gif_sub_blocks(data: bytes, i: int) -> int:
    while True:
        _need(data, i + 1, "GIF data sub-block")
        size = data[i]
        i += 1 + size
        if size == 0:
            return i


def _gif(data: bytes) -> list[Size]:
    """The logical screen and every image descriptor."""
    _need(data, 13, "GIF logical screen descriptor")
    frames = [(_u16(data, 6, "little"), _u16(data, 8, "little"))]
    i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while i < len(data):
        kind = data[i]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            i = _gif_sub_blocks(data, i + 2)
        elif kind == 0x2C:  # image descriptor
            _need(data, i + 10, "GIF image descriptor")
            frames.append((_u16(data, i + 5, "little"), _u16(data, i + 7, "little")))
            flags = data[i + 9]
            i += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            i = _gif_sub_blocks(data, i + 1)  # LZW minimum code size, then the image data
        else:
            raise ImageError(f"GIF block 0x{kind:02X} at byte {i} is unknown: corrupt GIF")
    return frames


# ----- WebP -----------------------------------------------------------------------------------
def _webp_bitstream(kind: bytes, body: bytes) -> Size | None:
    if kind == b"VP8 ":
        if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
            raise ImageError("WebP VP8 frame header is missing: corrupt WebP")
        return _u16(body, 6, "little") & 0x3FFF, _u16(body, 8, "little") & 0x3FFF
    if kind == b"VP8L":
        if len(body) < 5 or body[0] != 0x2F:
            raise ImageError("WebP VP8L header is missing: corrupt WebP")
        bits = _u32(body, 1, "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _webp_chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    chunks, i = [], start
    while i + 8 <= end:
        kind, length = data[i:i + 4], _u32(data, i + 4, "little")
        _need(data, i + 8 + length, f"WebP chunk {kind!r} ({length} bytes)")
        chunks.append((kind, data[i + 8:i + 8 + length]))
        i += 8 + length + (length & 1)
    return chunks


def _webp(data: bytes) -> list[Size]:
    """The VP8X canvas, every VP8 / VP8L bitstream and every animation frame (ANMF)."""
    _need(data, 8 + _u32(data, 4, "little"), "WebP RIFF container")
    frames: list[Size] = []
    for kind, body in _webp_chunks(data, 12, len(data)):
        if kind == b"VP8X" and len(body) >= 10:
            frames.append((int.from_bytes(body[4:7], "little") + 1,
                           int.from_bytes(body[7:10], "little") + 1))
        elif kind == b"ANMF" and len(body) >= 16:
            frames.append((int.from_bytes(body[6:9], "little") + 1,
                           int.from_bytes(body[9:12], "little") + 1))
            for sub_kind, sub in _webp_chunks(body, 16, len(body)):
                if (size := _webp_bitstream(sub_kind, sub)) is not None:
                    frames.append(size)
        elif (size := _webp_bitstream(kind, body)) is not None:
            frames.append(size)
    if not frames:
        raise ImageError("WebP has no image header: truncated or corrupt WebP")
    return frames


# ----- BMP, TIFF, PNM -------------------------------------------------------------------------
def _bmp(data: bytes) -> list[Size]:
    _need(data, 26, "BMP header")
    header = _u32(data, 14, "little")
    if header == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return [(_u16(data, 18, "little"), _u16(data, 20, "little"))]
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = abs(int.from_bytes(data[22:26], "little", signed=True))
    return [(width, height)]


def _tiff(data: bytes) -> list[Size]:
    """ImageWidth / ImageLength of every IFD (classic TIFF and BigTIFF)."""
    order = "little" if data[:2] == b"II" else "big"
    big = _u16(data, 2, order) == 43
    entry, count_size, offset_size = (20, 8, 8) if big else (12, 2, 4)
    at = int.from_bytes(data[8:16] if big else data[4:8], order)
    frames: list[Size] = []
    seen: set[int] = set()
    while at and at not in seen and len(frames) < 1000:
        seen.add(at)
        _need(data, at + count_size, "TIFF image directory")
        count = int.from_bytes(data[at:at + count_size], order)
        base = at + count_size
        _need(data, base + count * entry + offset_size, f"TIFF image directory ({count} entries)")
        size = {256: 0, 257: 0}
        for k in range(count):
            e = base + k * entry
            tag, typ = _u16(data, e, order), _u16(data, e + 2, order)
            if tag in size:
                value_at = e + (12 if big else 8)
                size[tag] = _u16(data, value_at, order) if typ == 3 else _u32(data, value_at, order)
        frames.append((size[256], size[257]))
        at = int.from_bytes(data[base + count * entry:base + count * entry + offset_size], order)
    if not frames:
        raise ImageError("TIFF has no image directory: corrupt TIFF")
    return frames


_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*([^\s#]+)")


def _pnm(data: bytes) -> list[Size]:
    head = data[:4096]
    if head[1:2] == b"7":  # PAM: WIDTH / HEIGHT lines
        width = re.search(rb"\nWIDTH\s+(\d+)", head)
        height = re.search(rb"\nHEIGHT\s+(\d+)", head)
        if not (width and height):
            raise ImageError("PAM header has no WIDTH / HEIGHT: corrupt PAM")
        return [(int(width.group(1)), int(height.group(1)))]
    tokens, i = [], 2
    while len(tokens) < 2 and (m := _PNM_TOKEN.match(head, i)):
        tokens.append(m.group(1))
        i = m.end()
    if len(tokens) < 2 or not all(t.isdigit() for t in tokens):
        raise ImageError("PNM header has no width and height: corrupt PNM")
    return [(int(tokens[0]), int(tokens[1]))]


_READERS = {"jpeg": _jpeg, "png": _png, "gif": _gif, "webp": _webp, "bmp": _bmp,
            "tiff": _tiff, "pnm": _pnm}
