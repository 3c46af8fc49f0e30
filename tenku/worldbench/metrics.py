"""WorldBench metrics: each a small function of (detections, spec) or of the frames. NaN means "does not apply to
this clip" (no horizontal motion for left/right, no occluder for permanence, ...) and is left out of means.

Prompt attributes (colour, shape, size, count, direction, speed) are gated on objects: each expected object
is matched to a coherent track of its colour (`objects.py`), and one with none fails every attribute;
`no_object` is 1 for a clip where no coherent object is found at all, so its mean is the rate of such clips.

Scores in [0, 1] are higher-better; `*_error`, `flicker`, `jerk`, `no_object` and `left_right_confusion` are
lower-better (see LOWER_IS_BETTER). Velocities in world units per second, accelerations in world units per
second squared.
"""

from __future__ import annotations

import math

import numpy as np

from tenku.vocab import direction_of
from tenku.worldbench.colors import SPEEDS, STILL_SPEED, horizontal_sign, speed_label, speed_value
from tenku.worldbench.detect import OCCLUDED_FIT_MIN_VISIBLE, VELOCITY_FIT_TOLERANCE, ClipDetections, Track, detect_frames
from tenku.worldbench.objects import coherent_objects
from tenku.worldbench.spec import Spec

NAN = float("nan")
LOWER_IS_BETTER = {"velocity_error", "gravity_error", "left_right_confusion", "flicker", "jerk", "no_object"}
WALL_MARGIN = 0.35  # world units: an object this close to a frame edge is in contact with the wall
STILL_DISPLACEMENT = 0.1  # world units (~0.6 px at 64x64, ~3x the H.264 centroid noise) moved over the measured window
MIN_MOTION_SPAN = 0.5  # seconds of straight motion wanted before falling back to partly hidden frames
PERMANENCE_POSITION_TOLERANCE = 0.6  # world units between the reappearance and the extrapolated path


def match_tracks(det: ClipDetections, spec: Spec) -> list[Track | None]:
    """The track of each expected object: the longest coherent track of its colour (the caption's name for it),
    None when there is none."""
    objs = coherent_objects(det)
    out = []
    for o in spec.objects:
        mine = [t for t in objs if t.color == o.color]
        out.append(max(mine, key=lambda t: t.seen.sum()) if mine else None)
    return out


def _mean(values) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else NAN


def initial_motion(track: Track, fps: float, falling: bool = False) -> tuple[np.ndarray, float] | None:
    """(mean velocity, duration in s) over the widest window from the first usable frame whose positions a
    straight line explains within VELOCITY_FIT_TOLERANCE: the whole stretch up to the first wall, collision or
    turn, so slow motion is measured over as long a baseline as the clip allows. Frames where the object is
    whole are used if there are at least 3; else frames where only another object may hide part of it
    (objects moving side by side in lanes touch all the time); else every frame it is seen with enough of it
    in view for a fitted centre. A falling
    object's height is a parabola broken by floor bounces, so only its x (constant velocity) is checked.
    A less trustworthy tier is used when the better one spans less than MIN_MOTION_SPAN seconds."""
    p_all = track.positions(clean_only=False)  # (T, 2)
    d = track.dets
    # Behind an occluder the position is the fitted whole template's centre (detect.fit_hidden), trusted while
    # enough of it shows; a sliver's fit is not.
    # An edge-clipped detection that no occluder fit corrected has the centroid of its visible part only, so
    # frames fitted behind a bar are tried without such frames first.
    tiers = (track.clean, np.array([x is not None and not (x.touches_edge or x.touches_occluder) for x in d]),
             np.array([x is not None and x.visible >= OCCLUDED_FIT_MIN_VISIBLE
                       and (x.touches_occluder or not x.touches_edge) for x in d]),
             np.array([x is not None and x.visible >= OCCLUDED_FIT_MIN_VISIBLE for x in d]))
    fits = [f for f in (_straight_window(p_all, np.nonzero(ok)[0], fps, falling) for ok in tiers) if f]
    if not fits:
        return None
    return next((f for f in fits if f[1] >= MIN_MOTION_SPAN), max(fits, key=lambda f: f[1]))


