"""Recorded QoS profiles: parsed from and written to a bag as rosbag2 does, in both layouts.

rosbag2 keeps each topic's ``offered_qos_profiles`` (the QoS its publishers offered while it
was recorded) in metadata.yaml, in the mcap channel metadata and in the sqlite3 ``topics``
table. Two layouts exist (rosbag2_storage/src/rosbag2_storage/qos.cpp, yaml.hpp):

* metadata version < 9 (Humble writes 5): a YAML *string* holding a list of profiles whose
  policies are rmw enum integers (``reliability: 1``);
* version 9 (Jazzy and later): in metadata.yaml a YAML *list*, policies as rmw names
  (``reliability: reliable``). The storage files hold the same list as a YAML string.

Jazzy reads both (it auto-detects integers); Humble reads only the first.
``play_profile`` adapts the recorded offers to one publisher profile like
``Rosbag2QoS::adapt_offer_to_recorded_offers`` (Jazzy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .errors import BagError

INFINITE_NS = 9_223_372_036_854_775_807  # RMW_DURATION_INFINITE
# rmw enum values (rmw/types.h, Jazzy) and their names (rmw/qos_string_conversions.c)
HISTORY = {0: "system_default", 1: "keep_last", 2: "keep_all", 3: "unknown"}
RELIABILITY = {0: "system_default", 1: "reliable", 2: "best_effort", 3: "unknown",
               4: "best_available"}
DURABILITY = {0: "system_default", 1: "transient_local", 2: "volatile", 3: "unknown",
              4: "best_available"}
LIVELINESS = {0: "system_default", 1: "automatic", 3: "manual_by_topic", 4: "unknown",
              5: "best_available"}
# Durations some RMWs reported as "infinite" before RMW_DURATION_INFINITE (Foxy bags)
_FOXY_INFINITE = {(0x7FFFFFFF, 0xFFFFFFFF), (0x7FFFFFFF, 0x7FFFFFFF),
                  divmod(0x7FFFFFFFFFFFFFFF, 1_000_000_000)}


@dataclass(frozen=True)
class Qos:
    """One offered QoS profile; policies as rmw enum integers, durations in ns."""

    history: int = 1
    depth: int = 10
    reliability: int = 1
    durability: int = 2
    deadline_ns: int = 0
    lifespan_ns: int = 0
    liveliness: int = 0
    liveliness_lease_duration_ns: int = 0
    avoid_ros_namespace_conventions: bool = False

    @property
    def reliable(self) -> bool:
        return self.reliability == 1

    @property
    def transient_local(self) -> bool:
        return self.durability == 1


SENSOR_DATA = Qos(history=1, depth=5, reliability=2, durability=2)  # qos_profile_sensor_data


def _time(node: Any) -> int:
    sec, nsec = int(node["sec"]), int(node["nsec"])
    return INFINITE_NS if (sec, nsec) in _FOXY_INFINITE else sec * 1_000_000_000 + nsec


def _policy(value: Any, names: dict[int, str]) -> int:
    if isinstance(value, bool):
        raise ValueError(f"bad QoS policy {value!r}")
    if isinstance(value, int):
        return value
    for number, name in names.items():
        if name == str(value).lower():
            return number
    raise ValueError(f"unknown QoS policy {value!r}")


def parse_profiles(value: Any) -> list[Qos]:
    """Profiles from a metadata value: a YAML list (v9) or a string holding one (v < 9)."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        from .safe_yaml import loads  # no aliases, bounded size

        value = loads(value, "offered_qos_profiles")
    if not isinstance(value, list):
        raise BagError("offered_qos_profiles is not a list of QoS profiles")
    try:
        return [Qos(
            history=_policy(p["history"], HISTORY), depth=int(p["depth"]),
            reliability=_policy(p["reliability"], RELIABILITY),
            durability=_policy(p["durability"], DURABILITY),
            deadline_ns=_time(p["deadline"]), lifespan_ns=_time(p["lifespan"]),
            liveliness=_policy(p["liveliness"], LIVELINESS),
            liveliness_lease_duration_ns=_time(p["liveliness_lease_duration"]),
            avoid_ros_namespace_conventions=bool(p["avoid_ros_namespace_conventions"]))
            for p in value]
    except (KeyError, TypeError, ValueError) as exc:
        raise BagError(f"offered_qos_profiles: bad QoS profile ({type(exc).__name__}: "
                       f"{str(exc)[:80]})") from None


def _duration(ns: int) -> dict[str, int]:
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def profile_dicts(profiles: list[Qos], named: bool) -> list[dict[str, Any]]:
    """The profiles as rosbag2 writes them: rmw names (``named``, v9) or enum integers."""
    def pick(value: int, names: dict[int, str]) -> int | str:
        return names.get(value, "unknown") if named else value

    return [{
        "history": pick(q.history, HISTORY), "depth": q.depth,
        "reliability": pick(q.reliability, RELIABILITY),
        "durability": pick(q.durability, DURABILITY),
        "deadline": _duration(q.deadline_ns), "lifespan": _duration(q.lifespan_ns),
        "liveliness": pick(q.liveliness, LIVELINESS),
        "liveliness_lease_duration": _duration(q.liveliness_lease_duration_ns),
        "avoid_ros_namespace_conventions": q.avoid_ros_namespace_conventions,
    } for q in profiles]


def profiles_string(profiles: list[Qos], named: bool) -> str:
    """The YAML string rosbag2 stores (``serialize_rclcpp_qos_vector``); "" for none."""
    if not profiles:
        return ""
    return yaml.safe_dump(profile_dicts(profiles, named), sort_keys=False,
                          default_flow_style=False).rstrip("\n")


def from_rclpy(profile: Any) -> Qos:
    """An rclpy QoSProfile (e.g. from get_publishers_info_by_topic)."""
    def ns(d: Any) -> int:
        return int(getattr(d, "nanoseconds", 0))

    return Qos(int(profile.history), int(profile.depth), int(profile.reliability),
               int(profile.durability), ns(profile.deadline), ns(profile.lifespan),
               int(profile.liveliness), ns(profile.liveliness_lease_duration),
               bool(profile.avoid_ros_namespace_conventions))


def effectively_same(profiles: list[Qos]) -> bool:
    """rosbag2's all_profiles_effectively_same: equal in everything that affects matching."""
    key = lambda q: (q.reliability, q.durability, q.deadline_ns, q.liveliness,  # noqa: E731
                     q.liveliness_lease_duration_ns)
    return len({key(q) for q in profiles}) <= 1


def play_profile(profiles: list[Qos], override: str | None = None):
    """The rclpy QoSProfile to play a topic with: the recorded offer (history keep last 10)
    when all recorded offers agree, else rosbag2's default (reliable, volatile, depth 10);
    ``override`` "reliable" / "best_effort" replaces the reliability."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    profile = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
    if profiles and effectively_same(profiles):
        q = profiles[0]
        if q.reliability in (1, 2):
            profile.reliability = ReliabilityPolicy(q.reliability)
        if q.durability in (1, 2):
            profile.durability = DurabilityPolicy(q.durability)
    if override == "reliable":
        profile.reliability = ReliabilityPolicy.RELIABLE
    elif override == "best_effort":
        profile.reliability = ReliabilityPolicy.BEST_EFFORT
    return profile
