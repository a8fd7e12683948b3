"""Stable face ids across frames: greedy IoU matching with a centre-distance fallback.

Track ids are ints starting at 0 and counting up; an id is never given to another face,
even after its track died or after :meth:`FaceTracker.reset` (unless ``restart_ids``).
``track_id == -1`` on a :class:`FaceResult` means "not tracked".

Each frame, detections are matched to live tracks greedily (deterministic order):
first all pairs with IoU >= ``iou_threshold`` (highest IoU first), then, for what is left,
pairs whose centre distance divided by the mean side of the two boxes is <=
``max_center_distance`` (closest first) -- this catches faces that moved or changed size
faster than IoU tolerates. Tracks are compared through a constant-velocity prediction of
their centre (size kept), so two faces that cross keep their ids. A track that finds no
detection survives ``max_missed`` frames (like ROS4HRI hri_face_detect) and is then dropped;
unmatched detections start new tracks. Matching counts frames (calls), not seconds.

A new track is *tentative* until it has been matched in ``min_hits`` of the last
``hit_window`` frames (SORT/ByteTrack's min_hits): a detector's one-frame phantom (a shirt
pattern, an ear) must not reach a robot as a face. Once confirmed, a track stays confirmed
while it lives. ``min_hits=1`` confirms at once (every detection is reported).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ..params import or_default
from .errors import ConfigError
from .types import Box, FaceResult

# Geometry is kept as floats (cx, cy, w, h) so that predicted boxes need no rounding.
_Rect = tuple[float, float, float, float]

VELOCITY_BLEND = 0.5  # weight of the newest measured displacement in the velocity estimate


def _rect(box: Box) -> _Rect:
    return (box.x + box.w / 2.0, box.y + box.h / 2.0, float(box.w), float(box.h))


def _iou(a: _Rect, b: _Rect) -> float:
    ix = min(a[0] + a[2] / 2, b[0] + b[2] / 2) - max(a[0] - a[2] / 2, b[0] - b[2] / 2)
    iy = min(a[1] + a[3] / 2, b[1] + b[3] / 2) - max(a[1] - a[3] / 2, b[1] - b[3] / 2)
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _center_distance(a: _Rect, b: _Rect) -> float:
    """Centre distance in units of the mean side length of the two boxes."""
    size = (a[2] + a[3] + b[2] + b[3]) / 4.0
    if size <= 0:
        return math.inf
    return math.hypot(a[0] - b[0], a[1] - b[1]) / size


@dataclass
class Track:
    """One tracked face: last matched box, per-frame centre velocity, frames since a match."""

    track_id: int
    rect: _Rect
    vx: float = 0.0
    vy: float = 0.0
    missed: int = 0
    hits: int = 1
    confirmed: bool = False
    recent: deque[bool] = field(default_factory=deque)  # matched or not, newest last

    @property
    def box(self) -> Box:
        """The last matched box, in whole pixels."""
        cx, cy, w, h = self.rect
        return Box(int(round(cx - w / 2)), int(round(cy - h / 2)), int(round(w)), int(round(h)))

    def predicted_box(self) -> Box:
        """:meth:`predicted` in whole pixels: where to look for this face in the next frame."""
        cx, cy, w, h = self.predicted()
        return Box(int(round(cx - w / 2)), int(round(cy - h / 2)), int(round(w)), int(round(h)))

    def predicted(self) -> _Rect:
        """Where the centre should be in the next frame (constant velocity), size unchanged."""
        steps = self.missed + 1
        return (self.rect[0] + self.vx * steps, self.rect[1] + self.vy * steps,
                self.rect[2], self.rect[3])

    def update(self, rect: _Rect) -> None:
        steps = self.missed + 1
        mvx = (rect[0] - self.rect[0]) / steps
        mvy = (rect[1] - self.rect[1]) / steps
        if self.hits == 1:  # first displacement seen: take it as is
            self.vx, self.vy = mvx, mvy
        else:
            self.vx = VELOCITY_BLEND * mvx + (1 - VELOCITY_BLEND) * self.vx
            self.vy = VELOCITY_BLEND * mvy + (1 - VELOCITY_BLEND) * self.vy
        self.rect = rect
        self.missed = 0
        self.hits += 1


class FaceTracker:
    """Assigns stable ``track_id`` values to the faces of consecutive frames of one camera."""

    def __init__(
        self,
        iou_threshold: float | None = None,  # default: the track_iou_threshold parameter
        max_missed: int | None = None,  # default: the track_max_missed parameter
        max_center_distance: float = 0.5,
        predict_motion: bool = True,
        min_hits: int = 1,
        hit_window: int = 1,
    ) -> None:
        iou_threshold = or_default(iou_threshold, "track_iou_threshold")
        max_missed = or_default(max_missed, "track_max_missed")
        if not 0.0 < iou_threshold <= 1.0:
            raise ConfigError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_missed < 0:
            raise ConfigError(f"max_missed must be >= 0 frames, got {max_missed}")
        if max_center_distance < 0:
            raise ConfigError(
                "max_center_distance must be >= 0 (0 disables the fallback), "
                f"got {max_center_distance}"
            )
        if hit_window < 1 or not 1 <= min_hits <= hit_window:
            raise ConfigError(f"min_hits must be in 1..hit_window and hit_window >= 1, got "
                              f"min_hits={min_hits}, hit_window={hit_window}")
        self.min_hits = int(min_hits)
        self.hit_window = int(hit_window)
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.max_center_distance = float(max_center_distance)
        self.predict_motion = bool(predict_motion)
        self._tracks: list[Track] = []
        self._next_id = 0

    @property
    def active_ids(self) -> list[int]:
        """Ids of the tracks alive now (matched this frame or missed <= max_missed frames)."""
        return [t.track_id for t in self._tracks]

    def reset(self, restart_ids: bool = False) -> None:
        """Forget all tracks; ids keep counting up unless ``restart_ids`` (then start at 0)."""
        self._tracks = []
        if restart_ids:
            self._next_id = 0

    @property
    def tracks(self) -> list[Track]:
        """The live tracks (read them, do not change them)."""
        return list(self._tracks)

    def assign(self, results: list[FaceResult], stamp_s: float | None = None) -> None:
        """Set ``track_id`` of every result in place (one frame). ``stamp_s`` is not used:
        matching and ``max_missed`` count frames. Tentative tracks get their id too; use
        :meth:`update` to learn which are confirmed."""
        del stamp_s
        for result, (track_id, _) in zip(results, self.update([r.box for r in results])):
            result.track_id = track_id

    def update(self, boxes: list[Box]) -> list[tuple[int, bool]]:
        """One frame's boxes -> (track id, confirmed) of each, in the same order."""
        rects = [_rect(b) for b in boxes]
        out: list[tuple[int, bool]] = [(-1, False)] * len(rects)
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        for ti, di in self._match(rects):
            track = self._tracks[ti]
            track.update(rects[di])
            self._record(track, True)
            out[di] = (track.track_id, track.confirmed)
            matched_tracks.add(ti)
            matched_dets.add(di)
        survivors = []
        for ti, track in enumerate(self._tracks):
            if ti not in matched_tracks:
                track.missed += 1
                self._record(track, False)
                if track.missed > self.max_missed:
                    continue
                # a tentative track that can no longer reach min_hits in its window is dropped
                if not track.confirmed and (sum(track.recent) + self.hit_window
                                            - len(track.recent) < self.min_hits):
                    continue
            survivors.append(track)
        for di, rect in enumerate(rects):
            if di not in matched_dets:
                track = Track(self._next_id, rect)
                self._next_id += 1
                self._record(track, True)
                survivors.append(track)
                out[di] = (track.track_id, track.confirmed)
        self._tracks = survivors
        return out

    def _record(self, track: Track, hit: bool) -> None:
        track.recent.append(hit)
        while len(track.recent) > self.hit_window:
            track.recent.popleft()
        if not track.confirmed and sum(track.recent) >= self.min_hits:
            track.confirmed = True

    def _match(self, rects: list[_Rect]) -> list[tuple[int, int]]:
        """Greedy matching: IoU pairs (best first), then centre-distance pairs (closest first).
        Ties break on track order then detection order, so the result is deterministic."""
        iou_pairs: list[tuple[float, int, int]] = []
        dist_pairs: list[tuple[float, int, int]] = []
        for ti, track in enumerate(self._tracks):
            ref = track.predicted() if self.predict_motion else track.rect
            for di, rect in enumerate(rects):
                iou = _iou(ref, rect)
                if iou >= self.iou_threshold:
                    iou_pairs.append((-iou, ti, di))
                elif self.max_center_distance > 0:
                    dist = _center_distance(ref, rect)
                    if dist <= self.max_center_distance:
                        dist_pairs.append((dist, ti, di))
        pairs: list[tuple[int, int]] = []
        used_t: set[int] = set()
        used_d: set[int] = set()
        for group in (sorted(iou_pairs), sorted(dist_pairs)):
            for _, ti, di in group:
                if ti in used_t or di in used_d:
                    continue
                used_t.add(ti)
                used_d.add(di)
                pairs.append((ti, di))
        return pairs