def _straight_window(p_all: np.ndarray, idx: np.ndarray, fps: float, falling: bool):
    """initial_motion on the frames idx of (T, 2) positions; None with fewer than 2 frames."""
    if len(idx) < 2:
        return None
    axes = (0,) if falling else (0, 1)
    # An event (a collision, a bounce) can hide in a gap: only a falling object's x, which nothing but a side
    # wall changes, is followed across one (it touches the floor edge at every bounce).
    if not falling:
        idx = idx[:np.argmax(np.diff(idx) > 1) + 1] if (np.diff(idx) > 1).any() else idx
        if len(idx) < 2:
            return None
    p = p_all[idx]  # (n, 2)
    k = idx.astype(np.float64)  # frame numbers
    best = 1
    for e in range(2, len(idx)):
        kk, w = k[:e + 1], p[:e + 1]
        resid = max(np.abs(w[:, j] - np.polyval(np.polyfit(kk, w[:, j], 1), kk)).max() for j in axes)
        if resid > VELOCITY_FIT_TOLERANCE:
            break
        best = e
    kk = k[:best + 1]
    v = np.array([np.polyfit(kk, p[:best + 1, j], 1)[0] for j in (0, 1)]) * fps
    return v, (kk[-1] - kk[0]) / fps


def initial_velocity(track: Track, fps: float, falling: bool = False) -> np.ndarray | None:
    m = initial_motion(track, fps, falling)
    return None if m is None else m[0]


def detected_direction(track: Track, fps: float, motion: str | None) -> str | None:
    """The direction word of a track's initial motion. "Still" is judged on displacement, not speed: an object
    is still when it moves less than STILL_DISPLACEMENT over the measured window, so a slow object measured over
    a long baseline still has a direction, while centroid noise over a short one does not make one up."""
    m = initial_motion(track, fps, falling=motion == "fall")
    if m is None:
        return None
    v, span = m
    still = min(STILL_SPEED, STILL_DISPLACEMENT / max(span, 1e-9))
    if motion == "fall":  # a launch is horizontal at first, then gravity takes over: name it by its side
        side = "right" if v[0] > still else "left" if v[0] < -still else None
        return f"down-{side}" if side else "down"
    return direction_of(*v, still=still)


# --- attributes ------------------------------------------------------------------------------------------

def attribute_scores(det: ClipDetections, spec: Spec) -> dict:
    """Colour, shape, size and count accuracy, and whether no object was found at all; an expected object with
    no coherent track of its colour counts as wrong on every attribute."""
    tracks = match_tracks(det, spec)
    found = coherent_objects(det)
    n = len(spec.objects)
    expected = n
    if spec.states:  # objects the ground truth never shows are not expected in the pixels
        expected = sum(any(s[k]["visible"] > 0 for s in spec.states) for k in range(n))
    return {
        "color_accuracy": _mean([t is not None for t in tracks]) if n else NAN,
        "shape_accuracy": _mean([t is not None and t.shape == o.shape for t, o in zip(tracks, spec.objects)
                                 if o.shape]),
        "size_accuracy": _mean([t is not None and t.size == o.size for t, o in zip(tracks, spec.objects) if o.size]),
        "count_accuracy": float(len(found) == expected) if n else NAN,
        "no_object": float(not found) if n else NAN,
    }


