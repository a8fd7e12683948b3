"""Image buffers in ROS encodings and compressed bytes <-> BGR uint8 arrays (no ROS imports).

Raw encodings (``sensor_msgs/Image``), every one cv_bridge converts to bgr8 plus the YUV 4:2:0 /
4:4:4 ones Jetson pipelines publish:

- bgr8, rgb8, bgra8, rgba8, mono8 and their 16-bit forms bgr16, rgb16, bgra16, rgba16, mono16;
- Bayer mosaics bayer_rggb8, bayer_bggr8, bayer_gbrg8, bayer_grbg8 and their 16-bit forms
  (demosaiced by OpenCV; ROS names the pattern of the first two rows, so bayer_rggb8 is
  OpenCV's ``COLOR_BayerRGGB2BGR`` = ``COLOR_BayerBG2BGR``, as in cv_bridge's table);
- packed YUV 4:2:2: yuv422_yuy2 / yuyv (Y0 U Y1 V, usb_cam's default) and yuv422 / uyvy
  (U Y0 V Y1); width must be even;
- nv12, nv21 (a Y plane, then a half-size interleaved UV / VU plane; width and height even)
  and nv24 (a Y plane, then a full-size UV plane whose rows are 2 * step bytes; converted via
  4:2:0). For these, ``step`` is the row length of the Y plane. cv_bridge converts none of
  the three; ``nv21`` and ``nv24`` are sensor_msgs names, ``nv12`` is what NVIDIA's stacks use.

Rows may be padded (``step`` > width * bytes per pixel). 16-bit samples are reduced to 8 bits
by keeping the high byte (``value >> 8``), honouring ``is_bigendian``; no contrast stretching,
so a 16-bit image that uses only the low range (e.g. a 12-bit sensor) comes out dark.
Depth and data encodings (16UC1, 32FC1, any ``<bits><U|S|F>C<n>``) are refused with a line
that names them, as are images over 8192 px per side or 33.2 Mpx (``limits.py``).

Compressed images (``decode_compressed``): JPEG and PNG, the formats ROS's compressed
transport carries; their headers are checked (``image_headers``) before OpenCV decodes them.
``decode_image_file`` also reads GIF, WebP, BMP, TIFF and PNM files, with the same checks.

Every function returns a new, C-contiguous, writable (H, W, 3) uint8 BGR array that does not
share memory with the input buffer.

The C decoders behind ``cv2.imdecode`` print to file descriptor 2. The core never touches
fd 2 (that is process-wide state); a process that wants those lines caught and throttled
installs a capture with :func:`set_native_capture` (``fer_ros.node.process.native_log``).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

import cv2
import numpy as np

from . import image_headers
from .errors import ImageError
from .limits import MAX_PIXELS, MAX_SIDE


class NativeLines(Protocol):
    """What a native capture reports: the first line a decoder printed ("" for none)."""

    first_line: str


@dataclass
class _Nothing:
    first_line: str = ""


@contextmanager
def _no_capture(what: str) -> Iterator[NativeLines]:
    yield _Nothing()


NativeCapture = Callable[[str], AbstractContextManager[NativeLines]]
_native_capture: NativeCapture = _no_capture


def set_native_capture(capture: NativeCapture | None) -> None:
    """Run every decode inside ``capture(what)`` (None: no capture, decoder lines go to fd 2)."""
    global _native_capture
    _native_capture = capture or _no_capture


@dataclass(frozen=True)
class RawEncoding:
    """How one ROS encoding is laid out: channels and bytes per sample of the packed rows
    (for nv12/nv21/nv24: of the Y plane), and the cvtColor code to BGR (None: bgr already)."""

    channels: int
    depth: int
    code: int | None
    planar: str = ""  # "420" (nv12/nv21: chroma rows below the Y plane), "444" (nv24)
    even_width: bool = False


def _table() -> dict[str, RawEncoding]:
    table = {
        "bgr8": RawEncoding(3, 1, None), "rgb8": RawEncoding(3, 1, cv2.COLOR_RGB2BGR),
        "bgra8": RawEncoding(4, 1, cv2.COLOR_BGRA2BGR), "rgba8": RawEncoding(4, 1, cv2.COLOR_RGBA2BGR),
        "mono8": RawEncoding(1, 1, cv2.COLOR_GRAY2BGR),
    }
    for name in list(table):  # the 16-bit forms
        base = table[name]
        table[name.replace("8", "16")] = RawEncoding(base.channels, 2, base.code)
    bayer = {"rggb": cv2.COLOR_BayerRGGB2BGR, "bggr": cv2.COLOR_BayerBGGR2BGR,
             "gbrg": cv2.COLOR_BayerGBRG2BGR, "grbg": cv2.COLOR_BayerGRBG2BGR}
    for pattern, code in bayer.items():
        table[f"bayer_{pattern}8"] = RawEncoding(1, 1, code)
        table[f"bayer_{pattern}16"] = RawEncoding(1, 2, code)
    yuy2 = RawEncoding(2, 1, cv2.COLOR_YUV2BGR_YUY2, even_width=True)
    uyvy = RawEncoding(2, 1, cv2.COLOR_YUV2BGR_UYVY, even_width=True)
    table.update({"yuv422_yuy2": yuy2, "yuyv": yuy2, "yuv422": uyvy, "uyvy": uyvy,
                  "nv12": RawEncoding(1, 1, cv2.COLOR_YUV2BGR_NV12, "420", True),
                  "nv21": RawEncoding(1, 1, cv2.COLOR_YUV2BGR_NV21, "420", True),
                  "nv24": RawEncoding(1, 1, cv2.COLOR_YUV2BGR_NV12, "444", True)})
    return table


ENCODINGS: dict[str, RawEncoding] = _table()
_DATA_ENCODING = re.compile(r"(8|16|32|64)(U|S|F)C?[0-9]*")


def check_size(width: int, height: int, what: str) -> None:
    """ImageError unless 0 < width, height <= MAX_SIDE and width * height <= MAX_PIXELS."""
    if width <= 0 or height <= 0:
        raise ImageError(f"{what} has size {width}x{height}: width and height must be > 0")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageError(
            f"{what} is {width}x{height}: larger than {MAX_SIDE} pixels per side is not supported"
        )
    if width * height > MAX_PIXELS:
        raise ImageError(f"{what} is {width}x{height}: more than {MAX_PIXELS} pixels (8K UHD) "
                         "is not supported")


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


def raw_encoding(encoding: str) -> RawEncoding:
    """The layout of a supported encoding; ImageError naming it otherwise (depth and data
    encodings such as 16UC1 / 32FC1 get their own message)."""
    layout = ENCODINGS.get(encoding)
    if layout is not None:
        return layout
    if _DATA_ENCODING.fullmatch(encoding):
        raise ImageError(f"image encoding {encoding!r} is depth or raw data, not a camera image: "
                         "expected a colour, mono, Bayer or YUV encoding (e.g. bgr8, "
                         "yuv422_yuy2)")
    raise ImageError(f"unsupported image encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")


def raw_size(encoding: str, width: int, height: int, step: int) -> int:
    """Bytes a raw image needs (step * rows, plus the chroma plane for nv12/nv21/nv24) after
    checking encoding, size and step; ImageError otherwise."""
    layout = raw_encoding(encoding)
    width, height, step = int(width), int(height), int(step)
    check_size(width, height, f"{encoding} image")
    if layout.even_width and (width % 2 or (layout.planar == "420" and height % 2)):
        sides = "width and height" if layout.planar == "420" else "width"
        raise ImageError(f"{encoding} image {width}x{height}: {sides} must be even")
    row_bytes = width * layout.channels * layout.depth
    if step < row_bytes:
        raise ImageError(
            f"{encoding} image {width}x{height}: step {step} is smaller than width * "
            f"bytes per pixel = {row_bytes}"
        )
    if layout.planar == "420":
        return step * height * 3 // 2
    if layout.planar == "444":
        return step * height * 3
    return step * height


def to_bgr(
    data: Any, encoding: str, width: int, height: int, step: int, is_bigendian: bool = False
) -> np.ndarray:
    """Convert a raw ``sensor_msgs/Image``-style buffer to a BGR uint8 (height, width, 3) array.

    Raises ImageError for an unknown, depth or float encoding, a zero or absurd size, a step
    smaller than one row of pixels, or data shorter than the layout needs.
    """
    needed = raw_size(encoding, width, height, step)
    layout = ENCODINGS[encoding]
    width, height, step = int(width), int(height), int(step)
    buf = _as_bytes_view(data)
    if buf.size < needed:
        raise ImageError(
            f"{encoding} image {width}x{height}, step {step}: data has {buf.size} bytes, "
            f"expected at least {needed}"
        )
    if layout.planar:
        return _planar_to_bgr(buf[:needed], layout, width, height, step)
    row_bytes = width * layout.channels * layout.depth
    rows = buf[: step * height].reshape(height, step)[:, :row_bytes]
    if layout.depth == 2:  # keep the high byte of each 16-bit sample (value >> 8)
        rows = rows[:, 0::2] if is_bigendian else rows[:, 1::2]
    pixels = rows.reshape(height, width, layout.channels) if layout.channels > 1 else rows
    if layout.code is None:
        return np.array(pixels, dtype=np.uint8, order="C", copy=True)
    if layout.channels == 1 and layout.code != cv2.COLOR_GRAY2BGR:
        pixels = np.ascontiguousarray(pixels)  # demosaicing wants contiguous rows
    # cvtColor accepts strided input and always allocates a fresh contiguous output.
    return cv2.cvtColor(pixels, layout.code)


def _planar_to_bgr(buf: np.ndarray, layout: RawEncoding, width: int, height: int,
                   step: int) -> np.ndarray:
    """nv12 / nv21 / nv24 -> BGR, via OpenCV's NV12/NV21 converters (nv24: chroma halved)."""
    luma = buf[: step * height].reshape(height, step)[:, :width]
    if layout.planar == "420":
        chroma = buf[step * height:].reshape(height // 2, step)[:, :width]
    else:  # nv24: full-size UV rows of 2 * step bytes -> every other pair of every other row
        uv = buf[step * height:].reshape(height, 2 * step)[::2, : 2 * width]
        chroma = uv.reshape(height // 2, width, 2)[:, ::2].reshape(height // 2, width)
    return cv2.cvtColor(np.ascontiguousarray(np.vstack([luma, chroma])), layout.code)


def decode_compressed(data: Any, format_string: str = "") -> np.ndarray:
    """Decode JPEG/PNG bytes (a ``sensor_msgs/CompressedImage``) to a BGR uint8 (H, W, 3) array.

    The format comes from the bytes; ``format_string`` (the message's ``format``) is only
    checked for compressedDepth, a depth image, which is refused. Every size the headers
    declare is checked before decoding, and headers that lie about the data (a chunk length
    past the end, too few bytes for the declared pixels) are refused, so a decompression bomb
    never reaches OpenCV. Native decoder messages (libjpeg, libpng, OpenCV) go through
    the installed native capture (see the module docstring). Raises ImageError for empty, depth, undecodable or too large
    data.
    """
    if "compresseddepth" in str(format_string).lower():
        raise ImageError(f"compressed image format {format_string!r} is a depth image, not a "
                         "camera image")
    return _decode(data, ("jpeg", "png"), "compressed image")


FILE_FORMATS = ("jpeg", "png", "gif", "webp", "bmp", "tiff", "pnm")


def decode_image_file(data: Any) -> np.ndarray:
    """Decode the bytes of an image file (JPEG, PNG, GIF, WebP, BMP, TIFF, PNM) with the same
    header checks as ``decode_compressed``; other formats are refused."""
    return _decode(data, FILE_FORMATS, "image")


def _decode(data: Any, allowed: tuple[str, ...], what: str) -> np.ndarray:
    buf = _as_bytes_view(data)
    if buf.size == 0:
        raise ImageError(f"{what} data is empty")
    raw = buf.tobytes()
    fmt = image_headers.image_format(raw)
    if fmt is None or fmt not in allowed:
        kind = "in an unknown format" if fmt is None else fmt.upper()
        names = ", ".join(f.upper() for f in allowed)
        raise ImageError(f"{what} ({buf.size} bytes) is {kind}: expected {names}")
    for width, height in image_headers.declared_sizes(raw, fmt):
        check_size(width, height, f"{what} ({fmt.upper()} header)")
    name = fmt.upper()
    with _native_capture(f"decoding a {name} image") as native:
        try:
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        except cv2.error as exc:  # OpenCV's own checks (e.g. its pixel limit) raise
            raise ImageError(f"{name} data ({buf.size} bytes) could not be decoded: "
                             f"{exc.err or exc}") from exc
    if image is None:
        said = f" ({native.first_line})" if native.first_line else ""
        raise ImageError(f"{name} data ({buf.size} bytes) could not be decoded{said}")
    check_size(image.shape[1], image.shape[0], what)
    return np.ascontiguousarray(image)


def from_bgr(bgr: np.ndarray, encoding: str = "bgr8") -> tuple[bytes, int]:
    """Encode a BGR uint8 image for a ``sensor_msgs/Image``: returns (data, step).

    ``encoding`` is any of ENCODINGS (bgr8 by default): what a camera in that encoding would
    send (16-bit samples little-endian, value * 257; Bayer by sampling the mosaic; YUV with
    OpenCV's BT.601 converters). Rows are not padded (step = width * bytes per pixel; for
    nv12/nv21/nv24 the Y plane's row length). Odd sizes are refused for the YUV encodings.
    """
    bgr = ensure_bgr(bgr)
    layout = raw_encoding(encoding)
    h, w = bgr.shape[:2]
    raw_size(encoding, w, h, w * layout.channels * layout.depth)  # size / parity checks
    if layout.planar:
        i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # Y, then U and V planes at half size
        u = i420[h: h + h // 4].reshape(h // 2, w // 2)
        v = i420[h + h // 4:].reshape(h // 2, w // 2)
        first, second = (v, u) if encoding == "nv21" else (u, v)
        chroma = np.dstack([first, second])
        if layout.planar == "444":
            chroma = np.repeat(np.repeat(chroma, 2, axis=0), 2, axis=1)
        out = np.concatenate([i420[:h].ravel(), chroma.ravel()])
        return out.tobytes(), w
    base = encoding.replace("16", "8")
    if base.startswith("bayer_"):
        out = _mosaic(bgr, base[6:10])
    elif base in ("yuv422_yuy2", "yuyv"):
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUY2)
    elif base in ("yuv422", "uyvy"):
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_UYVY)
    elif base == "bgr8":
        out = bgr
    else:
        out = cv2.cvtColor(bgr, {"rgb8": cv2.COLOR_BGR2RGB, "bgra8": cv2.COLOR_BGR2BGRA,
                                 "rgba8": cv2.COLOR_BGR2RGBA, "mono8": cv2.COLOR_BGR2GRAY}[base])
    out = np.ascontiguousarray(out)
    if layout.depth == 2:
        out = (out.astype("<u2") * 257).astype("<u2")
    return out.tobytes(), int(out.strides[0])


def _mosaic(bgr: np.ndarray, pattern: str) -> np.ndarray:
    """The Bayer mosaic a sensor with ``pattern`` (e.g. 'rggb': R G on even rows, G B on odd
    rows) records of ``bgr``."""
    channel = {"b": 0, "g": 1, "r": 2}
    out = np.empty(bgr.shape[:2], np.uint8)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[dy::2, dx::2] = bgr[dy::2, dx::2, channel[pattern[k]]]
    return out


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
