"""Start the fer_ros emotion node: ``ros2 launch fer_ros emotion.launch.py [arg:=value ...]``.

Every node parameter is a launch argument (descriptions and choices come from
fer_ros/params.py, defaults from config/emotion.yaml); a value of the wrong type or out of
range stops the launch with one line naming the argument and what it accepts. Parameters
reach the node in launch_ros's order, later ones winning: a parent launch file's
``SetParameter``, then ``params_file`` (only when given; it must exist), then the arguments
that differ from their defaults (``use_sim_time`` among them). ``image`` remaps the input
topic (raw and /compressed); ``namespace`` pushes the node and its topics into a namespace.
A node that exits on its own shuts the launch down, and when it failed (e.g. a model it
cannot load: exit code 2) ``ros2 launch`` exits non-zero with one line saying so. The Fast DDS large-image
profile is set for the node process only (``additional_env``): no global side effects; the
camera driver's process needs it too (set it in that process's environment).

    ros2 launch fer_ros emotion.launch.py image:=/camera/color/image_raw detector:=yunet
"""

from __future__ import annotations

from pathlib import Path


def _share_dir() -> Path:
    """share/fer_ros on a ROS install; the source tree when run from a checkout."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("fer_ros"))
    except Exception:
        return Path(__file__).resolve().parents[1]


def argument_specs() -> list[tuple[str, str, str, list[str] | None]]:
    """(name, default, description, choices) of every launch argument (pure; no launch import)."""
    from fer_ros.params import SPECS, load_defaults

    share = _share_dir()
    params_file = share / "config" / "emotion.yaml"
    defaults = load_defaults(params_file) if params_file.is_file() else load_defaults()
    specs: list[tuple[str, str, str, list[str] | None]] = [
        ("image", "image_raw", "Input image topic (its /compressed sibling is remapped too)", None),
        ("namespace", "", "Namespace of the node and its relative topics", None),
        ("node_name", "emotion_node", "Name of the node", None),
        ("params_file", "",
         "ROS 2 parameters file for the node (optional: the node's defaults are "
         "config/emotion.yaml). Its values override a parent launch file's SetParameter; "
         "the other arguments override it", None),
        ("use_fastdds_profile", "true",
         "Give the node the Fast DDS profile for large images (SHM segment of 16 MiB). The "
         "camera driver's process needs the same profile (FASTRTPS_DEFAULT_PROFILES_FILE and "
         "FASTDDS_DEFAULT_PROFILES_FILE set to config/fastdds_large_images.xml), or most "
         "best-effort 640x480 frames are lost between the two",
         ["true", "false"]),
        ("log_level", "info", "Logging level", ["debug", "info", "warn", "error"]),
        ("use_sim_time", "false", "Take time from /clock (a bag replay or a simulator), "
         "not the system clock", ["true", "false"]),
    ]
    for name, spec in SPECS.items():
        default = defaults[name]
        text = str(default).lower() if isinstance(default, bool) else str(default)
        choices = list(spec.choices) or (["true", "false"] if spec.type is bool else None)
        desc = spec.description + (f" [{spec.constraints()}]" if spec.constraints() and not spec.choices else "")
        specs.append((name, text, desc, choices))
    return specs


def node_parameters(values: dict[str, str]) -> list:
    """launch_ros ``parameters`` from the argument values: ``params_file`` when given, then
    a dict of the node parameters whose argument differs from its default, typed. Raises
    ValueError naming every bad argument and what it accepts (pure; no launch import)."""
    from fer_ros.core.errors import ConfigError
    from fer_ros.params import SPECS

    defaults = {name: default for name, default, *_ in argument_specs()}
    overrides, errors = {}, []
    for name, spec in SPECS.items():
        if values[name] != defaults[name]:
            try:
                overrides[name] = spec.parse(values[name])
            except ConfigError as exc:
                errors.append(f"launch argument {exc}")
    params_file = values["params_file"]
    if params_file and not Path(params_file).is_file():
        errors.append(f"launch argument params_file:={params_file!r}: no such file")
    if values["use_sim_time"] != defaults["use_sim_time"]:  # rclpy's own parameter
        overrides["use_sim_time"] = values["use_sim_time"] == "true"
    if errors:
        raise ValueError("; ".join(errors))
    return ([params_file] if params_file else []) + [overrides]


class NodeFailed(RuntimeError):
    """Raised from the node's exit handler: launch logs it in one line and exits with 1."""


def node_exit_actions(name: str, returncode: int, shutting_down: bool) -> list:
    """What the launch does when the node process ends: nothing while the launch is already
    shutting down; Shutdown after a clean exit; NodeFailed after a failure (launch catches
    the exception, logs "Caught exception in launch ...: <message>", shuts down and makes
    ``ros2 launch`` exit with 1: a ``Shutdown`` alone would exit 0)."""
    if shutting_down:
        return []
    if returncode != 0:
        raise NodeFailed(f"{name} exited with code {returncode} (its log above says why); "
                         "shutting down the launch")
    from launch.actions import Shutdown

    return [Shutdown(reason=f"{name} exited")]


def _node_action(context, *args, **kwargs):
    """Build the Node once argument values are known."""
    from launch.actions import RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in argument_specs()}
    env = {}
    if value["use_fastdds_profile"] == "true":
        profile = str(_share_dir() / "config" / "fastdds_large_images.xml")
        env = {"FASTRTPS_DEFAULT_PROFILES_FILE": profile, "FASTDDS_DEFAULT_PROFILES_FILE": profile}
    image = value["image"]
    node = Node(
        package="fer_ros",
        executable="emotion_node",
        name=value["node_name"],
        namespace=value["namespace"],
        parameters=node_parameters(value),
        remappings=[("image_raw", image), ("image_raw/compressed", image + "/compressed")],
        additional_env=env,
        arguments=["--ros-args", "--log-level", value["log_level"]],
        output="screen",
        emulate_tty=True,
    )
    on_exit = OnProcessExit(target_action=node, on_exit=lambda event, ctx: node_exit_actions(
        value["node_name"], event.returncode, ctx.is_shutdown))
    return [node, RegisterEventHandler(on_exit)]


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [
        DeclareLaunchArgument(name, default_value=default, description=desc,
                              **({"choices": choices} if choices else {}))
        for name, default, desc, choices in argument_specs()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_node_action)])