def motion_scores(det: ClipDetections, spec: Spec) -> dict:
    """Direction (8 + still) and speed class of each object's initial motion, and left/right confusion: of the
    objects told to move left or right that are found moving left or right, the share moving the other way
    (0.5 for a random side; undefined, NaN, when none is found moving sideways)."""
    tracks = match_tracks(det, spec)
    dirs, lr, speeds = [], [], []
    for t, o in zip(tracks, spec.objects):
        got = detected_direction(t, det.fps, spec.motion) if t is not None else None
        if o.direction:
            dirs.append(got == o.direction)
            if horizontal_sign(o.direction) and horizontal_sign(got):
                lr.append(horizontal_sign(got) == -horizontal_sign(o.direction))
        if o.speed in SPEEDS:
            v = initial_velocity(t, det.fps, spec.motion == "fall") if t is not None else None
            s = None if v is None else abs(v[0]) if spec.motion == "fall" else float(np.hypot(*v))
            speeds.append(s is not None and speed_label(s) == o.speed)
    return {"direction_accuracy": _mean(dirs), "left_right_confusion": _mean(lr), "speed_accuracy": _mean(speeds)}


# --- physics ---------------------------------------------------------------------------------------------

def _smooth_truth(states, k: int, i: int, half: int = 2) -> bool:
    """True when object k moves with constant acceleration and is fully visible over frames i +- half."""
    lo, hi = i - half, i + half
    if lo < 0 or hi >= len(states):
        return False
    v = np.array([[states[j][k]["vx"], states[j][k]["vy"]] for j in range(lo, hi + 1)])
    vis = min(states[j][k]["visible"] for j in range(lo, hi + 1))
    return vis >= 0.999 and np.abs(np.diff(v, 2, axis=0)).max(initial=0) < 1e-3


def velocity_error(det: ClipDetections, spec: Spec) -> float:
    """phyworld's metric: mean |v_detected - v_expected| (world units / s) over frames and objects.

    With ground truth: v_expected is the true per-frame velocity, at frames where it is smooth (no bounce or
    collision within the 5-frame fit window) and the object is whole. From a prompt: the constant velocity it
    implies for uniform, occlude and pan motion (direction times the speed word's typical value; with no speed
    word, the detected speed, so only the direction is scored)."""
    errs = []
    for t, o, k in zip(match_tracks(det, spec), spec.objects, range(len(spec.objects))):
        if t is None:
            continue
        v = t.velocities(det.fps)  # (T, 2)
        if spec.states:
            scale = (spec.fps or det.fps) / det.fps  # truth frame per detected frame
            for i in range(len(v)):
                j = int(round(i * scale))
                if np.isfinite(v[i, 0]) and j < len(spec.states) and _smooth_truth(spec.states, k, j):
                    s = spec.states[j][k]
                    errs.append(float(np.hypot(v[i, 0] - s["vx"], v[i, 1] - s["vy"])))
        elif spec.motion in ("uniform", "occlude", "pan", "still") and o.direction:
            from tenku.worldbench.colors import DIRECTION_VECTORS

            ok = np.isfinite(v[:, 0])
            if not ok.any():
                continue
            if o.direction == "still":
                target = np.zeros((ok.sum(), 2))
            else:
                mag = speed_value(o.speed) if o.speed in SPEEDS else np.linalg.norm(v[ok], axis=1)[:, None]
                target = np.asarray(DIRECTION_VECTORS[o.direction])[None] * mag
            errs.extend(np.linalg.norm(v[ok] - target, axis=1).tolist())
    return _mean(errs)


def flight_segments(y: np.ndarray) -> list[np.ndarray]:
    """Frame indices of each free flight in a (T,) height track (NaN where the object is not whole): runs of
    consecutive finite frames, split at every local minimum (a floor bounce happens within a frame of it, so
    the minimum frame itself is dropped: it may lie on either side of the bounce). Frames at the floor or at a
    side wall touch the frame edge and are NaN already, so resting phases drop out too."""
    ok = np.isfinite(y)
    segs, cur = [], []
    for i in range(len(y)):
        if not ok[i]:
            segs.append(cur)
            cur = []
        elif 0 < i < len(y) - 1 and ok[i - 1] and ok[i + 1] and y[i] <= y[i - 1] and y[i] < y[i + 1]:
            segs.append(cur)  # a bounce: drop the lowest frame
            cur = []
        else:
            cur.append(i)
    segs.append(cur)
    return [np.array(s) for s in segs if s]


