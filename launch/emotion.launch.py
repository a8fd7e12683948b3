"""Start the fer_ros emotion node: ``ros2 launch fer_ros emotion.launch.py [arg:=value ...]``.

Every node parameter is a launch argument (descriptions and choices come from
fer_ros/params.py, defaults from config/emotion.yaml). Arguments left at their default do
not override ``params_file``. ``image`` remaps the input topic (raw and /compressed);
``namespace`` pushes the node and its topics into a namespace. The Fast DDS large-image
profile is set for the node process only (``additional_env``): no global side effects.

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
        ("params_file", str(params_file), "ROS 2 parameters file for the node", None),
        ("use_fastdds_profile", "true",
         "Give the node the Fast DDS profile for large images (SHM segment of 16 MiB)",
         ["true", "false"]),
        ("log_level", "info", "Logging level", ["debug", "info", "warn", "error"]),
    ]
    for name, spec in SPECS.items():
        default = defaults[name]
        text = str(default).lower() if isinstance(default, bool) else str(default)
        choices = list(spec.choices) or (["true", "false"] if spec.type is bool else None)
        desc = spec.description + (f" [{spec.constraints()}]" if spec.constraints() and not spec.choices else "")
        specs.append((name, text, desc, choices))
    return specs


def _node_action(context, *args, **kwargs):
    """Build the Node once argument values are known; pass only changed parameters."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from fer_ros.params import SPECS

    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in argument_specs()}
    defaults = {name: default for name, default, *_ in argument_specs()}
    overrides = {}
    for name, spec in SPECS.items():
        if value[name] != defaults[name]:
            raw = value[name]
            overrides[name] = (raw.lower() == "true") if spec.type is bool else spec.type(raw)
    env = {}
    if value["use_fastdds_profile"] == "true":
        profile = str(_share_dir() / "config" / "fastdds_large_images.xml")
        env = {"FASTRTPS_DEFAULT_PROFILES_FILE": profile, "FASTDDS_DEFAULT_PROFILES_FILE": profile}
    image = value["image"]
    return [Node(
        package="fer_ros",
        executable="emotion_node",
        name=value["node_name"],
        namespace=value["namespace"],
        parameters=[value["params_file"], overrides],
        remappings=[("image_raw", image), ("image_raw/compressed", image + "/compressed")],
        additional_env=env,
        arguments=["--ros-args", "--log-level", value["log_level"]],
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [
        DeclareLaunchArgument(name, default_value=default, description=desc,
                              **({"choices": choices} if choices else {}))
        for name, default, desc, choices in argument_specs()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_node_action)])

