"""Runtimes for the classifier's network: eager PyTorch or ONNX Runtime, one call signature.

A runtime maps a normalised (N, C, S, S) float32 batch to (N, classes) float32 logits. The
classifier does everything around it (crops, normalisation, flip averaging, temperature), so
every runtime sees the same inputs and the checkpoint stays the one source of the weights.
Which runs is the ``classifier_runtime`` parameter:

- ``auto`` (default): ``onnxruntime`` when the classifier runs on the CPU in float32 and
  onnxruntime and onnx are installed (a ``rosdep install`` gives onnxruntime, not onnx), else
  ``torch``; the runtime's ``choice`` says which and why, and the node logs it.
- ``onnxruntime``: the network is exported to ONNX in memory when the model loads (under a
  second; nothing is written or cached) and run by ONNX Runtime: per face at batch 1 on one
  thread it takes about 0.6x eager PyTorch's time (benchmarks/classifier_runtimes.py), which is
  what pays for flip test-time augmentation.
- ``torch``: eager PyTorch: CUDA with ``device`` cuda, bfloat16 with ``classifier_bf16``.
"""

from __future__ import annotations

import io
import warnings
from typing import Protocol

import numpy as np
import torch
from torch import nn

from .. import deps
from .errors import ConfigError, ModelError

RUNTIMES = ("auto", "onnxruntime", "torch")


class NetworkRuntime(Protocol):
    """Runs the classifier network on a normalised batch."""

    name: str
    choice: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchNetwork:
    """Eager PyTorch on the checkpoint's device; bfloat16 autocast when asked."""

    name = "torch"
    choice = "torch"  # what the node logs (make_network_runtime sets it for auto)

    def __init__(self, model: nn.Module, device: torch.device, bf16: bool = False) -> None:
        # channels_last: faster oneDNN convolutions on the CPU
        self.model = model.to(device).to(memory_format=torch.channels_last).eval()
        self.device = device
        self.bf16 = bf16

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.bf16):
            return self.model(x).float().cpu()


def onnx_graph(model: nn.Module, in_channels: int, input_size: int) -> bytes:
    """The network as an ONNX graph (batch size free), in memory. Needs the onnx package."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's deprecation notes are not the user's
        warnings.simplefilter("ignore")
        torch.onnx.export(model.cpu().eval(), torch.zeros(1, in_channels, input_size, input_size),
                          buffer, input_names=["faces"], output_names=["logits"],
                          dynamic_axes={"faces": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    return buffer.getvalue()


class OnnxRuntimeNetwork:
    """ONNX Runtime's CPU provider on the network exported at load."""

    name = "onnxruntime"
    choice = "onnxruntime"  # what the node logs (make_network_runtime sets it for auto)

    def __init__(self, model: nn.Module, in_channels: int, input_size: int,
                 threads: int | None = 1) -> None:
        needs = ("classifier_runtime 'onnxruntime'", "use classifier_runtime 'torch'")
        ort = deps.require_optional("onnxruntime", *needs)
        deps.require_optional("onnx", *needs)  # the exporter writes the graph with it
        try:
            graph = onnx_graph(model, in_channels, input_size)
        except Exception as exc:  # the exporter raises many types; say it in one line
            raise ModelError(f"cannot export the classifier to ONNX: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]}") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(threads), 1) if threads else 0  # 0: ORT decides
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(graph, options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"ONNX Runtime cannot load the classifier: {exc}") from None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        faces = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        (logits,) = self._session.run(["logits"], {"faces": faces})
        return torch.from_numpy(logits)


def choose_runtime(device: torch.device, bf16: bool) -> tuple[str, str]:
    """What ``auto`` picks: (runtime name, why)."""
    if device.type != "cpu":
        return "torch", f"device {device.type}"
    if bf16:
        return "torch", "classifier_bf16 runs in torch"
    for module in ("onnxruntime", "onnx"):
        installed, why = deps.load_optional(module)
        if installed is None:
            return "torch", f"{module} {why}"
    return "onnxruntime", ""


def make_network_runtime(name: str, model: nn.Module, *, device: torch.device, bf16: bool,
                         in_channels: int, input_size: int,
                         threads: int | None = 1) -> NetworkRuntime:
    """The runtime called ``name`` (one of :data:`RUNTIMES`) for a built, batch-norm-folded
    ``model``; its ``choice`` says which runtime runs and, for ``auto``, why."""
    if name == "auto":
        chosen, why = choose_runtime(device, bf16)
        runtime = make_network_runtime(chosen, model, device=device, bf16=bf16,
                                       in_channels=in_channels, input_size=input_size,
                                       threads=threads)
        runtime.choice = f"auto -> {chosen}" + (f" ({why})" if why else "")
        return runtime
    if name == "torch":
        return TorchNetwork(model, device, bf16)
    if name == "onnxruntime":
        if device.type != "cpu" or bf16:
            raise ConfigError("classifier_runtime 'onnxruntime' runs float32 on the CPU; for "
                              "device cuda or classifier_bf16 use classifier_runtime 'torch'")
        return OnnxRuntimeNetwork(model, in_channels, input_size, threads)
    raise ConfigError(f"unknown classifier_runtime {name!r}: use one of {', '.join(RUNTIMES)}")
