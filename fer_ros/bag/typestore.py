"""Message types: a rosbags typestore that knows every installed type, and rclpy classes.

rosbags ships the standard Jazzy types. Any other type (fer_msgs/msg/EmotionArray, or whatever
``fer-bag record`` meets) is registered from its ``.msg`` file, found like ament does:
``<prefix>/share/<pkg>/msg/<Name>.msg`` for each prefix of AMENT_PREFIX_PATH and this Python
prefix, then the source tree (``fer_msgs/msg`` beside the package). With the type registered,
mcap schemas and rosbag2 type hashes (RIHS01) in the bag are the real ones.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from .errors import BagError

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
EMOTION_ARRAY = "fer_msgs/msg/EmotionArray"
BUILTINS = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
            "int32", "uint32", "int64", "uint64", "string", "wstring"}
_FIELD_TYPE = re.compile(r"^\s*([A-Za-z][\w/]*)")


def _search_dirs() -> list[Path]:
    """Folders that hold ``<pkg>/msg/<Name>.msg``: every ament prefix's share/, then the repo."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    dirs = [Path(p) / "share" for p in dict.fromkeys(prefixes)]
    dirs.append(Path(__file__).resolve().parents[2])  # source tree: <repo>/fer_msgs/msg
    return dirs


def split_type(typename: str) -> tuple[str, str, str]:
    """'pkg/msg/Name' -> (pkg, 'msg', Name); BagError for anything else."""
    parts = typename.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise BagError(f"unknown message type {typename!r}: expected the form package/msg/Name")
    return parts[0], parts[1], parts[2]


def find_msg_file(typename: str) -> Path | None:
    pkg, kind, name = split_type(typename)
    for base in _search_dirs():
        path = base / pkg / kind / f"{name}.msg"
        if path.is_file():
            return path
    return None


def _dependencies(text: str, pkg: str) -> list[str]:
    """Full names of the message types used by the fields of a .msg text."""
    deps = []
    for line in text.splitlines():
        match = _FIELD_TYPE.match(line.split("#", 1)[0])
        if not match:
            continue  # blank or comment; constants have builtin types and are skipped below
        base = match.group(1)
        if base in BUILTINS:
            continue
        if "/" in base:
            dep_pkg, dep_name = base.split("/")[0], base.split("/")[-1]
        else:
            dep_pkg, dep_name = pkg, base
        deps.append(f"{dep_pkg}/msg/{dep_name}")
    return deps


def ensure_type(store: Typestore, typename: str) -> None:
    """Registers ``typename`` (and the types it uses) in ``store`` from its .msg file."""
    if typename in store.fielddefs:
        return
    path = find_msg_file(typename)
    if path is None:
        pkg, kind, name = split_type(typename)
        raise BagError(f"unknown message type {typename}: no {pkg}/{kind}/{name}.msg under "
                       "AMENT_PREFIX_PATH; install or source the package that defines it")
    text = path.read_text()
    for dep in _dependencies(text, split_type(typename)[0]):
        if dep != typename:
            ensure_type(store, dep)
    store.register(get_types_from_msg(text, typename))


def register_embedded(store: Typestore, msgtype: str, definition: tuple[str, str] | None) -> bool:
    """Registers ``msgtype`` from the definition a bag embeds (mcap schema, sqlite
    message_definitions); True when the type is known afterwards."""
    if msgtype in store.fielddefs:
        return True
    if definition is None:
        return False
    kind, text = definition
    try:
        if kind == "msg":
            store.register(get_types_from_msg(text, msgtype))
        else:
            from rosbags.typesys import get_types_from_idl

            sep = "=" * 80 + "\n"
            parts = text.split(sep)[1:] if text.startswith(f"{sep}IDL: ") else [text]
            for part in parts:
                store.register(get_types_from_idl(part.split("\n", 1)[1] if part.startswith("IDL: ")
                                                  else part))
    except Exception:  # a broken or exotic definition: the type stays unknown
        return False
    return msgtype in store.fielddefs


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The Jazzy typestore plus fer_msgs (when its .msg files are found)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    if find_msg_file(EMOTION_ARRAY) is not None:
        ensure_type(store, EMOTION_ARRAY)
    return store


def msg_class(typename: str) -> Any:
    """The rclpy message class of 'pkg/msg/Name'; BagError when its package is not importable."""
    pkg, kind, name = split_type(typename)
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        raise BagError(f"unknown message type {typename}: its Python package {pkg} is not "
                       "installed (install it or source the workspace that provides it)") from None
