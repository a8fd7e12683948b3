"""The install layout, found the way the real ROS 2 tools look things up.

Reproduced from the Jazzy sources (ros2/ros2cli, ros2/launch_ros):
  ros2pkg.api.get_executable_paths  ament index -> package prefix -> os.walk(<prefix>/lib/<pkg>),
                                    dot-directories skipped, files with os.access(X_OK)
  ros2run.api.get_executable_path   the one of those whose basename is the executable name
  launch_ros ExecutableInPackage    which(executable, path=<prefix>/lib/<pkg>)
  ros2launch.api.get_share_file_path_from_package
                                    os.walk(share dir) (directory links not followed), exactly
                                    one file of that name; is_launch_file: suffix + isfile
The real `ros2` CLI runs too where ros2cli is importable (not installable from wheels here).
colcon builds are checked where colcon is importable.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, child_env, stop_process

ament = pytest.importorskip("ament_index_python.packages",
                            reason="ament_index_python is not installed (run `make setup`)")
PACKAGE = "fer_ros"
LAUNCH_FILES = sorted(p.name for p in (REPO_ROOT / "launch").glob("*.launch.py"))


def load_layout_script():
    spec = importlib.util.spec_from_file_location("link_ros_layout",
                                                  REPO_ROOT / "scripts" / "link_ros_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def console_scripts() -> set[str]:
    """The console scripts setup.py declares."""
    return set(load_layout_script().read_setup()[1])


def executable_paths(prefix: str, package: str = PACKAGE) -> list[str]:
    """ros2pkg.api.get_executable_paths, as in ros2cli (jazzy)."""
    base_path = os.path.join(prefix, "lib", package)
    paths = []
    for dirpath, dirnames, filenames in os.walk(base_path):
        dirnames[:] = [d for d in dirnames if d[0] not in ["."]]
        dirnames.sort()
        for filename in sorted(filenames):
            path = os.path.join(dirpath, filename)
            if os.access(path, os.X_OK):
                paths.append(path)
    return paths


def share_file_paths(share: str, file_name: str) -> list[str]:
    """ros2launch.api.get_share_file_path_from_package's walk, as in launch_ros (jazzy)."""
    return [os.path.join(root, name) for root, _dirs, files in os.walk(share)
            for name in files if name == file_name]


def is_launch_file(path: str) -> bool:
    """ros2launch.api.is_launch_file for Python launch files."""
    return path.endswith("launch.py") and os.path.isfile(path)


def check_layout(prefix: str) -> None:
    """Asserts what `ros2 run`, `ros2 pkg executables` and `ros2 launch` need under prefix."""
    names = {os.path.basename(p) for p in executable_paths(prefix)}
    assert names == console_scripts()
    libexec = os.path.join(prefix, "lib", PACKAGE)
    assert shutil.which("emotion_node", path=libexec) == os.path.join(libexec, "emotion_node")
    share = os.path.join(prefix, "share", PACKAGE)
    for launch_file in LAUNCH_FILES:
        found = share_file_paths(share, launch_file)
        assert len(found) == 1, f"{launch_file} found {len(found)} times under {share}"
        assert is_launch_file(found[0])
    index = Path(prefix, "share", "ament_index", "resource_index", "packages", PACKAGE)
    assert index.is_file()


def test_the_ament_index_leads_to_every_executable_and_launch_file():
    prefix = ament.get_package_prefix(PACKAGE)
    assert ament.get_packages_with_prefixes()[PACKAGE] == prefix
    assert ament.get_package_share_directory(PACKAGE) == os.path.join(prefix, "share", PACKAGE)
    check_layout(prefix)


def test_launch_directory_is_real_and_the_launch_file_runs_from_the_checkout():
    share = Path(ament.get_package_share_directory(PACKAGE))
    launch_dir = share / "launch"
    assert launch_dir.is_dir() and not launch_dir.is_symlink()
    (found,) = share_file_paths(str(share), "emotion.launch.py")
    assert Path(found).resolve() == REPO_ROOT / "launch" / "emotion.launch.py"


