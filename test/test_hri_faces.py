"""fer_ros/core/hri_faces.py (ROS-free): our labels on hri_msgs/Expression, valence/arousal,
REP-155 ROIs and cropped faces, ids and track lifetimes."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fer_ros.core import hri_faces
from fer_ros.core.types import Box

FER7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
REP155_CONSTANTS = {"neutral", "angry", "sad", "happy", "surprised", "disgusted", "scared"}


def one_hot(labels: list[str], name: str) -> np.ndarray:
    return np.array([1.0 if n == name else 0.0 for n in labels], dtype=np.float32)


@pytest.mark.parametrize("label,constant", [("fear", "scared"), ("surprise", "surprised"),
                                            ("disgust", "disgusted"), ("happy", "happy"),
                                            ("angry", "angry"), ("sad", "sad"),
                                            ("neutral", "neutral")])
def test_each_label_maps_onto_its_expression_constant(label, constant):
    got = hri_faces.expression(FER7, one_hot(FER7, label))
    assert got.expression == constant and got.confidence == 1.0
    assert (got.valence, got.arousal) == pytest.approx(hri_faces.CIRCUMPLEX[label])
    assert set(hri_faces.EXPRESSION_OF_LABEL.values()) == REP155_CONSTANTS


def test_valence_arousal_are_the_probability_weighted_places():
    probs = np.array([0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0])  # half happy, half sad
    got = hri_faces.expression(FER7, probs)
    (hv, ha), (sv, sa) = hri_faces.CIRCUMPLEX["happy"], hri_faces.CIRCUMPLEX["sad"]
    assert got.valence == pytest.approx((hv + sv) / 2) and got.arousal == pytest.approx((ha + sa) / 2)
    assert got.expression in ("happy", "sad") and got.confidence == pytest.approx(0.5)
    for name, (v, a) in hri_faces.CIRCUMPLEX.items():
        assert -1.0 <= v <= 1.0 and -1.0 <= a <= 1.0, name
    assert hri_faces.CIRCUMPLEX["happy"][0] > 0 > hri_faces.CIRCUMPLEX["sad"][0]
    assert hri_faces.CIRCUMPLEX["surprise"][1] > 0 > hri_faces.CIRCUMPLEX["sad"][1]


def test_contempt_has_no_constant_and_never_wins_but_moves_valence():
    labels = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
    ferplus = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
    probs = np.array([0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8])
    got = hri_faces.expression(ferplus, probs)
    assert got.expression == "neutral" and got.confidence == pytest.approx(0.2)
    assert got.valence == pytest.approx(0.8 * hri_faces.CIRCUMPLEX["contempt"][0])
    assert hri_faces.expression(labels[:1], np.array([1.0])).expression == "neutral"


def test_normalized_roi_is_fractions_of_the_image():
    assert hri_faces.normalized_roi(Box(64, 48, 320, 240), 640, 480) == pytest.approx(
        (0.1, 0.1, 0.6, 0.6))
    assert hri_faces.normalized_roi(Box(600, 0, 40, 480), 640, 480) == pytest.approx(
        (0.9375, 0.0, 1.0, 1.0))


def test_cropped_face_is_square_centred_zero_padded_and_sized():
    bgr = np.full((100, 200, 3), 200, dtype=np.uint8)
    bgr[40:60, 90:110] = (0, 0, 255)  # a red 20x20 "face"
    crop = hri_faces.cropped_face(bgr, Box(90, 40, 20, 20), size=64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    assert tuple(crop[32, 32]) == (0, 0, 255)
    # a tall box at the left edge: the square reaches outside the frame, which is black
    edge = hri_faces.cropped_face(bgr, Box(0, 0, 10, 40), size=40)
    assert edge.shape == (40, 40, 3)
    assert edge[:, :10].max() == 0 and edge[:, 20:].min() == 200


def test_ids_are_name_tokens_with_a_prefix_per_activation():
    prefix = hri_faces.new_id_prefix(random.Random(1))
    assert len(prefix) == 4 and prefix.isalpha() and prefix.islower()
    assert hri_faces.face_id(prefix, 12) == f"{prefix}12"
    assert hri_faces.new_id_prefix(random.Random(2)) != prefix


def test_a_face_lives_as_long_as_its_track():
    life = hri_faces.TrackLifetimes(max_missed=1)
    assert life.update([3]) == ([3], [])
    assert life.update([]) == ([], [])  # missed once: still alive
    assert life.alive == [3]
    assert life.update([3, 4]) == ([4], [])  # seen again: the miss count restarts
    assert life.update([4]) == ([], [])
    assert life.update([4]) == ([], [3])  # missed twice: ended
    assert life.alive == [4]