def fitted_gravity(track: Track, fps: float, world_h: float) -> float:
    """Downward acceleration of a falling object: a parabola fitted to each flight between floor bounces (on
    frames where the object is whole), the median over flights of at least 4 frames (3 if none is longer)."""
    y = track.positions()[:, 1]  # (T,)
    segs = flight_segments(y)
    long = [s for s in segs if len(s) >= 4] or [s for s in segs if len(s) >= 3]
    gs = [-2 * np.polyfit(s / fps, y[s], 2)[0] for s in long]
    return float(np.median(gs)) if gs else NAN


def gravity_error(det: ClipDetections, spec: Spec) -> float:
    """|fitted downward acceleration - the world's g| for falling objects (world units / s^2)."""
    if spec.motion != "fall" or not spec.gravity:
        return NAN
    gs = [fitted_gravity(t, det.fps, det.world_h) for t in match_tracks(det, spec) if t is not None]
    gs = [g for g in gs if np.isfinite(g)]
    return float(np.mean([abs(g - spec.gravity) for g in gs])) if gs else NAN


def bounce_accuracy(det: ClipDetections, spec: Spec) -> float:
    """For motions with walls (bounce, fall, collide): the fraction of wall contacts after which the object
    moves away from that wall. An object that leaves through a wall (track ends at the edge) fails."""
    walls = {"bounce": "lrbt", "collide": "lrbt", "fall": "lrb"}.get(spec.motion or "")
    if not walls:
        return NAN
    results = []
    for t in match_tracks(det, spec):
        if t is None:
            continue
        p = t.positions(clean_only=False)
        r = t.radius if np.isfinite(t.radius) else 0.0
        seen = np.nonzero(np.isfinite(p[:, 0]))[0]
        last = seen[-1] if len(seen) else -1
        for w in walls:
            axis, sign = {"l": (0, -1), "r": (0, 1), "b": (1, -1), "t": (1, 1)}[w]
            limit = det.world_w if axis == 0 else det.world_h
            dist = p[:, axis] - r if sign < 0 else limit - (p[:, axis] + r)  # (T,) to this wall
            contact = np.nan_to_num(dist, nan=np.inf) < WALL_MARGIN  # (T,)
            i = 0
            while i < len(p):  # each run of contact frames is one contact
                if not contact[i]:
                    i += 1
                    continue
                end = i
                while end + 1 < len(p) and contact[end + 1]:
                    end += 1
                closest = float(np.nanmin(dist[i:end + 1]))
                later = [j for j in range(end + 1, min(end + 4, len(p))) if np.isfinite(dist[j])]
                if later:
                    results.append(bool(dist[later[-1]] > closest + 0.05))
                else:  # still at the wall at the end of the clip (resting is fine) or gone through it
                    results.append(end == len(p) - 1 and end == last and closest > -WALL_MARGIN)
                i = end + 1
    return _mean(results)


def _reappears_whole(states, k: int) -> bool:
    """Ground truth: object k is hidden (mostly) at some frame and fully visible again later in the clip."""
    vis = [st[k]["visible"] for st in states]
    hidden = [i for i, v in enumerate(vis) if v < 0.5]
    return not hidden or any(v >= 0.999 for v in vis[hidden[-1]:])


