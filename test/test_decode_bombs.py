"""Decompression bombs and forged headers are refused from their headers, before OpenCV
decodes anything; OpenCV's own decoder limits are in effect in every fer_ros process; native
decoder messages are caught and throttled, other stderr output passes through."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT, SHARED_DIR
from fer_ros.core import image_headers
from fer_ros.core.errors import ImageError
from fer_ros.core.image_codec import decode_compressed, decode_image_file
from image_bombs import bombs, gif, jpeg_with_size

BOMBS = bombs()
# what each refusal must say: the size limit, or the lie in the structure
REASON = {
    "jpeg_truncated_8k": "JPEG declares 7680x4320 but has only 1497 bytes",
    "png_idat_length_0xfffffff0": "PNG chunk 'IDAT' declares 4294967280 bytes",
    "png_tiny_idat_8k": "PNG declares 7680x4320 but has only 12 bytes of image data",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_every_bomb_is_refused_from_its_header(name):
    with pytest.raises(ImageError) as info:
        decode_image_file(BOMBS[name])
    message = str(info.value)
    assert REASON.get(name, "larger than 8192 pixels per side") in message, message
    assert "\n" not in message


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_the_compressed_transport_takes_only_jpeg_and_png(name):
    with pytest.raises(ImageError, match="expected JPEG, PNG|JPEG|PNG"):
        decode_compressed(BOMBS[name], "jpeg")


def test_the_size_check_walks_past_64_kib_of_app_segments():
    data = jpeg_with_size(9000, 64, app_padding=200_000)
    assert image_headers.declared_sizes(data, "jpeg") == [(9000, 64)]
    with pytest.raises(ImageError, match="9000x64: larger than 8192"):
        decode_compressed(data)


def test_every_gif_frame_is_checked_not_only_the_screen():
    assert image_headers.declared_sizes(gif((16, 16), (20000, 8)), "gif") == [(16, 16), (20000, 8)]


def test_a_second_jpeg_frame_header_is_refused():
    data = bytearray(jpeg_with_size(64, 48))
    sof = data.find(b"\xff\xc0")
    length = int.from_bytes(data[sof + 2:sof + 4], "big")
    data[sof:sof] = data[sof:sof + 2 + length]  # the frame header twice
    with pytest.raises(ImageError, match="declares 2 frame headers"):
        decode_compressed(bytes(data))


def test_arithmetic_coded_jpeg_is_refused():
    data = bytearray(jpeg_with_size(64, 48))
    sof = data.find(b"\xff\xc0")
    data[sof + 1] = 0xC9
    with pytest.raises(ImageError, match="SOF9 .* is not supported"):
        decode_compressed(bytes(data))


def test_real_images_within_the_limits_still_decode():
    face = cv2.imread(str(SHARED_DIR / "samples" / "fer_justin.jpg"))
    if face is None:
        pytest.skip("../shared/samples is absent")
    big = cv2.resize(face, (3840, 2160))
    for ext, params in ((".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", [])):
        out = decode_compressed(cv2.imencode(ext, big, params)[1].tobytes())
        assert out.shape == big.shape
    flat = np.full((2160, 3840, 3), 128, np.uint8)  # a uniform 4K frame compresses very well
    assert decode_compressed(cv2.imencode(".png", flat)[1].tobytes()).shape == flat.shape
    assert decode_compressed(cv2.imencode(".jpg", flat)[1].tobytes()).shape == flat.shape


LIMIT_CHILD = """
import sys
{first}
import cv2, numpy as np
data = np.frombuffer(sys.stdin.buffer.read(), np.uint8)
try:
    out = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    print("decoded" if out is not None else "refused")
except cv2.error as exc:
    print("refused" if "CV_IO_MAX_IMAGE_PIXELS" in str(exc) else f"other error {exc}")
"""


def test_opencv_pixel_limit_is_in_effect_after_importing_fer_ros():
    """A valid PNG of 8192x4100 (33.6 Mpx, over the 33.2 Mpx limit) handed to cv2.imdecode
    directly: refused by OpenCV itself in a process that imported fer_ros first, decoded in
    one that did not (the control)."""
    png = cv2.imencode(".png", np.zeros((4100, 8192), np.uint8))[1].tobytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_IO_MAX_IMAGE")}
    results = {}
    for first in ("import fer_ros", "pass"):
        proc = subprocess.run([sys.executable, "-c", LIMIT_CHILD.replace("{first}", first)],
                              input=png, capture_output=True, cwd=str(REPO_ROOT), timeout=120,
                              env=env)
        results[first] = proc.stdout.decode().strip()
    assert results == {"import fer_ros": "refused", "pass": "decoded"}, results


NATIVE_CHILD = """
import os, sys, cv2, numpy as np
from fer_ros.core import image_codec
from fer_ros.node.process import native_log
native_log.install()  # the node and fer-detect do this at start
face = cv2.resize(cv2.imread(sys.argv[1]), (320, 240))
jpeg = cv2.imencode(".jpg", face)[1].tobytes()
png = cv2.imencode(".png", face)[1].tobytes()
bad = [jpeg[:len(jpeg) // 2], png[:41] + b"\\x00" + png[42:]]  # truncated scan; bad chunk
refused = 0
for i in range(200):
    try:
        image_codec.decode_compressed(bad[i % 2])
    except image_codec.ImageError:
        refused += 1
    if i == 100:
        os.write(2, b"a line of someone else\\n")
print(refused)
"""


def test_native_decoder_lines_are_throttled_and_others_pass():
    face = SHARED_DIR / "samples" / "fer_justin.jpg"
    if not face.is_file():
        pytest.skip("../shared/samples is absent")
    proc = subprocess.run([sys.executable, "-c", NATIVE_CHILD, str(face)], capture_output=True,
                          text=True, cwd=str(REPO_ROOT), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 100  # the corrupt PNGs at least
    lines = proc.stderr.splitlines()
    # without the capture: one libjpeg / libpng line per bad image (200)
    native = [ln for ln in lines if ln.startswith("fer_ros: native decoder message")]
    assert 1 <= len(native) <= 2, lines
    assert "a line of someone else" in lines
    assert len(lines) <= 3, lines
