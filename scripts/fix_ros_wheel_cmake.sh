#!/usr/bin/env bash
# Rewrites the include directories that the ROS 2 message wheels' CMake exports
# (share/*/cmake/*__rosidl_generator_pyExport.cmake) point at the wheel builder's Python
# (/opt/python/cp3XX-cp3XX/...) to this venv's Python and numpy headers, so that CMake can
# configure a message package (fer_msgs) against the wheels. Idempotent: entries that
# already exist on disk are left alone.
# Usage: scripts/fix_ros_wheel_cmake.sh [VENV]   (default: .venv beside this script's repo)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-$here/.venv}
exec "$venv/bin/python" - "$venv" <<'PY'
import re
import sys
import sysconfig
from pathlib import Path

import numpy

venv = Path(sys.argv[1])
py_include = Path(sysconfig.get_paths()["include"])
np_include = Path(numpy.get_include())
if not (py_include / "Python.h").is_file():
    sys.exit(f"error: no Python headers at {py_include}: install them (Debian: apt-get install python3-dev)")

prop = re.compile(r'(INTERFACE_INCLUDE_DIRECTORIES ")([^"]*)(")')


def fix_entry(entry: str) -> str:
    if not entry or Path(entry).exists() or "${" in entry:
        return entry
    if re.search(r"/include/python3\.\d+$", entry):
        return str(py_include)
    if re.search(r"/numpy/(_core|core)/include$", entry):
        return str(np_include)
    return entry


changed = 0
files = sorted(venv.glob("share/*/cmake/*__rosidl_generator_pyExport.cmake"))
for path in files:
    text = path.read_text()
    new = prop.sub(lambda m: m.group(1) + ";".join(fix_entry(e) for e in m.group(2).split(";")) + m.group(3), text)
    if new != text:
        path.write_text(new)
        changed += 1
print(f"fix_ros_wheel_cmake: {changed} of {len(files)} pyExport.cmake files rewritten")
PY
