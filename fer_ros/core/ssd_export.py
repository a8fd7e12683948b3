"""Convert OpenCV's ResNet-10 SSD face detector (TensorFlow ``.pb`` + ``.pbtxt``) to ONNX.

    python -m fer_ros.core.ssd_export PB PBTXT OUT.onnx

The weights are read out of the official graph with OpenCV's classic DNN engine
(``Net.getParam``) and the same network is written with ``onnx.helper``: deterministic bytes
for given weights and ``onnx`` version, so ``models/manifest.json`` can pin its sha256.
Two things differ from the TensorFlow graph, on purpose:

- the two 3x3 stride-2 "SAME" convolutions (``layer_128_1_conv1_h``, ``conv6_2_h``) pad
  symmetrically (1 pixel each side, the original Caffe geometry). TensorFlow's SAME pads only
  bottom/right when their input is even-sized, which shifts every box up and left at blob sizes
  other than 300x300 (where both inputs are odd and the two agree exactly);
- the graph ends at the raw head outputs. Prior boxes (with their true strides: 8, 16, 32 and
  64 for the last three maps, where the ``.pbtxt`` hard-wires 64, 100 and 300 for a 300x300
  blob) and box decoding live in :mod:`fer_ros.core.ssd_decode`, for any input size.

Outputs: ``loc`` (1, P, 4) and ``conf`` (1, P, 2) softmax scores over the priors of the six
heads in order, each head's priors in (row, column, prior) order. Input ``data``
(1, 3, H, W) float32: BGR minus (104, 177, 123), H and W multiples of 8 are fastest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

OPSET = 17
BN_EPS = 1.001e-5  # FusedBatchNorm epsilon in the graph
DILATION = 2  # layer_512_1_conv2_h: SpaceToBatchND block shape (an atrous 3x3)


class _Weights:
    """Parameters of the TensorFlow graph, by layer name, through OpenCV's classic engine."""

    def __init__(self, pb: str, pbtxt: str) -> None:
        import cv2

        from .errors import ModelError

        if not hasattr(cv2.dnn, "readNetFromTensorflow"):
            raise ModelError(
                f"making the SSD's ONNX file reads the TensorFlow graph, which OpenCV "
                f"{cv2.__version__} cannot (its TensorFlow importer went in 5.1): run "
                "`fer-models fetch` once with opencv-python<5.1, or copy "
                "opencv_face_detector_res10.onnx from a machine that made it (sha256-checked)")
        kwargs = {"engine": cv2.dnn.ENGINE_CLASSIC} if hasattr(cv2.dnn, "ENGINE_CLASSIC") else {}
        self._net = cv2.dnn.readNetFromTensorflow(pb, pbtxt, **kwargs)

    def __call__(self, layer: str) -> list[np.ndarray]:
        lid = self._net.getLayerId(layer)
        if lid < 0:
            raise KeyError(f"layer {layer!r} not in the SSD graph")
        blobs = list(self._net.getLayer(lid).blobs)
        return [np.asarray(b, dtype=np.float32) for b in blobs]


