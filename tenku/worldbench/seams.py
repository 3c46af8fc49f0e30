"""Conditioning quality from frames alone: given frames kept, seams between given and generated frames, and drift
over long videos. Objects come from WorldBench's detector (`detect_frames`), so positions and sizes are in world
units (the shorter side of the frame is 10 units).

    first_frame_psnr(frames, image)                 # dB; inf when the first frame is the image exactly
    given_frames_unchanged(out, given, at="start")  # max abs pixel difference over the given frames
    seam_continuity(frames, seam_index, fps)        # jumps across frames[seam-1] -> frames[seam] vs typical steps
    drift_per_segment(frames, fps, segment_s=10)    # per segment: colour/size drift, permanence, flicker
    layout_iou(a, b, fps)                           # foreground overlap of a clip and its edit (layout kept)

A seam is where two pieces meet (given -> generated, window -> window, a loop's end -> its start). A good seam
looks like any other frame step: its position/colour/size jump is about the typical frame-to-frame change and the
velocity fitted on each side agrees.
"""

from __future__ import annotations

import math

import numpy as np

from tenku.worldbench.detect import VELOCITY_FIT_TOLERANCE, ClipDetections, Detection, detect_frames

SEAM_WINDOW = 8  # frames on each side of a seam used for detection, typical steps and velocity fits
CORE_FRACTION = 0.7  # object colour = mean RGB of its pixels within this fraction of its radius (no edge blends)