def test_layout_script_is_idempotent_and_removes_what_setup_py_dropped(tmp_path):
    layout = load_layout_script()
    prefix = tmp_path / "prefix"
    old_launch = prefix / "share" / PACKAGE / "launch"
    old_launch.parent.mkdir(parents=True)
    old_launch.symlink_to(REPO_ROOT / "launch", target_is_directory=True)  # the old layout
    stale_link = prefix / "share" / PACKAGE / "config" / "gone.yaml"
    stale_link.parent.mkdir(parents=True)
    stale_link.symlink_to(REPO_ROOT / "config" / "gone.yaml")
    libexec = prefix / "lib" / PACKAGE
    libexec.mkdir(parents=True)
    (libexec / "old_tool").write_text(f"#!/bin/sh\n{layout.MARKER}\n")
    (libexec / "not_ours").write_text("#!/bin/sh\n")

    for _ in range(2):
        assert layout.main([str(prefix)]) == 0
        check_layout(str(prefix))
    assert not old_launch.is_symlink() and old_launch.is_dir()
    assert not stale_link.is_symlink() and not (libexec / "old_tool").exists()
    assert (libexec / "not_ours").exists()  # only our own wrappers are removed
    wrapper = (libexec / "emotion_node").read_text()
    assert wrapper.startswith(f"#!{prefix / 'bin' / 'python'}\n")
    assert "from fer_ros.node.entry_points import emotion_node" in wrapper


def test_the_executable_ros2_run_picks_starts_the_node_and_logs_what_it_does(ros):
    """lib/fer_ros/emotion_node (what `ros2 run` and launch_ros run) starts the node; its
    start-up log names only the topics it publishes; a parameter set to its current value is
    not reported, a changed configure-time one is, in one grammatical line."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    prefix = ament.get_package_prefix(PACKAGE)
    (path,) = [p for p in executable_paths(prefix) if os.path.basename(p) == "emotion_node"]
    node = subprocess.Popen([path, "--ros-args", "-r", "__node:=layout_probe",
                             "-p", "publish_annotated:=false"],
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    try:
        assert read_until(node, lines, "waiting for", 120), "".join(lines)
        (active,) = [line for line in lines if "waiting for" in line]
        published = re.search(r"; publishing (.*?)(?: \(|$)", active.rstrip())
        assert published and published.group(1) == "/emotions", active
        client = ros.node.create_client(SetParameters, "/layout_probe/set_parameters")
        assert ros.spin_until(client.service_is_ready, 60, node)

        def set_params(**values):
            params = [Parameter(name=k, value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                             string_value=v))
                      for k, v in values.items()]
            answer = ros.query(client, SetParameters.Request(parameters=params), 30, node)
            assert all(r.successful for r in answer.results)

        set_params(detector="ssd", classifier_model="fer7")  # unchanged
        set_params(detector="yunet")
        assert read_until(node, lines, "effect at the next configure", 30), "".join(lines)
        effect = [line for line in lines if "effect at the next configure" in line]
        assert len(effect) == 1 and "detector takes effect at the next configure" in effect[0]
    finally:
        out, _ = stop_process(node, timeout=10)
    assert node.returncode == 0, out


def read_until(proc: subprocess.Popen[str], lines: list[str], text: str, timeout: float) -> bool:
    """Reads proc's stdout lines into `lines` until one contains `text` (False on EOF/timeout)."""
    import selectors
    import time

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.5):
            continue
        line = proc.stdout.readline()
        if not line:
            return False
        lines.append(line)
        if text in line:
            return True
    return False


@pytest.mark.parametrize("symlink", [False, True], ids=["plain", "symlink-install"])
def test_colcon_build_gives_the_same_layout(tmp_path, symlink):
    """`colcon build [--symlink-install]` of the package: the same look-ups succeed."""
    if importlib.util.find_spec("colcon_core") is None:
        pytest.skip("colcon is not installed here")
    cmd = [sys.executable, "-m", "colcon", "build", "--paths", str(REPO_ROOT),
           "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
           "--event-handlers", "console_direct-"] + (["--symlink-install"] if symlink else [])
    result = subprocess.run(cmd, cwd=tmp_path, env=child_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    check_layout(str(tmp_path / "install" / PACKAGE))


def run_ros2(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real `ros2` command (ros2cli), with this interpreter."""
    code = "import sys; from ros2cli.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=child_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_real_ros2_pkg_executables_and_ros2_run():
    pytest.importorskip("ros2pkg", reason="ros2cli is not installable from wheels here")
    listed = run_ros2("pkg", "executables", PACKAGE)
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == {PACKAGE} | console_scripts()
    run = run_ros2("run", PACKAGE, "fer-models", "list")
    assert run.returncode == 0, run.stderr
    assert "fer7" in run.stdout and "yunet" in run.stdout
