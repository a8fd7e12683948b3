"""image_transport's naming convention for the node's compressed input: the subscription is
the REMAPPED base topic + /compressed, as image_transport's compressed subscriber makes it."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
pytest.importorskip("fer_msgs.msg", reason="fer_msgs is not built (run `make setup`)")

from conftest import SHARED_DIR, stop_process  # noqa: E402
from test_emotion_node import Exchange, sample, start_node  # noqa: E402

pytestmark = pytest.mark.skipif(not (SHARED_DIR / "samples").is_dir(),
                                reason="../shared/samples is absent")


def test_compressed_input_follows_the_remapped_base_topic(ros):
    # confirm_hits 1: one image is asked, and a face is published only once confirmed
    node = start_node("-r", "image_raw:=/camera/image_raw", "-p", "input_transport:=compressed",
                      "-p", "publish_annotated:=false", "-p", "confirm_hits:=1")
    try:
        ex = Exchange(ros, "/camera/image_raw/compressed", "emotions", compressed=True)
        answer = ex.ask(sample("fer_justin.jpg"), node)
        assert [e.label for e in answer.emotions] == ["happy"]
    finally:
        out, err = stop_process(node)
    assert "waiting for CompressedImage on /camera/image_raw/compressed" in out + err
