"""Test helper process: a ROS4HRI consumer as libhri/pyhri are, over DDS. Subscribes to
/humans/faces/tracked and, for each id it lists, to /humans/faces/<id>/{roi,cropped,expression};
prints one JSON line when it has all four for a face ("face"), then one when that face has
left the tracked list and its topics have no publisher any more ("ended"), and exits.
Run with the environment that finds hri_msgs (test/hri_msgs_build.py)."""

from __future__ import annotations

import json
import sys
import time

import rclpy
from hri_msgs.msg import Expression, IdsList, NormalizedRegionOfInterest2D
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

FACES = "/humans/faces"


def main(timeout_s: float) -> int:
    rclpy.init()
    node = rclpy.create_node("hri_listener")
    qos = QoSProfile(depth=1)
    got: dict = {}
    subs: dict = {}
    tracked: list[list[str]] = []
    node.create_subscription(IdsList, f"{FACES}/tracked", lambda m: tracked.append(list(m.ids)), qos)
    print("ready", flush=True)

    def subscribe(face: str) -> None:
        def keep(kind):
            return lambda m: got.setdefault(face, {}).__setitem__(kind, m)

        subs[face] = [node.create_subscription(t, f"{FACES}/{face}/{kind}", keep(kind), qos)
                      for t, kind in ((NormalizedRegionOfInterest2D, "roi"), (Image, "cropped"),
                                      (Expression, "expression"))]

    reported = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
        for face in (tracked[-1] if tracked else []):
            if face not in subs:
                subscribe(face)
        if reported is None:
            for face, kinds in got.items():
                if len(kinds) == 3 and tracked and face in tracked[-1]:
                    roi, img, exp = kinds["roi"], kinds["cropped"], kinds["expression"]
                    print(json.dumps({"face": face, "tracked": tracked[-1],
                                      "roi": [roi.xmin, roi.ymin, roi.xmax, roi.ymax, roi.c],
                                      "cropped": [img.width, img.height, img.encoding],
                                      "expression": exp.expression, "valence": exp.valence,
                                      "arousal": exp.arousal, "confidence": exp.confidence,
                                      "stamp": exp.header.stamp.sec}), flush=True)
                    reported = face
                    break
        elif tracked and reported not in tracked[-1] and all(
                s.get_publisher_count() == 0 for s in subs[reported]):
            print(json.dumps({"ended": reported, "tracked": tracked[-1]}), flush=True)
            return 0
    print(json.dumps({"timeout": True, "tracked": tracked[-1:], "got": sorted(got)}), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0))
