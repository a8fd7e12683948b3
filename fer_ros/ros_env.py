"""Environment for fer_ros processes: the Fast DDS large-image profile and test isolation."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

PROFILE_NAME = "fastdds_large_images.xml"


def fastdds_profile() -> Path:
    """The shipped Fast DDS profile (installed share dir, else the source tree's config/)."""
    for base in (Path(sys.prefix) / "share" / "fer_ros" / "config",
                 Path(__file__).resolve().parents[1] / "config"):
        if (base / PROFILE_NAME).is_file():
            return base / PROFILE_NAME
    raise FileNotFoundError(f"{PROFILE_NAME} not found: reinstall fer_ros")


def dds_env(base: dict[str, str] | None = None, isolate: bool = False) -> dict[str, str]:
    """``base`` (default os.environ) plus the profile for Fast DDS 2.x and 3.x; with
    ``isolate``, a random ROS_DOMAIN_ID and localhost-only discovery (unless already set)."""
    env = dict(os.environ if base is None else base)
    profile = str(fastdds_profile())
    env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", profile)
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", profile)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if isolate:
        env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env
