"""ament_python package fer_ros (the repository root); fer_msgs/ is a separate ament_cmake package.

Installs the Python package, its console scripts, and into share/fer_ros: package.xml, the ament
index marker, launch files, config files and models (manifest, shipped classifier checkpoints,
and the face-detector weights when `fer-models fetch` has put them under models/ before the build).
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "fer_ros"
HERE = Path(__file__).resolve().parent


def files(pattern: str) -> list[str]:
    """Repo-relative files matching a glob (sorted; directories left out)."""
    return sorted(p for p in glob(pattern, root_dir=HERE) if (HERE / p).is_file())


data_files = [
    ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
    (f"share/{PACKAGE}", ["package.xml"]),
    (f"share/{PACKAGE}/launch", files("launch/*.launch.py")),
    (f"share/{PACKAGE}/config", files("config/*")),
    (f"share/{PACKAGE}/models", files("models/*.pt") + files("models/*.onnx") + ["models/manifest.json"]),
]
detector_files = files("models/face_detector/*")
if detector_files:
    data_files.append((f"share/{PACKAGE}/models/face_detector", detector_files))

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "training", "training.*",
                                    "benchmarks", "benchmarks.*", "fer_msgs", "fer_msgs.*"]),
    data_files=data_files,
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="fer_ros maintainers",
    maintainer_email="maintainers@users.noreply.r-seed-ad389c41.example",
    description="Facial-expression recognition for ROS 2 (OpenCV face detection + PyTorch FER2013 CNN).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "fer-detect = fer_ros.cli.detect:main",
            "fer-models = fer_ros.cli.models:main",
            "emotion_node = fer_ros.node.entry_points:emotion_node",
            "image_source = fer_ros.node.entry_points:image_source",
            "result_sink = fer_ros.node.entry_points:result_sink",
            "fer-bag = fer_ros.cli.bag:main",
            "fer-demo = fer_ros.demo:main",
        ],
    },
)