class _Graph:
    """A tiny builder over onnx.helper: every method adds nodes and returns the output name."""

    def __init__(self, weights: _Weights) -> None:
        self.w = weights
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def _name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attrs) -> str:
        from onnx import helper

        out = self._name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def affine(self, x: str, scale: np.ndarray, shift: np.ndarray, hint: str) -> str:
        """Per-channel x * scale + shift (NCHW)."""
        s = self.const(hint + "_s", scale.reshape(1, -1, 1, 1).astype(np.float32))
        b = self.const(hint + "_b", shift.reshape(1, -1, 1, 1).astype(np.float32))
        return self.node("Add", [self.node("Mul", [x, s], hint + "_mul"), b], hint)

    def bn_scale(self, x: str, bn: str | None, scale: str) -> str:
        """FusedBatchNorm (mean, variance, gamma, beta) and/or Scale (Mul + BiasAdd) layers,
        folded into one affine."""
        a = np.ones(1, np.float32)
        b = np.zeros(1, np.float32)
        if bn is not None:
            mean, var, gamma, beta = self.w(bn)
            a = gamma / np.sqrt(var + BN_EPS)
            b = beta - mean * a
        s = self.w(scale + "/Mul")[0].reshape(-1)
        t = self.w(scale + "/BiasAdd")[0].reshape(-1)
        return self.affine(x, a * s, b * s + t, scale.replace("/", "_"))

    def conv(self, x: str, layer: str, stride: int = 1, pads: tuple[int, int, int, int] | None = None,
             dilation: int = 1, post: str | None = None) -> str:
        """Conv2D (+ its bias) with an optional per-channel affine folded into it (``post``:
        a Scale layer name that directly follows the convolution)."""
        blobs = self.w(layer)
        weight = blobs[0]
        bias = blobs[1].reshape(-1) if len(blobs) > 1 else np.zeros(weight.shape[0], np.float32)
        if post is not None:
            s = self.w(post + "/Mul")[0].reshape(-1)
            t = self.w(post + "/BiasAdd")[0].reshape(-1)
            weight = weight * s.reshape(-1, 1, 1, 1)
            bias = bias * s + t
        k = weight.shape[2]
        if pads is None:  # symmetric "same"
            p = dilation * (k - 1) // 2
            pads = (p, p, p, p)
        return self.node(
            "Conv", [x, self.const(layer.replace("/", "_") + "_w", weight),
                     self.const(layer.replace("/", "_") + "_b", bias)],
            layer.replace("/", "_"), kernel_shape=[k, k], strides=[stride, stride],
            pads=list(pads), dilations=[dilation, dilation])

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], "relu")

    def head(self, x: str, layer: str, width: int) -> str:
        """A head conv, NCHW -> (1, H*W*priors, width)."""
        y = self.conv(x, layer)
        y = self.node("Transpose", [y], "nhwc", perm=[0, 2, 3, 1])
        shape = self.const("shape", np.array([1, -1, width], dtype=np.int64))
        return self.node("Reshape", [y, shape], layer.split("/")[0] + "_flat")