def _as_frames(frames, what: str) -> np.ndarray:
    f = np.asarray(frames.numpy() if hasattr(frames, "numpy") else frames)
    if f.ndim == 3:
        f = f[None]
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"{what}: expected frames (T, H, W, 3) or an image (H, W, 3), got shape {f.shape}")
    return f


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 arrays (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def first_frame_psnr(frames, image) -> float:
    """PSNR (dB) of the video's first frame against the conditioning image."""
    f, img = _as_frames(frames, "frames"), _as_frames(image, "image")
    if f.shape[1:] != img.shape[1:]:
        raise ValueError(f"frame size {f.shape[1:3]} differs from image size {img.shape[1:3]}")
    return psnr(f[0], img[0])


def given_frames_unchanged(out, given, at: str = "start") -> int:
    """Max abs pixel difference between the given frames and where they sit in the output (0 = kept exactly)."""
    if at not in ("start", "end"):
        raise ValueError(f"at must be 'start' or 'end', got {at!r}")
    o, g = _as_frames(out, "out"), _as_frames(given, "given")
    if len(g) > len(o) or o.shape[1:] != g.shape[1:]:
        raise ValueError(f"given frames {g.shape} do not fit in the output {o.shape}")
    part = o[: len(g)] if at == "start" else o[len(o) - len(g):]
    return int(np.abs(part.astype(np.int16) - g.astype(np.int16)).max())


# ---- per-detection appearance
def _radius(d: Detection) -> float:
    """Shape-free size: the radius of a disc of the detection's area (world units)."""
    return math.sqrt(d.area / math.pi)


def _color(frame: np.ndarray, det: ClipDetections, d: Detection) -> np.ndarray:
    """Mean RGB of the object's core pixels (near its centroid, labelled with its colour)."""
    H, W = frame.shape[:2]
    upp = det.world_h / H
    cx, cy = d.x / upp, (det.world_h - d.y) / upp  # pixels
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    near = np.hypot(xx - cx, yy - cy) <= max(1.0, CORE_FRACTION * _radius(d) / upp)
    pix = frame[near]
    return pix.astype(np.float64).mean(0) if len(pix) else np.full(3, np.nan)


def _match(left: list, right: list, key) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of two lists by smallest key(a, b)."""
    pairs = sorted((key(a, b), i, j) for i, a in enumerate(left) for j, b in enumerate(right))
    used_i, used_j, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_i and j not in used_j:
            used_i.add(i), used_j.add(j), out.append((i, j))
    return out


def _side_velocity(times: np.ndarray, pos: np.ndarray, at: float, fps: float) -> np.ndarray:
    """Velocity (units/s) at frame time `at` from one side's positions: a quadratic over the most frames nearest the seam that one explains within
    VELOCITY_FIT_TOLERANCE (gravity keeps changing a falling object's velocity; a bounce further away must not
    bend the fit), down to a line through the 2 nearest; NaN with fewer than 2 positions."""
    ok = np.isfinite(pos).all(1)
    t, p = times[ok].astype(np.float64), pos[ok]
    order = np.argsort(np.abs(t - at))
    t, p = t[order], p[order]
    if len(t) < 2:
        return np.full(2, np.nan)
    for n in range(min(len(t), SEAM_WINDOW), 2, -1):
        coef = np.polyfit(t[:n] - at, p[:n], 2)  # (3, 2)
        resid = p[:n] - np.stack([np.polyval(coef[:, j], t[:n] - at) for j in range(2)], 1)
        if np.abs(resid).max() <= VELOCITY_FIT_TOLERANCE:
            return coef[1] * fps  # derivative at `at`
    return (p[1] - p[0]) / (t[1] - t[0]) * fps


def seam_continuity(frames, seam_index: int, fps: float, window: int = SEAM_WINDOW) -> dict:
    """How visible the seam between frames[seam_index - 1] and frames[seam_index] is.

    Objects on either side of the seam are matched by position (any colour, so a recoloured object still pairs
    with itself). Returns, over matched objects (means; NaN when there are none):
      position_jump   world units moved across the seam;  position_typical  median step elsewhere
      color_jump      RGB distance across the seam (0-441); color_typical
      size_jump       change in radius, world units;      size_typical
      velocity_jump   |v_after - v_before| (units/s), each fitted on its own side and evaluated at the seam
      position_ratio / color_ratio  jump / max(typical, floor): about 1 for a seamless cut
      objects_before, objects_after, matched
    """
    f = _as_frames(frames, "frames")
    if not 1 <= seam_index < len(f):
        raise ValueError(f"seam_index must be in [1, {len(f) - 1}] for {len(f)} frames, got {seam_index}")
    lo, hi = max(0, seam_index - window), min(len(f), seam_index + window)
    clip = f[lo:hi]
    det = detect_frames(clip, fps)
    s = seam_index - lo  # seam inside the clip
    tracks = det.objects(min_frames=1)

    def at(t):
        return [(tr, tr.dets[t]) for tr in tracks if tr.dets[t] is not None]

    before, after = at(s - 1), at(s)
    pairs = _match(before, after, lambda a, b: math.hypot(a[1].x - b[1].x, a[1].y - b[1].y))

    # Typical steps: consecutive detections of one track, not across the seam.
    steps = {"position": [], "color": [], "size": []}
    for tr in tracks:
        for t in range(len(clip) - 1):
            a, b = tr.dets[t], tr.dets[t + 1]
            if a is None or b is None or t == s - 1:
                continue
            steps["position"].append(math.hypot(b.x - a.x, b.y - a.y))
            steps["color"].append(float(np.linalg.norm(_color(clip[t + 1], det, b) - _color(clip[t], det, a))))
            steps["size"].append(abs(_radius(b) - _radius(a)))

    jumps = {"position": [], "color": [], "size": [], "velocity": []}
    times = np.arange(len(clip))
    for i, j in pairs:
        (ta, a), (tb, b) = before[i], after[j]
        jumps["position"].append(math.hypot(b.x - a.x, b.y - a.y))
        jumps["color"].append(float(np.linalg.norm(_color(clip[s], det, b) - _color(clip[s - 1], det, a))))
        jumps["size"].append(abs(_radius(b) - _radius(a)))
        pa, pb = ta.positions(clean_only=False)[:s], tb.positions(clean_only=False)[s:]  # each side's own track
        va = _side_velocity(times[:s], pa, s - 0.5, fps)
        vb = _side_velocity(times[s:], pb, s - 0.5, fps)
        jumps["velocity"].append(float(np.linalg.norm(vb - va)))

    def mean(v):
        v = [x for x in v if np.isfinite(x)]
        return float(np.mean(v)) if v else math.nan

    def median(v):
        v = [x for x in v if np.isfinite(x)]
        return float(np.median(v)) if v else math.nan

    out = {"objects_before": len(before), "objects_after": len(after), "matched": len(pairs)}
    floors = {"position": 0.05, "color": 2.0, "size": 0.02}  # below these a step is noise, not motion
    for k in ("position", "color", "size"):
        out[f"{k}_jump"], out[f"{k}_typical"] = mean(jumps[k]), median(steps[k])
    out["velocity_jump"] = mean(jumps["velocity"])
    for k in ("position", "color"):
        typ = out[f"{k}_typical"]
        out[f"{k}_ratio"] = out[f"{k}_jump"] / max(typ if np.isfinite(typ) else 0.0, floors[k])
    return out


# ---- long videos
def _object_looks(clip: np.ndarray, fps: float) -> tuple[list[dict], np.ndarray]:
    """Objects of one segment (colour name, median RGB, median radius, fraction of frames seen) and labels."""
    det = detect_frames(clip, fps)
    looks = []
    for tr in det.objects():
        seen = [(t, d) for t, d in enumerate(tr.dets) if d is not None]
        whole = [(t, d) for t, d in seen if not d.clipped] or seen
        rgb = np.nanmedian(np.stack([_color(clip[t], det, d) for t, d in whole]), 0)
        looks.append({"color": tr.color, "rgb": rgb, "radius": float(np.median([_radius(d) for _, d in whole])),
                      "seen": float(tr.seen.mean())})
    return looks, det.labels


def drift_per_segment(frames, fps: float, segment_s: float = 10.0) -> list[dict]:
    """Per segment of `segment_s` seconds, compared with the first segment:
      objects       objects detected in the segment
      present       fraction of the first segment's objects found again (matched by appearance); 1 = permanence
      seen          mean fraction of the segment's frames in which those matched objects are detected
      color_drift   mean RGB distance of matched objects to their first-segment colour (0-441)
      size_drift    mean |radius - first-segment radius|, world units
      flicker       mean abs frame-to-frame difference (0-255) on pixels that are background in both frames
    Objects that leave the frame (a uniform motion) legitimately lower `present`; a panning texture raises
    `flicker`."""
    f = _as_frames(frames, "frames")
    n = max(2, int(round(segment_s * fps)))
    if len(f) < 2:
        raise ValueError(f"need at least 2 frames, got {len(f)}")
    rows, first = [], None
    for k, start in enumerate(range(0, len(f), n)):
        clip = f[start:start + n]
        if len(clip) < 2:
            break
        looks, labels = _object_looks(clip, fps)
        if first is None:
            first = looks
        pairs = _match(first, looks, lambda a, b: float(np.linalg.norm(a["rgb"] - b["rgb"]))
                       + 50.0 * abs(a["radius"] - b["radius"]))  # 1 unit of radius ~ 50 RGB levels
        bg = (labels[1:] < 0) & (labels[:-1] < 0)  # (T-1, H, W)
        diff = np.abs(clip[1:].astype(np.int16) - clip[:-1].astype(np.int16)).mean(-1)  # (T-1, H, W)
        rows.append({
            "segment": k, "start_s": start / fps, "end_s": (start + len(clip)) / fps, "objects": len(looks),
            "present": len(pairs) / len(first) if first else math.nan,
            "seen": float(np.mean([looks[j]["seen"] for _, j in pairs])) if pairs else math.nan,
            "color_drift": float(np.mean([np.linalg.norm(first[i]["rgb"] - looks[j]["rgb"]) for i, j in pairs]))
            if pairs else math.nan,
            "size_drift": float(np.mean([abs(first[i]["radius"] - looks[j]["radius"]) for i, j in pairs]))
            if pairs else math.nan,
            "flicker": float(diff[bg].mean()) if bg.any() else math.nan,
        })
    return rows


def layout_iou(a, b, fps: float) -> float:
    """Mean over frames of the intersection-over-union of the foregrounds (every detected object and bar) of two
    clips of one size: how much of `a`'s layout and motion an edit `b` keeps, whatever the colours. 1 = the
    same places in every frame; NaN when neither clip shows anything."""
    fa, fb = _as_frames(a, "a"), _as_frames(b, "b")
    if fa.shape != fb.shape:
        raise ValueError(f"clips must have one shape, got {fa.shape} and {fb.shape}")
    ma = detect_frames(fa, fps).labels >= 0  # (T, H, W)
    mb = detect_frames(fb, fps).labels >= 0
    inter, union = (ma & mb).sum((1, 2)), (ma | mb).sum((1, 2))
    ok = union > 0
    return float((inter[ok] / union[ok]).mean()) if ok.any() else math.nan
