"""Inference runtimes for the SSD's ONNX graph: one small class each, same call signature.

A runtime takes the (1, 3, H, W) float32 blob and returns the graph's ``loc`` (P, 4) and
``conf`` (P, 2) arrays. Which to use is the ``ssd_runtime`` parameter:

- ``openvino`` (default): OpenVINO on the CPU; bf16 where the CPU has it (AVX512-BF16/AMX),
  otherwise f32. Fastest here (benchmarks/detector_recall.py prints the ratios).
- ``onnxruntime``: ONNX Runtime; takes the CUDA execution provider when ``device`` is cuda and
  an onnxruntime build with CUDA is installed (else says so and refuses).
- ``opencv``: OpenCV's own ONNX importer: no extra package, slowest.

Each runtime is pinned to ``threads`` CPU threads (1 by default: several busy processes share
the cores of a robot, and one thread per process is the robust choice).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Protocol

import numpy as np

from .errors import ConfigError, ModelError

RUNTIMES = ("openvino", "onnxruntime", "opencv")


class SsdRuntime(Protocol):
    """Runs the SSD graph on one blob."""

    name: str

    def __call__(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


_CORE = None


def _openvino_core(ov):
    """One ``ov.Core`` per process, shared by every SSD built (each reconfigure builds one):
    a new Core per build kept ~14 MB more now and then (its thread pools and caches)."""
    global _CORE
    if _CORE is None:
        _CORE = ov.Core()
    return _CORE


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
    recently used kept (each costs 25-30 MB here, even for small shapes; a camera needs two:
    the full pass and the close-up pass)."""

    name = "openvino"
    MAX_SHAPES = 4

    def __init__(self, onnx_path: str | os.PathLike[str], threads: int = 1,
                 precision: str | None = None) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ConfigError("ssd_runtime 'openvino' needs the openvino package "
                              f"({exc}); use ssd_runtime 'onnxruntime' or 'opencv'") from None
        self._core = _openvino_core(ov)
        try:
            self._model = self._core.read_model(str(onnx_path))
        except Exception as exc:  # openvino raises RuntimeError subclasses for bad files
            raise ModelError(f"cannot load the SSD ONNX model {onnx_path}: {exc}") from None
        self._config = {"INFERENCE_NUM_THREADS": max(int(threads), 1),
                        "INFERENCE_PRECISION_HINT": precision or openvino_precision(),
                        "PERFORMANCE_HINT": "LATENCY",
                        "NUM_STREAMS": 1}
        # one compiled model + infer request per input shape (an explicit request, fed without
        # a copy, measured 2x faster here than calling the compiled model with a new array)
        # (a dynamic-shape model was measured 1.3-1.9x slower per pass)
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

    def __init__(self, onnx_path: str | os.PathLike[str], threads: int = 1,
                 device: str = "cpu") -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError("ssd_runtime 'onnxruntime' needs the onnxruntime package "
                              f"({exc}); use ssd_runtime 'openvino' or 'opencv'") from None
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

    def __init__(self, onnx_path: str | os.PathLike[str], threads: int = 1) -> None:
        import cv2

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


def make_runtime(name: str, onnx_path: str | os.PathLike[str], threads: int = 1,
                 device: str = "cpu") -> SsdRuntime:
    """The runtime called ``name`` (one of :data:`RUNTIMES`)."""
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
