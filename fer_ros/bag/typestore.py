"""Message types: rosbags' Jazzy typestore plus every other type met, and rclpy classes.

Kept because rosbags registers types from text only: a type it does not ship (fer_msgs, or
whatever ``fer-bag record`` meets) is found as ament does, ``<prefix>/share/<pkg>/msg/<Name>.msg``
for each AMENT_PREFIX_PATH prefix, this Python prefix, then the source tree, so a bag's
definitions and RIHS01 hashes are the real ones.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from rosbags.interfaces import MessageDefinitionFormat
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from .errors import BagError

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
EMOTION_ARRAY = "fer_msgs/msg/EmotionArray"
BUILTINS = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
            "int32", "uint32", "int64", "uint64", "string", "wstring"}
_FIELD_TYPE = re.compile(r"^\s*([A-Za-z][\w/]*)")


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
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    dirs = [Path(p) / "share" for p in dict.fromkeys([*prefixes, sys.prefix])]
    dirs.append(Path(__file__).resolve().parents[2])  # source tree: <repo>/fer_msgs/msg
    return next((d / pkg / kind / f"{name}.msg" for d in dirs
                 if (d / pkg / kind / f"{name}.msg").is_file()), None)


def ensure_type(store: Typestore, typename: str) -> None:
    """Registers ``typename`` (and the types its fields use) in ``store`` from .msg files."""
    if typename in store.fielddefs:
        return
    path = find_msg_file(typename)
    if path is None:
        pkg, kind, name = split_type(typename)
        raise BagError(f"unknown message type {typename}: no {pkg}/{kind}/{name}.msg under "
                       "AMENT_PREFIX_PATH; install or source the package that defines it")
    text, pkg = path.read_text(), split_type(typename)[0]
    for line in text.splitlines():
        match = _FIELD_TYPE.match(line.split("#", 1)[0])
        if match and match.group(1) not in BUILTINS:  # a field of a message type
            base = match.group(1)
            dep = f"{base.split('/')[0]}/msg/{base.split('/')[-1]}" if "/" in base else \
                f"{pkg}/msg/{base}"
            if dep != typename:
                ensure_type(store, dep)
    store.register(get_types_from_msg(text, typename))


def register_embedded(store: Typestore, msgtype: str, msgdef: Any) -> bool:
    """Registers ``msgtype`` from the rosbags MessageDefinition a bag embeds (as rosbags'
    AnyReader does); True when the type is known afterwards."""
    if msgtype in store.fielddefs or msgdef is None:
        return msgtype in store.fielddefs
    try:
        if msgdef.format == MessageDefinitionFormat.MSG:
            store.register(get_types_from_msg(msgdef.data, msgtype))
        else:
            sep = "=" * 80 + "\n"
            parts = msgdef.data.split(sep)[1:] if msgdef.data.startswith(f"{sep}IDL: ") \
                else [f"IDL: \n{msgdef.data}"]
            for part in parts:
                store.register(get_types_from_idl(part.split("\n", 1)[1]))
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
