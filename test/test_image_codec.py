"""image_codec: every ROS encoding (with/without row padding) -> the same BGR pixels; bad
buffers raise ImageError with a clear message."""

from __future__ import annotations

import array
from conftest import SHARED_DIR

import cv2
import numpy as np
import pytest

from fer_ros.core.errors import ImageError
from fer_ros.core.image_codec import (ENCODINGS, MAX_SIDE, decode_compressed, decode_image_file,
                                     ensure_bgr, from_bgr, to_bgr)

H, W = 37, 53  # odd sizes catch stride mistakes
SHARED_SAMPLES = SHARED_DIR / "samples"


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _gray_bgr(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _buffers(bgr: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """encoding -> (pixel array as the camera would lay it out, expected BGR, is_bigendian)."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    g16 = gray.astype(np.uint16) * 256 + 0xAB  # low byte must be ignored (>> 8)
    return {
        "bgr8": (bgr, bgr, False),
        "rgb8": (bgr[:, :, ::-1], bgr, False),
        "bgra8": (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), bgr, False),
        "rgba8": (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA), bgr, False),
        "mono8": (gray, _gray_bgr(bgr), False),
        "mono16-le": (g16.astype("<u2"), _gray_bgr(bgr), False),
        "mono16-be": (g16.astype(">u2"), _gray_bgr(bgr), True),
    }


def _pack(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(pixels.shape[0], -1)
    padding = np.full((rows.shape[0], pad), 0x5A, dtype=np.uint8)
    return np.concatenate([rows, padding], axis=1).tobytes(), rows.shape[1] + pad


@pytest.mark.parametrize("pad", [0, 3, 64])
@pytest.mark.parametrize("name", ["bgr8", "rgb8", "bgra8", "rgba8", "mono8", "mono16-le", "mono16-be"])
def test_every_encoding_gives_the_same_bgr(bgr, name, pad):
    pixels, expected, big = _buffers(bgr)[name]
    data, step = _pack(pixels, pad)
    out = to_bgr(data, name.split("-")[0], W, H, step, is_bigendian=big)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview, "array", "ndarray"])
def test_accepts_any_byte_buffer_and_copies(bgr, kind):
    raw = bgr.tobytes()
    data = {"array": lambda b: array.array("B", b), "ndarray": lambda b: np.frombuffer(b, np.uint8)}
    buf = data[kind](raw) if isinstance(kind, str) else kind(raw)
    out = to_bgr(buf, "bgr8", W, H, W * 3)
    np.testing.assert_array_equal(out, bgr)
    out[0, 0] = 0  # a fresh, writable array that does not alias the message buffer
    assert bytes(raw[:3]) == bgr[0, 0].tobytes()


def test_data_longer_than_needed_is_fine(bgr):
    out = to_bgr(bgr.tobytes() + b"\x00" * 100, "bgr8", W, H, W * 3)
    np.testing.assert_array_equal(out, bgr)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoding": "yuv420"}, "unsupported image encoding 'yuv420': use one of bgr8"),
        ({"encoding": "16UC1"}, "image encoding '16UC1' is depth or raw data, not a camera image"),
        ({"encoding": "32FC1"}, "image encoding '32FC1' is depth or raw data"),
        ({"encoding": "8UC3"}, "image encoding '8UC3' is depth or raw data"),
        ({"encoding": "64FC4"}, "image encoding '64FC4' is depth or raw data"),
        ({"encoding": "yuv422_yuy2", "step": W * 2}, "yuv422_yuy2 image 53x37: width must be even"),
        ({"encoding": "nv12", "width": 52, "step": 52}, "nv12 image 52x37: width and height must be even"),
        ({"width": 8000, "height": 4400, "step": 24000}, "more than 33177600 pixels"),
        ({"width": 0}, "width and height must be > 0"),
        ({"height": 0}, "width and height must be > 0"),
        ({"step": W * 3 - 1}, "step 158 is smaller than width * bytes per pixel = 159"),
        ({"data_len": W * 3 * H - 1}, f"expected at least {W * 3 * H}"),
        ({"width": MAX_SIDE + 1, "step": (MAX_SIDE + 1) * 3}, "larger than 8192"),
        ({"height": 100000}, "larger than 8192"),
    ],
)
def test_bad_raw_images_raise_clear_errors(bgr, kwargs, message):
    args = {"encoding": "bgr8", "width": W, "height": H, "step": W * 3}
    data = bgr.tobytes()
    if "data_len" in kwargs:
        data = data[: kwargs.pop("data_len")]
    args.update(kwargs)
    with pytest.raises(ImageError, match=message.replace("*", r"\*").replace("(", r"\(")):
        to_bgr(data, **args)


def test_mono16_step_counts_bytes_not_pixels():
    with pytest.raises(ImageError, match="bytes per pixel = 20"):
        to_bgr(b"\x00" * 200, "mono16", 10, 10, 10)


def test_non_buffer_data_is_an_image_error():
    with pytest.raises(ImageError, match="bytes-like"):
        to_bgr([1, 2, 3], "mono8", 3, 1, 3)


def test_decode_png_exact_and_jpeg_close(bgr):
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    np.testing.assert_array_equal(decode_compressed(png.tobytes()), bgr)
    smooth = cv2.GaussianBlur(bgr, (0, 0), 3)
    ok, jpg = cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = decode_compressed(bytes(jpg))
    assert out.shape == (H, W, 3) and out.flags.c_contiguous
    assert np.abs(out.astype(int) - smooth).mean() < 3


def test_decode_gray_png_gives_bgr(bgr):
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    ok, png = cv2.imencode(".png", gray)
    np.testing.assert_array_equal(decode_compressed(png.tobytes()), _gray_bgr(bgr))


@pytest.mark.parametrize(("data", "message"), [
    (b"", "compressed image data is empty"),
    (b"not an image at all", r"\(19 bytes\) is in an unknown format: expected JPEG, PNG"),
    (b"\xff\xd8\xff\xe0garbage" * 10, "JPEG marker 0xE0 segment .* runs past the end"),
    (b"GIF89a" + bytes(20), "is GIF: expected JPEG, PNG"),
    (b"BM" + bytes(60), "is BMP: expected JPEG, PNG"),
])
def test_undecodable_compressed_bytes(data, message):
    with pytest.raises(ImageError, match=message):
        decode_compressed(data)


def test_absurd_compressed_size_is_refused_before_decoding_even_with_a_bad_crc():
    ok, png = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    data = bytearray(png.tobytes())
    data[16:20] = (20000).to_bytes(4, "big")  # IHDR width; the CRC no longer matches, unread
    with pytest.raises(ImageError, match="20000x4.*larger than 8192"):
        decode_compressed(bytes(data))


def test_jpeg_header_size_is_checked(bgr):
    ok, jpg = cv2.imencode(".jpg", bgr)
    data = bytearray(jpg.tobytes())
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 7] = (9000).to_bytes(2, "big")  # height
    with pytest.raises(ImageError, match="larger than 8192"):
        decode_compressed(bytes(data))


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono8"])
def test_from_bgr_round_trips(bgr, encoding):
    data, step = from_bgr(bgr, encoding)
    channels = 1 if encoding == "mono8" else 3
    assert isinstance(data, bytes) and step == W * channels and len(data) == step * H
    expected = _gray_bgr(bgr) if encoding == "mono8" else bgr
    np.testing.assert_array_equal(to_bgr(data, encoding, W, H, step), expected)


def test_from_bgr_of_a_non_contiguous_view(bgr):
    view = bgr[:, ::2]
    data, step = from_bgr(view)
    np.testing.assert_array_equal(to_bgr(data, "bgr8", view.shape[1], H, step), view)


def test_from_bgr_rejects_other_encodings(bgr):
    with pytest.raises(ImageError, match="'16UC1' is depth or raw data"):
        from_bgr(bgr, "16UC1")


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "got None"),
        ([[1, 2]], "numpy array"),
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((4, 4, 4), np.uint8), r"not BGR \(H, W, 3\)"),
        (np.zeros((4,), np.uint8), "not BGR"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
    ],
)
def test_ensure_bgr_rejects_bad_frames(frame, message):
    with pytest.raises(ImageError, match=message):
        ensure_bgr(frame)


def test_ensure_bgr_converts_gray(bgr):
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(ensure_bgr(gray), _gray_bgr(bgr))
    np.testing.assert_array_equal(ensure_bgr(gray[:, :, None]), _gray_bgr(bgr))
    assert ensure_bgr(bgr) is bgr  # a valid BGR frame is not copied


# ----- camera encodings: made from a real face photo ------------------------------------------
FACE = SHARED_SAMPLES / "fer_justin.jpg"


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    if not FACE.is_file():
        pytest.skip("../shared/samples is absent")
    return cv2.resize(cv2.imread(str(FACE)), (320, 240))


def _padded(data: bytes, step: int, rows: int, pad: int) -> tuple[bytes, int]:
    """Pad every row of a packed buffer (rows of ``step`` bytes) by ``pad`` bytes."""
    arr = np.frombuffer(data, np.uint8).reshape(rows, step)
    return _pack(arr, pad)


@pytest.mark.parametrize("pad", [0, 6])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_camera_encoding_of_a_face_converts_back(face, encoding, pad):
    data, step = from_bgr(face, encoding)
    h, w = face.shape[:2]
    rows = len(data) // step  # nv12/nv21/nv24: the chroma rows count too
    if pad and ENCODINGS[encoding].planar != "444":
        data, step = _padded(data, step, rows, pad)
    out = to_bgr(data, encoding, w, h, step)
    assert out.shape == (h, w, 3) and out.flags.c_contiguous
    expected = _gray_bgr(face) if encoding.startswith("mono") else face
    # lossless for the RGB forms, close for Bayer (demosaicing) and YUV (chroma subsampling)
    tolerance = 0 if ENCODINGS[encoding].code in (None, cv2.COLOR_RGB2BGR, cv2.COLOR_BGRA2BGR,
                                                  cv2.COLOR_RGBA2BGR, cv2.COLOR_GRAY2BGR) else 3.0
    assert np.abs(out.astype(int) - expected).mean() <= tolerance


def test_16_bit_encodings_honour_big_endian(face):
    for encoding in ("bgr16", "rgba16", "bayer_grbg16", "mono16"):
        data, step = from_bgr(face, encoding)
        swapped = np.frombuffer(data, "<u2").astype(">u2").tobytes()
        h, w = face.shape[:2]
        np.testing.assert_array_equal(to_bgr(swapped, encoding, w, h, step, is_bigendian=True),
                                      to_bgr(data, encoding, w, h, step))


def test_bayer_patterns_follow_ros_naming():
    """ROS names the colours of the first two rows: bayer_rggb8 is R G / G B (cv_bridge maps it
    to OpenCV's BayerBG); a wrong mapping swaps red and blue."""
    bgr = np.zeros((16, 16, 3), np.uint8)
    bgr[..., 2], bgr[..., 1], bgr[..., 0] = 200, 50, 10  # red-ish
    first_rows = {"rggb": (2, 1, 1, 0), "bggr": (0, 1, 1, 2), "gbrg": (1, 0, 2, 1), "grbg": (1, 2, 0, 1)}
    for pattern, channels in first_rows.items():
        mosaic = np.empty((16, 16), np.uint8)
        for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            mosaic[dy::2, dx::2] = bgr[dy::2, dx::2, channels[k]]
        out = to_bgr(mosaic.tobytes(), f"bayer_{pattern}8", 16, 16, 16)
        np.testing.assert_array_equal(out[6:10, 6:10], bgr[6:10, 6:10])


def _bt601(y: int, u: int, v: int) -> np.ndarray:
    """BGR of one studio-range BT.601 YUV sample (the formula cameras use)."""
    c, d, e = 1.164 * (y - 16), u - 128, v - 128
    return np.clip(np.round([c + 2.018 * d, c - 0.391 * d - 0.813 * e, c + 1.596 * e]), 0, 255)


@pytest.mark.parametrize("encoding", ["yuv422_yuy2", "yuyv", "uyvy", "yuv422", "nv12", "nv21", "nv24"])
def test_yuv_layouts_built_by_hand(encoding):
    """Buffers laid out by hand (not by OpenCV's own inverse) convert to the BT.601 colour."""
    w, h, (y, u, v) = 8, 4, (120, 90, 170)
    if encoding in ("yuv422_yuy2", "yuyv"):
        data, step = bytes([y, u, y, v] * (w // 2) * h), 2 * w
    elif encoding in ("uyvy", "yuv422"):
        data, step = bytes([u, y, v, y] * (w // 2) * h), 2 * w
    elif encoding == "nv24":
        data, step = bytes([y] * w * h) + bytes([u, v] * w * h), w
    else:
        pair = [u, v] if encoding == "nv12" else [v, u]
        data, step = bytes([y] * w * h) + bytes(pair * (w // 2) * (h // 2)), w
    out = to_bgr(data, encoding, w, h, step)
    assert np.abs(out.astype(int) - _bt601(y, u, v)).max() <= 2, out[0, 0]


def test_nv12_padded_planes_share_the_step(face):
    data, step = from_bgr(face, "nv12")
    h, w = face.shape[:2]
    padded, new_step = _padded(data, step, h * 3 // 2, 32)
    np.testing.assert_array_equal(to_bgr(padded, "nv12", w, h, new_step),
                                  to_bgr(data, "nv12", w, h, step))


@pytest.mark.parametrize("encoding", ["nv12", "yuv422_yuy2", "bayer_rggb16", "bgra16"])
def test_short_data_names_the_bytes_needed(face, encoding):
    data, step = from_bgr(face, encoding)
    h, w = face.shape[:2]
    with pytest.raises(ImageError, match=f"{encoding} image {w}x{h}, step {step}: data has "
                                         f"{len(data) - 1} bytes, expected at least {len(data)}"):
        to_bgr(data[:-1], encoding, w, h, step)


def test_compressed_depth_is_refused_by_name():
    ok, png = cv2.imencode(".png", np.zeros((4, 4), np.uint16))
    with pytest.raises(ImageError, match="'16UC1; compressedDepth png' is a depth image"):
        decode_compressed(png.tobytes(), "16UC1; compressedDepth png")


def test_image_files_of_every_format_decode(face):
    for ext in (".jpg", ".png", ".webp", ".bmp", ".tiff", ".ppm"):
        data = cv2.imencode(ext, face)[1].tobytes()
        out = decode_image_file(data)
        assert out.shape == face.shape, ext
        assert np.abs(out.astype(int) - face).mean() < 4, ext
