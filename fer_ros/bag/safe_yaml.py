"""YAML from bags, loaded so that a hostile file cannot blow up (rosbags loads it unbounded).

A "billion laughs" file nests aliases so that 1.6 KB expand to gigabytes: the document is
composed first, its size as expanded counted over that graph, and refused past ``MAX_NODES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import BagError

MAX_YAML_BYTES = 16 * 1024 * 1024   # a metadata.yaml of a 10,000-file split bag is ~5 MB
MAX_QUOTE = 120
MAX_NODES = 2_000_000              # ~100x what a 10,000-file bag's metadata holds
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def short(text: object, limit: int = MAX_QUOTE) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def loads(text: str, what: str) -> Any:
    """The YAML document in ``text``; BagError (naming ``what``) for aliases or bad YAML."""
    if len(text) > MAX_YAML_BYTES:
        raise BagError(f"{what}: {len(text)} bytes of YAML is too large "
                       f"(limit {MAX_YAML_BYTES // 2**20} MiB)")
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is None:
            return None
        expanded = _expanded_size(node)
        if expanded > MAX_NODES:
            raise BagError(f"{what}: its YAML aliases expand to more than {MAX_NODES:,} nodes "
                           "(a \"billion laughs\" file?): refused")
        return _Loader("").construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BagError(f"{what}: not valid YAML{where}: "
                       f"{short(getattr(exc, 'problem', None) or exc)}") from None
    except RecursionError:
        raise BagError(f"{what}: YAML nested too deeply") from None


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the document with every alias expanded, counted without expanding (stops
    counting past MAX_NODES)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes and not children_done:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        items = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                 else list(node.value))
        if children_done:
            sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes.get(id(c), MAX_NODES + 1)
                                                         for c in items))
            continue
        sizes[id(node)] = MAX_NODES + 1  # in progress: a cycle counts as too large
        stack.append((node, True))
        stack.extend((c, False) for c in items if id(c) not in sizes)
    return sizes[id(root)]


def load_file(path: Path) -> Any:
    """The YAML document in file ``path`` (see ``loads``); BagError when unreadable."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise BagError(f"{path}: {size} bytes is too large for a metadata file "
                           f"(limit {MAX_YAML_BYTES // 2**20} MiB)")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BagError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BagError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return loads(text, str(path))
