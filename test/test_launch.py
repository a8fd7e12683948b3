"""launch/emotion.launch.py: parses, its arguments match the node's parameters, no side effects.

`ros2 launch` (launch, launch_ros) cannot be installed from wheels; where launch_ros is
importable the launch description is also generated and inspected for real.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

import pytest

from fer_ros.params import SPECS, load_defaults

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "emotion.launch.py"
EXTRA_ARGS = {"image", "namespace", "node_name", "params_file", "use_fastdds_profile", "log_level",
              "use_sim_time"}


def load_launch_module():
    spec = importlib.util.spec_from_file_location("emotion_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_file_parses_and_imports_launch_lazily():
    tree = ast.parse(LAUNCH_FILE.read_text())
    top_imports = {alias.name.split(".")[0] for node in tree.body
                   if isinstance(node, (ast.Import, ast.ImportFrom))
                   for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert not {"launch", "launch_ros"} & top_imports
    assert "generate_launch_description" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_arguments_cover_every_node_parameter_with_yaml_defaults():
    env_before = dict(os.environ)
    specs = {name: (default, desc, choices)
             for name, default, desc, choices in load_launch_module().argument_specs()}
    assert dict(os.environ) == env_before  # building the argument list changes nothing
    assert set(specs) == set(SPECS) | EXTRA_ARGS
    defaults = load_defaults()
    for name, spec in SPECS.items():
        default, desc, choices = specs[name]
        value = defaults[name]
        assert default == (str(value).lower() if isinstance(value, bool) else str(value))
        assert desc.startswith(spec.description)
        if spec.choices:
            assert choices == list(spec.choices)
        if spec.type is bool:
            assert choices == ["true", "false"]
    assert specs["params_file"][0] == ""  # optional: only a given file is passed to the node


def test_the_running_node_declares_exactly_the_launch_parameters(ros):
    """Start the real node (autostart off) and list its parameters over its ROS service."""
    from rcl_interfaces.srv import ListParameters

    from conftest import start_emotion_node, stop_process

    node = start_emotion_node("-p", "autostart:=false")
    try:
        client = ros.node.create_client(ListParameters, "/emotion_node/list_parameters")
        assert ros.spin_until(client.service_is_ready, 60, node)
        listed = ros.query(client, ListParameters.Request(), 30, node)
        builtin = {"use_sim_time", "start_type_description_service"}  # every rclpy node has them
        names = set(listed.result.names) - builtin
    finally:
        stop_process(node)
    launch_params = {name for name, *_ in load_launch_module().argument_specs()} - EXTRA_ARGS
    assert names == launch_params


def test_generate_launch_description_with_real_launch_ros():
    pytest.importorskip("launch_ros", reason="launch_ros is not installable from wheels here")
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument

    ld = load_launch_module().generate_launch_description()
    declared = {a.name for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert declared == set(SPECS) | EXTRA_ARGS
    context = LaunchContext()
    for action in ld.entities:
        action.visit(context)


def default_values() -> dict[str, str]:
    return {name: default for name, default, *_ in load_launch_module().argument_specs()}


def test_node_parameters_pass_params_file_only_when_given_and_changes_typed(tmp_path):
    module = load_launch_module()
    assert module.node_parameters(default_values()) == [{}]
    params = tmp_path / "mine.yaml"
    params.write_text("/**:\n  ros__parameters:\n    detector: yunet\n")
    values = {**default_values(), "params_file": str(params), "ssd_threshold": "0.7",
              "min_face_size": "30", "flip_tta": "true", "detector": "yunet"}
    assert module.node_parameters(values) == [
        str(params), {"ssd_threshold": 0.7, "min_face_size": 30, "flip_tta": True,
                      "detector": "yunet"}]


def test_wrong_arguments_name_the_argument_and_what_it_accepts():
    module = load_launch_module()
    values = {**default_values(), "ssd_threshold": "abc", "min_face_size": "20.5",
              "nms_threshold": "1.5"}
    with pytest.raises(ValueError) as err:
        module.node_parameters(values)
    assert str(err.value) == (
        "launch argument ssd_threshold:='abc': expected a number from 0.0 to 1.0; "
        "launch argument nms_threshold:='1.5': expected a number from 0.0 to 1.0; "
        "launch argument min_face_size:='20.5': expected an integer from 0 to 4096")


def test_a_missing_params_file_is_an_error(tmp_path):
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ValueError, match=f"launch argument params_file:='{missing}': no such file"):
        load_launch_module().node_parameters({**default_values(), "params_file": str(missing)})


def test_use_fastdds_profile_says_the_camera_process_needs_it_too():
    specs = {name: desc for name, _, desc, _ in load_launch_module().argument_specs()}
    assert "camera driver's process needs the same profile" in specs["use_fastdds_profile"]


def launch_ros_command(executable: str, global_params: dict[str, str], parameters: list,
                       tmp_path: Path) -> list[str]:
    """The command line launch_ros's Node builds (launch_ros/actions/node.py, jazzy): global
    parameters (SetParameter) first as ``-p name:=value``, then each entry of ``parameters``:
    a file as ``--params-file``, a dict written to a '/**' params file."""
    import yaml

    cmd = [executable, "--ros-args", "-r", "__node:=launched"]
    for name, value in global_params.items():
        cmd += ["-p", f"{name}:={value}"]
    for i, entry in enumerate(parameters):
        if isinstance(entry, dict):
            path = tmp_path / f"launch_params_{i}.yaml"
            path.write_text(yaml.dump({"/**": {"ros__parameters": entry}}))
            entry = str(path)
        cmd += ["--params-file", entry]
    return cmd


def get_parameters(ros, node_name: str, names: list[str], child) -> dict:
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    client = ros.node.create_client(GetParameters, f"/{node_name}/get_parameters")
    assert ros.spin_until(client.service_is_ready, 60, child)
    got = ros.query(client, GetParameters.Request(names=names), 30, child)
    return dict(zip(names, map(parameter_value_to_python, got.values)))


def test_a_parent_set_parameter_reaches_the_node_unless_an_argument_overrides_it(ros, tmp_path):
    """SetParameter(detector=yunet, min_face_size=33) in a parent, min_face_size:=40 given to
    this launch file: the node runs YuNet with 40, the rest at the YAML defaults."""
    import subprocess

    from ament_index_python.packages import get_package_prefix

    from conftest import child_env, stop_process

    values = {**default_values(), "autostart": "false", "min_face_size": "40"}
    parameters = load_launch_module().node_parameters(values)
    exe = str(Path(get_package_prefix("fer_ros")) / "lib" / "fer_ros" / "emotion_node")
    cmd = launch_ros_command(exe, {"detector": "yunet", "min_face_size": "33"}, parameters, tmp_path)
    node = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        got = get_parameters(ros, "launched", ["detector", "min_face_size", "ssd_threshold",
                                               "autostart"], node)
    finally:
        out, _ = stop_process(node)
    assert got == {"detector": "yunet", "min_face_size": 40,
                   "ssd_threshold": load_defaults()["ssd_threshold"], "autostart": False}
    assert node.returncode == 0, out


def run_ros2(*args: str, timeout: float = 120):
    import subprocess
    import sys

    from conftest import child_env

    code = "import sys; from ros2cli.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=child_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_real_ros2_launch_show_args_and_refused_arguments():
    pytest.importorskip("ros2launch", reason="ros2launch is not installable from wheels here")
    shown = run_ros2("launch", "fer_ros", "emotion.launch.py", "--show-args")
    assert shown.returncode == 0, shown.stderr
    listed = {line.strip().strip("':") for line in shown.stdout.splitlines()
              if line.startswith("    '")}
    assert listed == set(SPECS) | EXTRA_ARGS
    refused = run_ros2("launch", "fer_ros", "emotion.launch.py", "min_face_size:=20.5")
    assert refused.returncode == 1
    assert ("launch argument min_face_size:='20.5': expected an integer from 0 to 4096"
            in refused.stdout + refused.stderr)


PARENT_LAUNCH = '''
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import SetParameter


def generate_launch_description():
    return LaunchDescription([
        SetParameter(name="detector", value="yunet"),
        SetParameter(name="min_face_size", value=33),
        IncludeLaunchDescription(PythonLaunchDescriptionSource({path!r}), launch_arguments={{
            "node_name": "launched", "min_face_size": "40", "publish_annotated": "false"}}.items()),
    ])
'''


def test_real_ros2_launch_from_a_parent_with_set_parameter(ros, tmp_path):
    """The real `ros2 launch` of a parent launch file: SetParameter reaches the node, the
    node answers, and Ctrl-C (SIGINT to launch) ends everything cleanly."""
    pytest.importorskip("ros2launch", reason="ros2launch is not installable from wheels here")
    import signal
    import subprocess
    import sys

    from ament_index_python.packages import get_package_share_directory

    from conftest import child_env

    share = Path(get_package_share_directory("fer_ros"))
    parent = tmp_path / "parent.launch.py"
    parent.write_text(PARENT_LAUNCH.format(path=str(share / "launch" / "emotion.launch.py")))
    code = "import sys; from ros2cli.cli import main; sys.exit(main())"
    launch = subprocess.Popen([sys.executable, "-c", code, "launch", str(parent)],
                              env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        got = get_parameters(ros, "launched", ["detector", "min_face_size", "publish_annotated"],
                             launch)
        assert got == {"detector": "yunet", "min_face_size": 40, "publish_annotated": False}
    finally:
        launch.send_signal(signal.SIGINT)
        out, _ = launch.communicate(timeout=30)
    assert launch.returncode == 0, out
    assert "process has finished cleanly" in out, out
    assert "Traceback" not in out and "[ERROR]" not in out, out


def test_use_sim_time_is_passed_only_when_set():
    module = load_launch_module()
    assert module.node_parameters({**default_values(), "use_sim_time": "true"}) == [
        {"use_sim_time": True}]
    assert module.node_parameters(default_values()) == [{}]  # a parent's SetParameter wins


def test_a_failed_node_fails_the_launch_and_a_shutdown_does_not():
    module = load_launch_module()
    with pytest.raises(module.NodeFailed, match="^emotion_node exited with code 2 "):
        module.node_exit_actions("emotion_node", 2, shutting_down=False)
    assert module.node_exit_actions("emotion_node", -15, shutting_down=True) == []


def test_real_ros2_launch_exits_non_zero_when_the_node_cannot_start():
    pytest.importorskip("ros2launch", reason="ros2launch is not installable from wheels here")
    failed = run_ros2("launch", "fer_ros", "emotion.launch.py", "classifier_model:=/absent.pt")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert "configure failed: classifier checkpoint not found: /absent.pt" in out
    assert "emotion_node exited with code 2" in out and "Traceback" not in out


def test_real_ros2_launch_use_sim_time_reaches_the_node(ros):
    pytest.importorskip("ros2launch", reason="ros2launch is not installable from wheels here")
    import signal
    import subprocess
    import sys

    from conftest import child_env

    code = "import sys; from ros2cli.cli import main; sys.exit(main())"
    launch = subprocess.Popen([sys.executable, "-c", code, "launch", "fer_ros",
                               "emotion.launch.py", "use_sim_time:=true", "autostart:=false",
                               "node_name:=launched"], env=child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        got = get_parameters(ros, "launched", ["use_sim_time"], launch)
    finally:
        launch.send_signal(signal.SIGINT)
        out, _ = launch.communicate(timeout=30)
    assert got == {"use_sim_time": True}
    assert launch.returncode == 0, out
