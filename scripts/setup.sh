#!/usr/bin/env bash
# `make setup`: the development environment in .venv, idempotent. Each step runs only when the
# hash of its inputs changed since it last succeeded (stamps in .venv/.fer-setup/), so a second
# run takes seconds.
#   1. .venv (python3.11 -m venv) if missing; never deleted or recreated
#   2. pinned Python + ROS 2 Jazzy wheels            (requirements/*.txt)
#   3. fer_msgs built with CMake into the venv prefix (scripts/build_msgs.sh)
#   4. fer_ros installed editable (console scripts in .venv/bin)
#   5. model files resolved/verified: `fer-models fetch` (mirror ../shared/models, else download)
#   6. the layout of colcon --symlink-install, for `ros2 run` / `ros2 launch`: every console
#      script in .venv/lib/fer_ros/, share/fer_ros/ and the ament index entry as real
#      directories of per-file links (scripts/link_ros_layout.py)
# Environment: PYTHON (default python3.11), VENV (default .venv), FER_MODEL_MIRROR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
venv=${VENV:-$root/.venv}
python=${PYTHON:-python3.11}
stamps=$venv/.fer-setup
SECONDS=0

log() { printf 'setup: %s\n' "$*"; }

# hash_of FILE_OR_DIR... : one sha256 over the names and contents of all files given.
hash_of() {
  find "$@" -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64
}

# step NAME KEY CMD... : runs CMD unless the stamp NAME holds KEY; writes KEY after success.
step() {
  local name=$1 key=$2; shift 2
  if [[ -f $stamps/$name && $(cat "$stamps/$name") == "$key" ]]; then
    log "$name: up to date"
    return
  fi
  local t0=$SECONDS
  log "$name: running"
  "$@"
  mkdir -p "$stamps"
  echo "$key" >"$stamps/$name"
  log "$name: done in $((SECONDS - t0)) s"
}

# 1. venv
if [[ ! -x $venv/bin/python ]]; then
  command -v "$python" >/dev/null || { echo "setup: error: $python not found; install Python 3.11 or set PYTHON" >&2; exit 1; }
  log "creating $venv with $python"
  "$python" -m venv "$venv"
fi
pyver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ $pyver == 3.11 ]] || log "warning: $venv is Python $pyver; the pinned torch wheel is for 3.11"

# 2. wheels
pip_install() {
  "$venv/bin/python" -m pip install --disable-pip-version-check -q \
    -r requirements/python.txt -r requirements/ros-jazzy.txt
}
pip_key=$(echo "$pyver $(hash_of requirements)" | sha256sum | cut -c1-64)
step pip "$pip_key" pip_install

# 3. fer_msgs
msgs_key=$(echo "$pip_key $(hash_of fer_msgs scripts/build_msgs.sh scripts/fix_ros_wheel_cmake.sh)" | sha256sum | cut -c1-64)
step fer_msgs "$msgs_key" scripts/build_msgs.sh "$venv" "$root/build/fer_msgs"

# 4. fer_ros, editable (console scripts in .venv/bin)
install_fer_ros() {
  "$venv/bin/python" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$root"
}
pkg_key=$(echo "$pip_key $(hash_of setup.py setup.cfg package.xml resource)" | sha256sum | cut -c1-64)
step fer_ros "$pkg_key" install_fer_ros

# 5. model files (cheap when present: hashes only)
log "models: fer-models fetch"
"$venv/bin/fer-models" fetch --quiet

# 6. the layout the ROS 2 tools look up, as colcon --symlink-install makes it (cheap; every run,
#    so new launch/config/model files are linked): lib/fer_ros/<executables>, share/fer_ros/...
log "ros layout: $("$venv/bin/python" scripts/link_ros_layout.py "$venv")"

log "ready in ${SECONDS} s ($venv)"
