"""Builds the test-only hri_msgs (test/interfaces/hri_msgs) once, with plain CMake against the
venv's ROS wheels as scripts/build_msgs.sh builds fer_msgs, into build/test_hri_msgs/<key>/
(ignored by git), and gives the environment a child process needs to import it. The key
hashes the package's files and the interpreter, so a second session reuses the build (about
a minute on 2 busy cores the first time, nothing afterwards)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "test" / "interfaces" / "hri_msgs"


def _key() -> str:
    digest = hashlib.sha256(f"{sys.prefix}|{sys.version}".encode())
    for path in sorted(SOURCE.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(SOURCE).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def build_hri_msgs() -> Path:
    """The install prefix holding hri_msgs (built now unless a finished build is cached);
    RuntimeError with the end of the failing step's log."""
    root = REPO / "build" / "test_hri_msgs" / _key()
    prefix, build, done = root / "install", root / "build", root / "done"
    if done.is_file():
        return prefix
    shutil.rmtree(root, ignore_errors=True)
    build.mkdir(parents=True)
    venv = Path(sys.prefix)
    env = dict(os.environ, AMENT_PREFIX_PATH=os.pathsep.join(
        filter(None, [str(venv), os.environ.get("AMENT_PREFIX_PATH")])),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    steps = [
        ["cmake", "-S", str(SOURCE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_PREFIX_PATH={venv}", f"-DCMAKE_INSTALL_PREFIX={prefix}",
         f"-DPython3_EXECUTABLE={venv / 'bin' / 'python3'}", "-DBUILD_TESTING=OFF"],
        ["cmake", "--build", str(build), "-j", str(os.cpu_count() or 1)],
        ["cmake", "--install", str(build)],
    ]
    for step in steps:
        proc = subprocess.run(step, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"building the test hri_msgs failed at {' '.join(step[:2])}:\n"
                               + (proc.stdout + proc.stderr)[-3000:])
    done.write_text("ok\n")
    return prefix


def env_with_hri_msgs(env: dict[str, str], prefix: Path) -> dict[str, str]:
    """``env`` plus what a process needs to import hri_msgs from ``prefix`` and find its
    type support libraries (as sourcing the prefix's setup would)."""
    def prepend(name: str, value: Path) -> str:
        return os.pathsep.join(filter(None, [str(value), env.get(name)]))

    return {**env, "PYTHONPATH": prepend("PYTHONPATH", site_packages(prefix)),
            "LD_LIBRARY_PATH": prepend("LD_LIBRARY_PATH", prefix / "lib"),
            "AMENT_PREFIX_PATH": prepend("AMENT_PREFIX_PATH", prefix)}
