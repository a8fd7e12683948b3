"""fer_ros/deps.py: the dependency table agrees with package.xml and docs/ros-install.md,
versions are compared right, and the messages say what to install (ROS-free)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conftest import REPO_ROOT
from fer_ros import deps
from fer_ros.core.ssd_runtime import choose_runtime, opencv_onnx_problem


def exec_depends() -> set[str]:
    root = ET.parse(REPO_ROOT / "package.xml").getroot()
    return {e.text for e in root.iter("exec_depend")}


def test_package_xml_declares_every_rosdep_key_of_the_table():
    keys = {d.rosdep for d in deps.DEPENDENCIES if d.rosdep}
    assert keys <= exec_depends()
    assert {"python3-onnxruntime-pip", "python3-rosbags-pip", "python3-matplotlib"} <= keys


def test_the_install_doc_gives_the_pip_line_and_every_key():
    doc = (REPO_ROOT / "docs" / "ros-install.md").read_text()
    assert deps.pip_line() in doc
    assert {d.dist for d in deps.pip_only()} == {"openvino", "onnx", "mcap", "zstandard"}
    for dep in deps.DEPENDENCIES:
        assert f"`{dep.dist}`" in doc and dep.minimum in doc, dep
        if dep.rosdep:
            assert f"`{dep.rosdep}`" in doc, dep


@pytest.mark.parametrize("text,expected", [("2.13.0+cpu", (2, 13, 0)), ("4.6.0", (4, 6, 0)),
                                           ("2026.4.1-20345-abc", (2026, 4, 1)),
                                           ("1.26.4", (1, 26, 4)), ("", ()), ("dev", ())])
def test_parse_version(text, expected):
    assert deps.parse_version(text) == expected


def test_too_old_compares_releases_and_ignores_unknown_versions():
    cv2_dep = deps.BY_MODULE["cv2"]
    assert deps.too_old(cv2_dep, "4.5.4") and not deps.too_old(cv2_dep, "4.6.0")
    assert not deps.too_old(cv2_dep, "5.0.0") and not deps.too_old(cv2_dep, "")
    assert deps.too_old(deps.BY_MODULE["openvino"], "2022.3.0")


def test_this_venv_meets_every_minimum_and_auto_takes_openvino():
    deps.check_required()
    for dep in deps.DEPENDENCIES:
        if not dep.required:
            module, why = deps.load_optional(dep.module)
            assert module is not None, f"{dep.dist} {why}"
    assert choose_runtime("cpu") == ("openvino", "openvino is installed")
    name, why = choose_runtime("cuda")
    assert name == "onnxruntime" and why == "openvino runs on the CPU only (device cuda)"


def test_old_opencv_says_what_to_install():
    assert opencv_onnx_problem("4.8.0") == "" and opencv_onnx_problem("5.0.0") == ""
    assert opencv_onnx_problem("4.6.0") == (
        "OpenCV 4.6.0 cannot read the SSD's ONNX graph (needs OpenCV >= 4.8): pip install "
        "'onnxruntime>=1.16' (or openvino, or 'opencv-python>=4.8'), or use detector 'ssd_tf'")


def test_missing_module_message_names_the_package_and_the_install():
    exc = ModuleNotFoundError("No module named 'rosbags.typesys'", name="rosbags.typesys")
    assert deps.missing_module_message(exc) == (
        "fer-bag needs the Python package rosbags (>= 0.11), which is not installed: "
        "pip install 'rosbags>=0.11'")
    assert deps.missing_module_message(ModuleNotFoundError("x", name="somethingelse")) is None
    assert deps.missing_module_message(ModuleNotFoundError("x", name="numpy")) is None