def object_permanence(det: ClipDetections, spec: Spec) -> float:
    """For clips with an occluder: does each object that goes behind it come out with the same colour, shape
    and size, where its motion before implies? Mean of four checks (reappears, same shape, same size within
    20%, position within PERMANENCE_POSITION_TOLERANCE of the extrapolated path); 0 if it never reappears.
    With ground truth, an object whose clip ends before it comes out is not scored. Detections compared are
    whole ones, else ones clear of the occluder (an object gliding along the frame edge is never "whole"). An
    object with no coherent track scores 0."""
    if spec.motion != "occlude":
        return NAN
    scores = []
    found = {t.color for t in coherent_objects(det)}
    for k, o in enumerate(spec.objects):
        if spec.states and not _reappears_whole(spec.states, k):
            continue
        if o.color not in found:  # no such object at all: it never reappears
            scores.append(0.0)
            continue
        # The colour is the identity: every detection of it, largest per frame.
        per = [max((d for tr in det.tracks if tr.color == o.color for d in [tr.dets[i]] if d is not None),
                   key=lambda d: d.area, default=None) for i in range(det.frames)]
        seen = [i for i, d in enumerate(per) if d is not None]
        if not seen:
            scores.append(0.0)
            continue
        gaps = [(a, b) for a, b in zip(seen, seen[1:]) if b - a > 1]
        if gaps:
            a, b = max(gaps, key=lambda g: g[1] - g[0])
        else:  # never hidden: compare its first and last thirds
            n = len(seen)
            a, b = seen[max(0, n // 3 - 1)], seen[min(n - 1, 2 * n // 3)]
        for usable in (lambda d: not d.clipped, lambda d: not d.touches_occluder):
            before = [i for i in seen if i <= a and usable(per[i])]
            after = [i for i in seen if i >= b and usable(per[i])]
            if before and after:
                break
        if not after:
            scores.append(0.0)
            continue
        if not before:
            scores.append(NAN)
            continue
        d0, d1 = per[before[-1]], per[after[0]]
        shape_ok = d0.shape == d1.shape
        size_ok = abs(d1.area / d0.area - 1) < 0.44  # 20% in radius
        if len(before) >= 2:
            i0, i1 = before[-2], before[-1]
            vx, vy = (d0.x - per[i0].x) / (i1 - i0), (d0.y - per[i0].y) / (i1 - i0)
            n = after[0] - before[-1]  # frames from the last sighting before to the first after
            pos_ok = math.hypot(d0.x + vx * n - d1.x, d0.y + vy * n - d1.y) < PERMANENCE_POSITION_TOLERANCE
        else:
            pos_ok = NAN
        scores.append(_mean([1.0, float(shape_ok), float(size_ok), pos_ok if pos_ok is NAN else float(pos_ok)]))
    return _mean(scores)


# --- consistency and quality -----------------------------------------------------------------------------

def subject_consistency(det: ClipDetections) -> float:
    """Objects keep their shape and size: mean over tracks of (fraction of clean frames with the majority
    shape) * (1 - coefficient of variation of the per-frame radius)."""
    out = []
    for t in det.objects():
        clean = [d for d, k in zip(t.dets, t.clean) if k]
        if len(clean) < 2:
            continue
        r = t.radii()
        r = r[np.isfinite(r)]
        cv = float(r.std() / max(r.mean(), 1e-6))
        out.append(np.mean([d.shape == t.shape for d in clean]) * max(0.0, 1 - cv))
    return _mean(out)


def background_consistency(frames: np.ndarray, det: ClipDetections) -> float:
    """1 - mean per-frame distance (RGB / 255, capped at 1) between each frame's border mode and the clip's."""
    from tenku.worldbench.detect import estimate_background

    ref = np.asarray(det.background[0])
    d = [np.linalg.norm(estimate_background(f[None])[0] - ref) / 255 for f in frames]
    return float(1 - min(1.0, np.mean(d) * 4))


def flicker(frames: np.ndarray, det: ClipDetections) -> float:
    """Mean absolute frame difference (/255) over pixels that are background in both frames, away from objects
    (a textured background that moves only changes at its cell edges, which differ in label and are left out)."""
    if len(frames) < 2 or det.labels is None:
        return NAN
    f = frames.astype(np.float32)
    bgs = np.stack([np.asarray(b, np.float32) for b in det.background])  # (B, 3)
    nearest = np.linalg.norm(f[..., None, :] - bgs, axis=-1).argmin(-1)  # (T, H, W)
    bg = det.labels < 0
    still = bg[1:] & bg[:-1] & (nearest[1:] == nearest[:-1])  # (T-1, H, W)
    if not still.any():
        return NAN
    diff = np.abs(f[1:] - f[:-1]).mean(-1)  # (T-1, H, W)
    return float(diff[still].mean() / 255)


def jerk(det: ClipDetections) -> float:
    """Motion smoothness: median |third difference| of clean track positions, world units / s^3 (0 for uniform
    motion and free fall; spikes only at bounces, which the median ignores)."""
    vals = []
    for t in det.objects():
        p = t.positions()
        j = np.diff(p, 3, axis=0) * det.fps**3  # (T-3, 2)
        j = j[np.isfinite(j[:, 0])]
        vals.extend(np.linalg.norm(j, axis=1).tolist())
    return float(np.median(vals)) if vals else NAN


def dynamic_degree(frames: np.ndarray, det: ClipDetections) -> float:
    """Fraction of frame transitions where something moves: an object by more than 0.05 units, or the frame
    changes by more than 1/255 on average (a camera pan)."""
    if len(frames) < 2:
        return NAN
    moving = np.zeros(len(frames) - 1, bool)
    for t in det.objects():
        p = t.positions(clean_only=False)
        step = np.linalg.norm(np.diff(p, axis=0), axis=1)  # (T-1,)
        moving |= np.nan_to_num(step) > 0.05
    diff = np.abs(frames[1:].astype(np.float32) - frames[:-1]).mean((1, 2, 3))
    return float((moving | (diff > 1.0)).mean())


def clip_features(det: ClipDetections) -> np.ndarray:
    """A scene-state feature vector for the Frechet distance: count, mean radius, speed, |vx|, |vy|, mean x, y,
    vertical acceleration, seen fraction, colour histogram, shape histogram."""
    from tenku.worldbench.colors import OBJECT_COLORS, SHAPES

    objs = det.objects()
    radii, speeds, vxs, vys, xs, ys, accs, seen = [], [], [], [], [], [], [], []
    colors, shapes = np.zeros(len(OBJECT_COLORS)), np.zeros(len(SHAPES))
    for t in objs:
        radii.append(t.radius)
        v = t.velocities(det.fps)
        v = v[np.isfinite(v[:, 0])]
        if len(v):
            speeds.append(np.linalg.norm(v, axis=1).mean())
            vxs.append(np.abs(v[:, 0]).mean())
            vys.append(np.abs(v[:, 1]).mean())
            if len(v) > 1:
                accs.append(np.diff(v[:, 1]).mean() * det.fps)
        p = t.positions(clean_only=False)
        xs.append(np.nanmean(p[:, 0]))
        ys.append(np.nanmean(p[:, 1]))
        seen.append(t.seen.mean())
        colors[list(OBJECT_COLORS).index(t.color)] += 1
        if t.shape:
            shapes[SHAPES.index(t.shape)] += 1

    def m(v):
        return float(np.nanmean(v)) if len(v) else 0.0

    head = [len(objs), m(radii), m(speeds), m(vxs), m(vys), m(xs), m(ys), m(accs), m(seen)]
    return np.concatenate([head, colors, shapes]).astype(np.float64)


def score_clip(frames, fps: float, spec: Spec) -> tuple[dict, np.ndarray]:
    """Every metric for one clip, and its Frechet feature vector."""
    frames = np.asarray(frames)
    det = detect_frames(frames, fps)
    out = {}
    out.update(attribute_scores(det, spec))
    out.update(motion_scores(det, spec))
    out["velocity_error"] = velocity_error(det, spec)
    out["gravity_error"] = gravity_error(det, spec)
    out["bounce_accuracy"] = bounce_accuracy(det, spec)
    out["object_permanence"] = object_permanence(det, spec)
    out["subject_consistency"] = subject_consistency(det)
    out["background_consistency"] = background_consistency(frames, det)
    out["flicker"] = flicker(frames, det)
    out["jerk"] = jerk(det)
    out["dynamic_degree"] = dynamic_degree(frames, det)
    return out, clip_features(det)
