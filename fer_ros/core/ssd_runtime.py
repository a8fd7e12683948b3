"""Inference runtimes for the SSD's ONNX graph: one small class each, same call signature.

A runtime takes the (1, 3, H, W) float32 blob and returns the graph's ``loc`` (P, 4) and
``conf`` (P, 2) arrays. Which to use is the ``ssd_runtime`` parameter:

- ``auto`` (default): the first of openvino, onnxruntime, opencv that can run here (a
  ``rosdep install`` gives onnxruntime but not openvino, which has no rosdep key); the chosen
  runtime's ``choice`` says which and why, and the node logs it.
- ``openvino``: OpenVINO on the CPU; bf16 where the CPU has it (AVX512-BF16/AMX),
  otherwise f32. Fastest here (benchmarks/detector_recall.py prints the ratios).
- ``onnxruntime``: ONNX Runtime; takes the CUDA execution provider when ``device`` is cuda and
  an onnxruntime build with CUDA is installed (else says so and refuses).
- ``opencv``: OpenCV's own ONNX importer: no extra package, slowest; OpenCV >= 4.8 (4.6, Ubuntu
  24.04's, parses neither the int8 graph's DequantizeLinear nor the float graph's ReduceSum).

Each runtime is pinned to ``threads`` CPU threads (1 by default: several busy processes share
the cores of a robot, and one thread per process is the robust choice).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Protocol

import numpy as np

from .. import deps
from .errors import ConfigError, ModelError

RUNTIMES = ("auto", "openvino", "onnxruntime", "opencv")
OPENCV_ONNX_MINIMUM = (4, 8)  # the oldest OpenCV whose ONNX importer reads the SSD's graphs


class SsdRuntime(Protocol):
    """Runs the SSD graph on one blob."""

    name: str
    choice: str

    def __call__(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


_CORE = None


def _openvino_core(ov):
    """One ``ov.Core`` per process, shared by every SSD built (each reconfigure builds one):
    a new Core per build grows the process now and then (its thread pools and caches)."""
    global _CORE
    if _CORE is None:
        _CORE = ov.Core()
    return _CORE


def _required(module: str):
    """The runtime package ``module`` (also the runtime's name), or a one-line ConfigError
    saying how to install it and which runtimes to use instead."""
    others = [f"'{r}'" for r in RUNTIMES if r != module]
    others = ", ".join(others[:-1]) + " or " + others[-1]
    return deps.require_optional(module, f"ssd_runtime '{module}'", f"use ssd_runtime {others}")


# oneDNN CPU ISA caps below AVX-512 BF16 (oneDNN's names for ONEDNN_MAX_CPU_ISA)
_NO_BF16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


def isa_cap() -> str:
    """The CPU instruction set oneDNN is held to (ONEDNN_MAX_CPU_ISA, or the older
    DNNL_MAX_CPU_ISA), upper case; "" when not held."""
    return (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
            or "").strip().upper()


def openvino_precision() -> str:
    """bf16 unless oneDNN is held below AVX-512 BF16. OpenVINO's CPU plugin runs its kernels
    through its own oneDNN, which honours the cap, but decides bf16 from the CPU itself: held
    to AVX2 on a bf16 CPU it would ask for bf16 kernels that the cap forbids (and fail to
    compile the float graph). f32 is what it picks by itself on a real AVX2 CPU."""
    return "f32" if isa_cap() in _NO_BF16_ISAS else "bf16"


class OpenVinoRuntime:
    """OpenVINO CPU inference; one compiled model per input shape, the ``MAX_SHAPES`` most
    recently used kept (each costs tens of MB, even for small shapes; a camera needs two: the
    full pass and the close-up pass)."""

    name = "openvino"
    choice = "openvino"  # what the node logs (make_runtime sets it for auto)
    MAX_SHAPES = 4

    def __init__(self, onnx_path: str | os.PathLike[str], threads: int = 1,
                 precision: str | None = None) -> None:
        ov = _required("openvino")
        self._core = _openvino_core(ov)
        try:
            self._model = self._core.read_model(str(onnx_path))
        except Exception as exc:  # openvino raises RuntimeError subclasses for bad files
            raise ModelError(f"cannot load the SSD ONNX model {onnx_path}: {exc}") from None
        self._config = {"INFERENCE_NUM_THREADS": max(int(threads), 1),
                        "INFERENCE_PRECISION_HINT": precision or openvino_precision(),
                        "PERFORMANCE_HINT": "LATENCY",
                        "NUM_STREAMS": 1}
        # one compiled model + infer request per input shape: an explicit request fed without a
        # copy is faster than calling the compiled model with a new array, and static shapes
        # are faster than one dynamic-shape model (benchmarks/detector_recall.py)
        self._requests: OrderedDict[tuple[int, ...], object] = OrderedDict()

    def _request_for(self, shape: tuple[int, ...]):
        request = self._requests.get(shape)
        if request is not None:
            self._requests.move_to_end(shape)
            return request
        while len(self._requests) >= self.MAX_SHAPES:  # frames of many sizes
            self._requests.popitem(last=False)
        model = self._model.clone()
        model.reshape({"data": list(shape)})
        request = self._core.compile_model(model, "CPU", self._config).create_infer_request()
        self._requests[shape] = request
        return request

    def __call__(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        request = self._request_for(tuple(blob.shape))
        request.infer({"data": np.ascontiguousarray(blob)}, share_inputs=True)
        return (request.get_tensor("loc").data[0].copy(),
                request.get_tensor("conf").data[0].copy())


class OnnxRuntimeRuntime:
    """ONNX Runtime inference (CPU, or CUDA with an onnxruntime build that has it)."""

    name = "onnxruntime"
    choice = "onnxruntime"  # what the node logs (make_runtime sets it for auto)

    def __init__(self, onnx_path: str | os.PathLike[str], threads: int = 1,
                 device: str = "cpu") -> None:
        ort = _required("onnxruntime")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError(f"device {device!r}: this onnxruntime has no CUDA execution "
                                  "provider (install onnxruntime-gpu) ")
            index = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(threads), 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load the SSD ONNX model {onnx_path}: {exc}") from None

    def __call__(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loc, conf = self._session.run(["loc", "conf"], {"data": blob})
        return loc[0], conf[0]


class OpenCvRuntime:
    """OpenCV's DNN module with its ONNX importer (works without the TensorFlow importer)."""

    name = "opencv"
    choice = "opencv"  # what the node logs (make_runtime sets it for auto)

    def __init__(self, onnx_path: str | os.PathLike[str], threads: int = 1) -> None:
        import cv2

        problem = opencv_onnx_problem(cv2.__version__)
        if problem:
            raise ConfigError(f"ssd_runtime 'opencv': {problem}")
        try:
            self._net = cv2.dnn.readNetFromONNX(str(onnx_path))
        except cv2.error as exc:
            raise ModelError(f"cannot load the SSD ONNX model {onnx_path}: {exc}") from None
        self._threads = max(int(threads), 1)

    def __call__(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        previous = cv2.getNumThreads()
        cv2.setNumThreads(self._threads)
        try:
            self._net.setInput(blob)
            loc, conf = self._net.forward(["loc", "conf"])
        finally:
            cv2.setNumThreads(previous)
        return np.asarray(loc).reshape(-1, 4), np.asarray(conf).reshape(-1, 2)


def opencv_onnx_problem(version: str) -> str:
    """"" when this OpenCV's ONNX importer reads the SSD's graphs, else what to do instead."""
    have = deps.parse_version(version)
    if not have or have >= OPENCV_ONNX_MINIMUM:
        return ""
    need = ".".join(map(str, OPENCV_ONNX_MINIMUM))
    return (f"OpenCV {version} cannot read the SSD's ONNX graph (needs OpenCV >= {need}): "
            f"pip install '{deps.BY_MODULE['onnxruntime'].pip_requirement}' (or openvino, or "
            f"'opencv-python>={need}'), or use detector 'ssd_tf'")


def choose_runtime(device: str = "cpu") -> tuple[str, str]:
    """What ``auto`` picks: (runtime name, why), the first of openvino (CPU only), onnxruntime,
    opencv that can run here; ConfigError in one line when none can."""
    import cv2

    skipped = []
    if device == "cpu":
        ov, why = deps.load_optional("openvino")
        if ov is not None:
            return "openvino", "openvino is installed"
        skipped.append(f"openvino {why}")
    else:
        skipped.append(f"openvino runs on the CPU only (device {device})")
    ort, why = deps.load_optional("onnxruntime")
    if ort is not None:
        return "onnxruntime", "; ".join(skipped)
    skipped.append(f"onnxruntime {why}")
    problem = opencv_onnx_problem(cv2.__version__)
    if problem:
        raise ConfigError(f"ssd_runtime 'auto': {'; '.join(skipped)}; {problem}")
    return "opencv", "; ".join(skipped + ["the slowest of the three"])


def make_runtime(name: str, onnx_path: str | os.PathLike[str], threads: int = 1,
                 device: str = "cpu") -> SsdRuntime:
    """The runtime called ``name`` (one of :data:`RUNTIMES`); its ``choice`` attribute says
    which runtime runs and, for ``auto``, why."""
    if name == "auto":
        chosen, why = choose_runtime(device)
        runtime = make_runtime(chosen, onnx_path, threads, device)
        runtime.choice = f"auto -> {chosen}" + (f" ({why})" if why else "")
        return runtime
    if name == "openvino":
        if device != "cpu":
            raise ConfigError(f"ssd_runtime 'openvino' runs on the CPU here; for device "
                              f"{device!r} use ssd_runtime 'onnxruntime'")
        return OpenVinoRuntime(onnx_path, threads)
    if name == "onnxruntime":
        return OnnxRuntimeRuntime(onnx_path, threads, device)
    if name == "opencv":
        return OpenCvRuntime(onnx_path, threads)
    raise ConfigError(f"unknown ssd_runtime {name!r}: use one of {', '.join(RUNTIMES)}")