def build_model(pb: str, pbtxt: str):
    """The ONNX ModelProto of the SSD (see the module docstring)."""
    from onnx import TensorProto, helper

    g = _Graph(_Weights(pb, pbtxt))
    x = g.bn_scale("data", "data_bn/FusedBatchNorm", "data_scale")
    # conv1: explicit 3-pixel pad, 7x7 stride 2, BN + scale, ReLU; 3x3/2 max-pool with
    # TensorFlow's SAME padding (bottom/right only; the padded values are ignored)
    x = g.relu(g.bn_scale(g.conv(x, "conv1_h/Conv2D", stride=2, pads=(3, 3, 3, 3)),
                          "conv1_bn_h/FusedBatchNorm", "conv1_scale_h"))
    pool = g.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1])
    # layer_64_1: identity shortcut
    y = g.relu(g.conv(pool, "layer_64_1_conv1_h/Conv2D", post="layer_64_1_scale2_h"))
    x = g.node("Add", [g.conv(y, "layer_64_1_conv2_h/Conv2D"), pool], "add")
    # layer_128_1 (stride 8): pre-activation, 1x1/2 projection
    pre = g.relu(g.bn_scale(x, "layer_128_1_bn1_h/FusedBatchNorm", "layer_128_1_scale1_h"))
    y = g.relu(g.conv(pre, "layer_128_1_conv1_h/Conv2D", stride=2, post="layer_128_1_scale2"))
    y = g.conv(y, "layer_128_1_conv2/Conv2D")
    e = g.conv(pre, "layer_128_1_conv_expand_h/Conv2D", stride=2, pads=(0, 0, 0, 0))
    x = g.node("Add", [y, e], "add_1")
    # layer_256_1 (stride 16); its pre-activation (stride 8) feeds the conv4_3 heads
    pre = g.relu(g.bn_scale(x, "layer_256_1_bn1/FusedBatchNorm", "layer_256_1_scale1"))
    sq = g.node("ReduceSum", [g.node("Mul", [pre, pre], "sq"),
                              g.const("axes", np.array([1], np.int64))], "sumsq", keepdims=1)
    norm = g.node("Sqrt", [g.node("Max", [sq, g.const("eps", np.array(1e-12, np.float32))],
                                  "clip")], "norm")
    conv4_3 = g.node("Div", [pre, norm], "l2norm")
    s = g.w("conv4_3_norm/mul_1")[0].reshape(-1)
    conv4_3 = g.affine(conv4_3, s, np.zeros_like(s), "conv4_3_norm")
    heads = [("conv4_3_norm", conv4_3)]
    y = g.relu(g.conv(pre, "layer_256_1_conv1/Conv2D", stride=2, post="layer_256_1_scale2"))
    y = g.conv(y, "layer_256_1_conv2/Conv2D")
    e = g.conv(pre, "layer_256_1_conv_expand/Conv2D", stride=2, pads=(0, 0, 0, 0))
    x = g.node("Add", [y, e], "add_2")
    # layer_512_1 (stride 16, dilated 3x3)
    pre = g.relu(g.bn_scale(x, "layer_512_1_bn1/FusedBatchNorm", "layer_512_1_scale1"))
    y = g.relu(g.conv(pre, "layer_512_1_conv1_h/Conv2D", post="layer_512_1_scale2_h"))
    y = g.conv(y, "layer_512_1_conv2_h/convolution", dilation=DILATION)
    e = g.conv(pre, "layer_512_1_conv_expand_h/Conv2D", pads=(0, 0, 0, 0))
    x = g.node("Add", [y, e], "add_3")
    fc7 = g.relu(g.bn_scale(x, "last_bn_h/FusedBatchNorm", "last_scale_h"))
    heads.append(("fc7", fc7))
    x = g.relu(g.conv(fc7, "conv6_1_h/Conv2D", pads=(0, 0, 0, 0)))
    x = g.relu(g.conv(x, "conv6_2_h/Conv2D", stride=2))  # symmetric (Caffe) padding
    heads.append(("conv6_2", x))
    x = g.relu(g.conv(x, "conv7_1_h/Conv2D", pads=(0, 0, 0, 0)))
    x = g.relu(g.conv(x, "conv7_2_h/Conv2D", stride=2))  # explicit 1-pixel pad in the graph
    heads.append(("conv7_2", x))
    x = g.relu(g.conv(x, "conv8_1_h/Conv2D", pads=(0, 0, 0, 0)))
    x = g.relu(g.conv(x, "conv8_2_h/Conv2D"))
    heads.append(("conv8_2", x))
    x = g.relu(g.conv(x, "conv9_1_h/Conv2D", pads=(0, 0, 0, 0)))
    x = g.relu(g.conv(x, "conv9_2_h/Conv2D"))
    heads.append(("conv9_2", x))

    locs = [g.head(f, f"{name}_mbox_loc/Conv2D", 4) for name, f in heads]
    confs = [g.head(f, f"{name}_mbox_conf/Conv2D", 2) for name, f in heads]
    loc = g.node("Concat", locs, "loc_cat", axis=1)
    conf = g.node("Softmax", [g.node("Concat", confs, "conf_cat", axis=1)], "conf_sm", axis=2)
    g.nodes.append(helper.make_node("Identity", [loc], ["loc"], name="loc"))
    g.nodes.append(helper.make_node("Identity", [conf], ["conf"], name="conf"))
    graph = helper.make_graph(
        g.nodes, "opencv_face_detector_res10_ssd",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("loc", TensorProto.FLOAT, [1, "priors", 4]),
         helper.make_tensor_value_info("conf", TensorProto.FLOAT, [1, "priors", 2])],
        initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fer_ros.core.ssd_export")
    model.ir_version = 8
    return model


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m fer_ros.core.ssd_export PB PBTXT OUT.onnx", file=sys.stderr)
        return 2
    export(*argv)
    print(f"wrote {argv[2]}")
    return 0


def export(pb: str | os.PathLike[str], pbtxt: str | os.PathLike[str],
           out: str | os.PathLike[str]) -> None:
    """Write the ONNX model (atomically)."""
    import onnx

    model = build_model(str(pb), str(pbtxt))
    onnx.checker.check_model(model)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(model.SerializeToString(deterministic=True))
    os.replace(tmp, out)


if __name__ == "__main__":
    sys.exit(main())
