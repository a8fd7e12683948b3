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
EXTRA_ARGS = {"image", "namespace", "node_name", "params_file", "use_fastdds_profile", "log_level"}


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
    assert specs["params_file"][0].endswith("config/emotion.yaml")


def test_the_running_node_declares_exactly_the_launch_parameters(ros):
    """Start the real node (autostart off) and list its parameters over its ROS service."""
    import subprocess
    import sys

    from rcl_interfaces.srv import ListParameters

    from conftest import REPO_ROOT, child_env, stop_process

    node = subprocess.Popen([sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args",
                             "-p", "autostart:=false"], env=child_env(), cwd=str(REPO_ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = ros.node.create_client(ListParameters, "/emotion_node/list_parameters")
        assert ros.spin_until(client.service_is_ready, 60, node)
        future = client.call_async(ListParameters.Request())
        assert ros.spin_until(future.done, 30, node)
        builtin = {"use_sim_time", "start_type_description_service"}  # every rclpy node has them
        names = set(future.result().result.names) - builtin
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
