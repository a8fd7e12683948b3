#!/usr/bin/env bash
# Builds the fer_msgs interface package with plain CMake against the ROS 2 Jazzy wheels in a
# venv and installs it into the venv prefix (so `import fer_msgs.msg` works with no sourcing).
# Usage: scripts/build_msgs.sh [VENV] [BUILD_DIR]   (defaults: .venv, build/fer_msgs)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(cd "${1:-$here/.venv}" && pwd)
build=${2:-$here/build/fer_msgs}
mkdir -p "$build"

# step NAME CMD...: runs CMD with its output in $build/NAME.log; on failure shows the log's end.
step() {
  local name=$1; shift
  if ! "$@" >"$build/$name.log" 2>&1; then
    tail -n 30 "$build/$name.log" >&2
    echo "error: fer_msgs $name failed (full log: $build/$name.log)" >&2
    exit 1
  fi
}

"$here/scripts/fix_ros_wheel_cmake.sh" "$venv"
export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PATH="$venv/bin:$PATH"
step configure cmake -S "$here/fer_msgs" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
  -DPython3_EXECUTABLE="$venv/bin/python3" -DBUILD_TESTING=OFF
step build cmake --build "$build" -j "$(nproc)"
step install cmake --install "$build"
step import "$venv/bin/python" -c "from fer_msgs.msg import Emotion, EmotionArray"
echo "build_msgs: fer_msgs installed into $venv"
