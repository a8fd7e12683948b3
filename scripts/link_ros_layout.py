"""`make setup` step: give the editable install the layout `colcon build --symlink-install` makes.

pip's editable install puts the console scripts in <prefix>/bin and installs no data_files, but
the ROS 2 tools look elsewhere: `ros2 run`, `ros2 pkg executables` and launch_ros's
Node(executable=...) take executables from <prefix>/lib/<package>/, and `ros2 launch` finds a
launch file by walking share/<package> without following links to directories. From setup.py's
own entry_points and data_files this writes

    <prefix>/lib/fer_ros/<name>   an executable wrapper for every console script
    <prefix>/<dir>/<file>         a real directory for every data_files entry, one link per file
                                  (share/fer_ros/..., the ament index entry)

and removes wrappers and links of earlier runs that setup.py no longer lists. Idempotent.

    python scripts/link_ros_layout.py PREFIX      (run with PREFIX's Python)
"""

from __future__ import annotations

import os
import sys
from distutils.core import run_setup  # setuptools' distutils; what colcon reads setup.py with
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "fer_ros"
MARKER = "# console script of fer_ros for `ros2 run` (scripts/link_ros_layout.py)"


def read_setup() -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    """(data_files, {script name: "module:function"}) as setup.py declares them."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        dist = run_setup(str(ROOT / "setup.py"), stop_after="init")
    finally:
        os.chdir(cwd)
    scripts = {}
    for line in dist.entry_points.get("console_scripts", []):
        name, target = (part.strip() for part in line.split("=", 1))
        scripts[name] = target
    return list(dist.data_files or []), scripts


def wrapper(python: Path, target: str) -> str:
    """The text of an executable that runs ``module:function`` with ``python``."""
    module, function = target.split(":")
    return (f"#!{python}\n{MARKER}\nimport sys\n\nfrom {module} import {function}\n\n"
            f"if __name__ == \"__main__\":\n    sys.exit({function}())\n")


def write_executables(prefix: Path, scripts: dict[str, str]) -> None:
    libexec = prefix / "lib" / PACKAGE
    libexec.mkdir(parents=True, exist_ok=True)
    python = prefix / "bin" / "python"
    for name, target in scripts.items():
        path, text = libexec / name, wrapper(python, target)
        if path.is_symlink() or not path.is_file() or path.read_text() != text:
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            os.replace(tmp, path)
    for path in libexec.iterdir():  # wrappers of scripts that are gone
        if path.name not in scripts and path.is_file() and MARKER in path.read_text(errors="replace"):
            path.unlink()


def link(path: Path, target: Path) -> None:
    """Make ``path`` a symlink to ``target`` (replacing a file or another link there)."""
    if path.is_symlink() and Path(os.readlink(path)) == target:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, path)


def link_data_files(prefix: Path, data_files: list[tuple[str, list[str]]]) -> None:
    wanted: set[Path] = set()
    for directory, files in data_files:
        dest = prefix / directory
        if dest.is_symlink():  # a link to a whole directory (older setup): ros2 launch skips it
            dest.unlink()
        dest.mkdir(parents=True, exist_ok=True)
        for file in files:
            path = dest / Path(file).name
            link(path, ROOT / file)
            wanted.add(path)
    for dirpath, dirnames, filenames in os.walk(prefix / "share" / PACKAGE):
        for name in dirnames + filenames:  # links into this checkout that are no longer listed
            path = Path(dirpath) / name
            if (path.is_symlink() and path not in wanted
                    and Path(os.readlink(path)).is_relative_to(ROOT)):
                path.unlink()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    prefix = Path(argv[0]).absolute()
    data_files, scripts = read_setup()
    write_executables(prefix, scripts)
    link_data_files(prefix, data_files)
    print(f"link_ros_layout: {len(scripts)} executables in {prefix / 'lib' / PACKAGE}, "
          f"{sum(len(f) for _, f in data_files)} data files linked under {prefix / 'share'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
