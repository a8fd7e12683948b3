"""The node's outputs, one module each behind :class:`~fer_ros.node.outputs.base.Output`:
``emotions`` (always), ``annotated_image`` (``publish_annotated``) and the ROS4HRI face
topics (``hri_output``)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from fer_ros.node.outputs.base import Frame, Output

__all__ = ["Frame", "Output", "build_outputs", "refusal"]


def refusal(params: Mapping[str, Any]) -> str:
    """"" when every output the parameters ask for can run here, else the one-line reason
    (checked at start, at configure and on every parameter change)."""
    from fer_ros.node.outputs.hri import hri_refusal

    return hri_refusal(params)


def build_outputs(params: Callable[[], Mapping[str, Any]]) -> list[Output]:
    """The outputs the parameters ask for (``params`` returns the node's live values)."""
    from fer_ros.node.outputs.annotated import AnnotatedImageOutput
    from fer_ros.node.outputs.emotions import EmotionsOutput

    outputs: list[Output] = [EmotionsOutput(), AnnotatedImageOutput(params)]
    values = params()
    if values["hri_output"]:
        from fer_ros.node.outputs.hri import HriOutput

        outputs.append(HriOutput(values["hri_cropped_size"], values["track_max_missed"]))
    return outputs
