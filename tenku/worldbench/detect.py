"""Analytic object detection in a video: background, colour masks, components, per-frame detections, tracks.

From the frames alone (no scene): the background is the mode colour of the frame border over the clip (plus a
second, nearby mode for a checker/stripes texture). Every other pixel is explained as an alpha blend between a
background colour and one palette colour (`colors.py`), which gives each pixel a colour label and a coverage
`alpha`. Alpha-weighted moments of a connected component give a sub-pixel centroid and area (exact for the
world's box-filtered edges, robust to H.264's soft edges and to blur); the shape is the ball/square/triangle
template of the same area and centroid that fits the alpha mask best (WorldBench's own templates, `shapes.py`). Occluders (static bars, occluder-palette
colours) are set apart and never counted as objects. Tracks link detections by colour, then nearest centroid.

Coordinates follow docs/manifest.md: world units, x right, y up, the shorter side of the frame is 10 units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tenku.vocab import world_size
from tenku.worldbench.colors import OBJECT_COLORS, OCCLUDER_COLORS, SHAPES, size_label
from tenku.worldbench.shapes import area_of, fit_hidden, fit_shape, radius_from_area

FG_DISTANCE = 40.0  # RGB distance from every background colour above which a pixel is foreground
MAX_RESIDUAL = 70.0  # a pixel further than this from every (background, colour) blend is unexplained
ALPHA_PREFERENCE = 20.0  # RGB distance traded for full coverage when naming a pixel's colour
CORE_ALPHA = 0.5  # component cores; the alpha of a 1-pixel ring around them is added for exact moments
MIN_AREA_PX = 3.0  # smaller components are noise
# Objects stand on a background: a frame with less of it than this (the world's frames are >= 60% background;
# uniform RGB noise is ~2% within FG_DISTANCE of any one colour) has no scene, so no objects are read in it.
MIN_BACKGROUND_SHARE = 0.25
FRINGE_RATIO = 4.0  # a component touching one of another colour this many times larger is its fringe
TEXTURE_MAX_DISTANCE = 90.0  # a second border mode this close to the first is a texture shade
TEXTURE_MIN_SHARE = 0.03  # of the border pixels (bars and objects can hide most of a texture's other shade)
CLEAN_VISIBLE = 0.97  # detections with less of their area in view are clipped (edge or occluder)
STATIC_IOU = 0.9  # an occluder mask barely changes over the clip
# H.264 (yuv420p) keeps luma at full resolution but stores chroma on a 2x2 grid, which moves an edge's chroma
# by up to a pixel depending on where the edge falls on that grid: a centroid from chroma jitters with the
# object's sub-pixel position. Centroids therefore weigh blends in YCbCr with chroma down-weighted by this
# factor (squared): luma decides wherever an object differs from its background in brightness, chroma only
# where it does not (a red or blue object on grey).
CHROMA_WEIGHT = 0.1
VELOCITY_HALF_WINDOW = 4  # velocities from up to 9 frames
VELOCITY_FIT_TOLERANCE = 0.06  # world units (~0.4 px at 64x64): a larger quadratic misfit is an event
SHAPE_MIN_VOTES = 3  # frames a shape vote needs before less trustworthy frames are used
PART_SHARE = 0.8  # of a track's frames inside a bigger object that make it a piece of that object
AREA_COST = 1.0  # world units of distance per unit of |log area ratio| when linking detections to tracks
OCCLUDED_FIT_MIN_VISIBLE = 0.3  # of the fitted template in view before a partly hidden object's fit is trusted
MOMENT_RING = 2  # pixels around a component's core whose coverage is added for its moments (chroma spreads ~2)
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


@dataclass
class Detection:
    """One object in one frame. Positions and sizes in world units."""

    color: str
    x: float
    y: float
    area: float  # world units^2 (alpha-weighted)
    shape: str  # best template (unreliable when clipped by the frame edge or an occluder)
    touches_edge: bool
    touches_occluder: bool
    touches_object: bool = False  # next to another object, which may hide part of it (drawn later)
    visible: float = 1.0  # share of the fitted template in view (< 1 only for objects partly behind an occluder)
    residual: float = 0.0  # mean RGB distance of its core pixels from the blend of its colour (0: pure colour)
    whole_area: float | None = None  # partly behind an occluder: the area of the whole fitted template

    @property
    def clipped(self) -> bool:
        return self.touches_edge or self.touches_occluder or self.touches_object


@dataclass
class Track:
    """One object over the clip: per-frame detections (None where not seen)."""

    color: str
    dets: list  # list[Detection | None], one per frame

    @property
    def seen(self) -> np.ndarray:
        return np.array([d is not None for d in self.dets])

    @property
    def clean(self) -> np.ndarray:
        """Frames where the object is detected whole (centroid and area unbiased)."""
        return np.array([d is not None and not d.clipped for d in self.dets])

    def positions(self, clean_only: bool = True) -> np.ndarray:
        """(T, 2) centroids, NaN where not seen (or clipped when clean_only)."""
        ok = self.clean if clean_only else self.seen
        return np.array([[d.x, d.y] if k else [np.nan, np.nan] for d, k in zip(self.dets, ok)])

    @property
    def shape(self) -> str | None:
        """Majority template over the most trustworthy frames there are at least SHAPE_MIN_VOTES of: clean frames,
        else frames away from the frame edge and occluders (only another object may hide a part: objects
        moving side by side in lanes touch in every frame, yet neither hides the other); with fewer, the first
        of those tiers that has any frame, and every frame only for an object never seen whole."""
        tiers = ([d for d, k in zip(self.dets, self.clean) if k],
                 [d for d in self.dets if d is not None and not (d.touches_edge or d.touches_occluder)],
                 [d for d in self.dets if d is not None])
        votes = next(([d.shape for d in tier] for tier in tiers[:2] if len(tier) >= SHAPE_MIN_VOTES),
                     [d.shape for d in next((tier for tier in tiers if tier), [])])
        return max(SHAPES, key=votes.count) if votes else None

    def radii(self) -> np.ndarray:
        """(T,) half-extent from each clean frame's area under the track's shape, NaN elsewhere."""
        shape = self.shape or "ball"
        return np.array([radius_from_area(shape, d.area) if k else np.nan for d, k in zip(self.dets, self.clean)])

    @property
    def radius(self) -> float:
        r = self.radii()
        if np.isfinite(r).any():
            return float(np.nanmedian(r))
        areas = [d.area for d in self.dets if d is not None]  # never whole: a lower bound
        return radius_from_area(self.shape or "ball", max(areas)) if areas else float("nan")

    @property
    def size(self) -> str | None:
        return size_label(self.radius) if np.isfinite(self.radius) else None

    def velocities(self, fps: float) -> np.ndarray:
        """(T, 2) velocity in world units/s, NaN where it cannot be measured: at each frame the slope of a
        quadratic fitted to the widest symmetric window (up to 2 * VELOCITY_HALF_WINDOW + 1 clean frames) that a
        quadratic explains within VELOCITY_FIT_TOLERANCE. Constant acceleration fits exactly, so the window
        grows over a whole smooth flight (averaging compression noise) and shrinks at a bounce, a collision or
        jittery motion down to the 3-frame central difference."""
        p = self.positions()  # (T, 2)
        v = np.full_like(p, np.nan)
        for i in range(len(p)):
            for m in range(VELOCITY_HALF_WINDOW, 0, -1):
                if i - m < 0 or i + m >= len(p) or not np.isfinite(p[i - m:i + m + 1]).all():
                    continue
                k = np.arange(-m, m + 1, dtype=np.float64)  # frame offsets
                w = p[i - m:i + m + 1]  # (2m+1, 2)
                if m > 1:
                    coef = np.polyfit(k, w, 2)  # (3, 2)
                    resid = w - np.stack([np.polyval(coef[:, j], k) for j in range(2)], 1)
                    if np.abs(resid).max() > VELOCITY_FIT_TOLERANCE:
                        continue
                v[i] = (k[:, None] * w).sum(0) / (k * k).sum() * fps  # symmetric window: quadratic slope at 0
                break
        return v


@dataclass
class ClipDetections:
    """Everything detected in one clip."""

    fps: float
    height: int
    width: int
    world_w: float
    world_h: float
    background: list  # 1 or 2 RGB colours (2 with a texture)
    occluders: list = field(default_factory=list)  # [{"color", "x0", "x1", "y0", "y1"}] world units
    tracks: list = field(default_factory=list)
    labels: np.ndarray | None = None  # (T, H, W) int: -1 background, else index into colour names
    color_names: tuple = ()
    background_share: np.ndarray | None = None  # (T,) share of each frame that is background

    @property
    def frames(self) -> int:
        return len(self.tracks[0].dets) if self.tracks else (0 if self.labels is None else len(self.labels))

    def objects(self, min_frames: int | None = None) -> list[Track]:
        """Tracks long enough to be objects (not a few noisy frames)."""
        n = self.frames
        min_frames = min_frames if min_frames is not None else max(1, min(3, n), int(0.15 * n))
        # H.264 fringes flicker with the frame type (I/P): they are seen in scattered frames, never in two
        # frames in a row, while a real object (even one passing behind a bar) is.
        def steady(t):
            s = t.seen
            return n < 2 or bool((s[1:] & s[:-1]).any())

        kept = [t for t in self.tracks if t.seen.sum() >= min_frames and steady(t)]
        return [t for t in kept if not any(_part_of(t, u) for u in kept if u is not t)]


def _part_of(t: Track, u: Track) -> bool:
    """True when track t is a piece of the bigger object u: in at least PART_SHARE of t's frames u is seen too
    and t's centroid lies inside u's extent. H.264 splits a small object's colour (orange into orange and
    yellow) and breaks fragments off a big one's edge; whole objects never overlap in the world, and a
    generated one that another fully covers is not countable anyway."""
    t_area = np.median([d.area for d in t.dets if d is not None])
    u_area = np.median([d.area for d in u.dets if d is not None])
    if u_area < t_area or (u_area == t_area and u.seen.sum() <= t.seen.sum()):
        return False
    r = np.sqrt(u_area / np.pi)  # u's equal-area radius
    both = [(a, b) for a, b in zip(t.dets, u.dets) if a is not None and b is not None]
    inside = sum(np.hypot(a.x - b.x, a.y - b.y) < r for a, b in both)
    return inside >= PART_SHARE * t.seen.sum()


def estimate_background(frames: np.ndarray) -> list[np.ndarray]:
    """Background colour(s): the mode of the frame border over the clip, plus a second mode close to it (a
    texture's other shade). Borders are used because occluder bars can cover much of the interior."""
    f = frames.astype(np.float32)
    border = np.concatenate([f[:, 0].reshape(-1, 3), f[:, -1].reshape(-1, 3),
                             f[:, :, 0].reshape(-1, 3), f[:, :, -1].reshape(-1, 3)])  # (N, 3)

    def mode(px):
        q = (px // 8).astype(np.int64)
        keys = q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2]
        vals, counts = np.unique(keys, return_counts=True)
        key = vals[counts.argmax()]
        centre = (np.array([key // 1024, key // 32 % 32, key % 32]) + 0.5) * 8
        near = px[np.linalg.norm(px - centre, axis=1) < 20]
        return near.mean(0) if len(near) else centre

    first = mode(border)
    dist = np.linalg.norm(border - first, axis=1)
    rest = border[(dist > 20) & (dist < TEXTURE_MAX_DISTANCE)]
    if len(rest) >= TEXTURE_MIN_SHARE * len(border):
        second = mode(rest)
        if (np.linalg.norm(border - second, axis=1) < 12).sum() >= TEXTURE_MIN_SHARE * len(border):
            return [first, second]
    return [first]


def unmix(frames: np.ndarray, backgrounds, colors: np.ndarray):
    """Explain every pixel as alpha * colour + (1 - alpha) * background.

    Returns label (T, H, W) int (-1: background or unexplained), alpha (T, H, W, K) per colour against the
    pixel's best background, residual (T, H, W): the RGB distance from the pixel to its labelled blend (how
    purely it is that colour), and moment_alpha (T, H, W, K): the same blend measured with luma weighted over
    chroma (CHROMA_WEIGHT) and not clipped (zero-mean noise cancels in sums), for moments.
    """
    p = frames.astype(np.float32)  # (T, H, W, 3)
    bgs = np.stack([np.asarray(b, np.float32) for b in backgrounds])  # (B, 3)
    d = p[..., None, :] - bgs  # (T, H, W, B, 3)
    bg_dist = np.linalg.norm(d, axis=-1)  # (T, H, W, B)
    fg = bg_dist.min(-1) > FG_DISTANCE  # (T, H, W)
    cb = colors[None, :, :] - bgs[:, None, :]  # (B, K, 3)
    a = np.einsum("thwbc,bkc->thwbk", d, cb) / (cb * cb).sum(-1)  # (T, H, W, B, K)
    a = np.clip(a, 0.0, 1.0)
    resid = np.linalg.norm(d[..., None, :] - a[..., None] * cb, axis=-1)  # (T, H, W, B, K)
    best_b = resid.argmin(3)  # (T, H, W, K): the background that explains each colour best
    resid_k = np.take_along_axis(resid, best_b[..., None, :], 3)[..., 0, :]  # (T, H, W, K)
    alpha = np.take_along_axis(a, best_b[..., None, :], 3)[..., 0, :]  # (T, H, W, K)
    # Greys are ambiguous (a white edge on black is silver at higher alpha): among blends that explain a pixel
    # about equally well, prefer the one with more coverage.
    label = (resid_k + ALPHA_PREFERENCE * (1 - alpha)).argmin(-1)  # (T, H, W)
    residual = np.take_along_axis(resid_k, label[..., None], -1)[..., 0]  # (T, H, W)
    ok = fg & (residual < MAX_RESIDUAL)
    w = _YCBCR * np.array([1.0, CHROMA_WEIGHT, CHROMA_WEIGHT], np.float32)[:, None]  # (3, 3)
    dw = np.einsum("thwbc,ec->thwbe", d, w)  # (T, H, W, B, 3)
    cbw = np.einsum("bkc,ec->bke", cb, w)  # (B, K, 3)
    am = np.einsum("thwbe,bke->thwbk", dw, cbw) / (cbw * cbw).sum(-1)  # (T, H, W, B, K)
    moment_alpha = np.take_along_axis(am, best_b[..., None, :], 3)[..., 0, :]  # (T, H, W, K)
    return np.where(ok, label, -1), alpha, residual, moment_alpha


def connected_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a 2D bool mask by min-label propagation (no scipy). Returns (labels with 0 for
    background and 1..n, n)."""
    h, w = mask.shape
    big = h * w + 1
    lab = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), big)
    while True:
        pad = np.pad(lab, 1, constant_values=big)
        nb = np.min([pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
        new = np.where(mask, np.minimum(lab, nb), big)
        if (new == lab).all():
            break
        lab = new
    uniq, inv = np.unique(np.where(mask, lab, 0), return_inverse=True)
    inv = inv.reshape(h, w)
    return (inv if uniq[0] == 0 else inv + 1), len(uniq) - (1 if uniq[0] == 0 else 0)


def _dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    h, w = mask.shape
    pad = np.pad(mask, r)
    return np.any([pad[r + dy:r + dy + h, r + dx:r + dx + w] for dy in range(-r, r + 1) for dx in range(-r, r + 1)], 0)


def _erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour erosion (pixels outside the frame count as set)."""
    pad = np.pad(mask, 1, constant_values=True)
    return mask & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]


def static_occluders(label: np.ndarray, names, height: int, width: int, upp: float):
    """Occluders: connected regions whose pixels keep one colour label in (nearly) every frame and that either
    have an occluder-palette colour or span the frame from edge to edge (a bar), which no object does.
    Returns ((H, W) bool mask, [{"color", "x0", "x1", "y0", "y1"}] in world units)."""
    T = len(label)
    mask = np.zeros((height, width), bool)
    found = []
    for k, name in enumerate(names):
        steady = (label == k).mean(0) >= STATIC_IOU  # (H, W): this colour here in >= 90% of frames
        if T < 2 or not steady.any():
            continue
        comps, n = connected_components(steady)
        for c in range(1, n + 1):
            m = comps == c
            rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
            spans = (rows[0] == 0 and rows[-1] == height - 1) or (cols[0] == 0 and cols[-1] == width - 1)
            if m.sum() >= 4 * MIN_AREA_PX and (name in OCCLUDER_COLORS or spans):
                mask |= m
                found.append({"color": name, "x0": cols[0] * upp, "x1": (cols[-1] + 1) * upp,
                              "y0": (height - rows[-1] - 1) * upp, "y1": (height - rows[0]) * upp})
    return mask, found


def detect_frames(frames, fps: float) -> ClipDetections:
    """Detect and track every object in (T, H, W, 3) uint8 frames."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    T, H, W, _ = frames.shape
    world_w, world_h = world_size(H, W)
    upp = world_h / H  # world units per pixel
    names = tuple(OBJECT_COLORS) + tuple(OCCLUDER_COLORS)
    colors = np.array([OBJECT_COLORS.get(n, OCCLUDER_COLORS.get(n)) for n in names], np.float32)  # (K, 3)
    backgrounds = estimate_background(frames)
    label, alpha, resid, malpha = unmix(frames, backgrounds, colors)

    # 1. Occluders: static bars, kept apart; objects touching them are clipped.
    occ_static, occluders = static_occluders(label, names, H, W, upp)

    # 2. Per frame with a scene (enough background to stand on): components of each object colour ->
    # detections; fringes dropped, contacts marked. A frame of noise has no background, hence no objects.
    share = background_share(frames, backgrounds)  # (T,)
    per_frame = [_keep_whole(_frame_detections(label[t], alpha[t], resid[t], malpha[t], occ_static, names, upp))
                 if share[t] >= MIN_BACKGROUND_SHARE else [] for t in range(T)]
    return ClipDetections(fps=float(fps), height=H, width=W, world_w=world_w, world_h=world_h,
                          background=[[float(c) for c in b] for b in backgrounds], occluders=occluders,
                          tracks=link_tracks(per_frame, fps), labels=label, color_names=names,
                          background_share=share)


def background_share(frames: np.ndarray, backgrounds) -> np.ndarray:
    """(T,) share of each frame's pixels within FG_DISTANCE of a background colour."""
    bgs = np.stack([np.asarray(b, np.float32) for b in backgrounds])  # (B, 3)
    dist = np.linalg.norm(frames.astype(np.float32)[..., None, :] - bgs, axis=-1).min(-1)  # (T, H, W)
    return (dist <= FG_DISTANCE).mean((1, 2))


def _frame_detections(label, alpha, resid, malpha, occ_static, names, upp) -> list:
    """One frame's [(region mask, Detection, core mask)]: label (H, W), alpha and malpha (H, W, K), resid (H, W)."""
    H, W = label.shape
    is_obj = (label >= 0) & (label < len(OBJECT_COLORS))  # occluder-colour pixels that move are only blends
    cores = is_obj & (np.take_along_axis(alpha, np.maximum(label, 0)[..., None], -1)[..., 0] >= CORE_ALPHA)
    occ_near = _dilate(occ_static, 1)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64) + 0.5  # pixel centres
    world_h = H * upp
    dets = []
    for k, name in enumerate(names):
        # Occluder colours never make objects: moving ones are blends at object or occluder edges.
        if name in OCCLUDER_COLORS or not (label == k).any():
            continue
        others = occ_static | (cores & (label != k))  # pixels that belong to something else
        comps, n = connected_components(cores & (label == k) & ~occ_static)
        for c in range(1, n + 1):
            cm = comps == c
            # The 1-pixel ring adds edge coverage, whatever colour its blends were named.
            region = _dilate(cm, 1) & ~others
            a = np.where(region, alpha[..., k], 0.0)
            area = a.sum()
            if area < MIN_AREA_PX:
                continue
            ring = _dilate(cm, MOMENT_RING) & ~others
            am = np.where(ring, np.clip(malpha[..., k], -0.5, 1.5), 0.0)
            mass = am.sum()
            luma = mass > 0.5 * area  # the luma-weighted coverage is usable (see CHROMA_WEIGHT)
            cx, cy = ((am * xx).sum() / mass, (am * yy).sum() / mass) if luma else \
                ((a * xx).sum() / area, (a * yy).sum() / area)
            rows, cols = np.nonzero(region.any(1))[0], np.nonzero(region.any(0))[0]
            # (a core within MOMENT_RING of the frame edge has its moment ring cut off)
            touches_edge = bool(rows[0] == 0 or cols[0] == 0 or rows[-1] == H - 1 or cols[-1] == W - 1
                                or cm[MOMENT_RING:H - MOMENT_RING, MOMENT_RING:W - MOMENT_RING].sum() != cm.sum())
            touches_occ = bool((ring & occ_near).any())
            visible, whole = 1.0, None
            r0, c0 = rows[0], cols[0]
            # The shape is fitted to the luma-weighted coverage too: the full-RGB alpha carries H.264's
            # 2x2-blurred chroma, which rounds a small triangle's corners into a square or a ball.
            fit_alpha = np.clip(am, 0.0, 1.0) if luma else a
            shape = fit_shape(fit_alpha[r0:rows[-1] + 1, c0:cols[-1] + 1], cx - c0, cy - r0, area)
            if touches_occ:
                # Partly behind a bar: fit the whole template to what is in view (alpha of this colour, zero
                # outside its ring, unknown on the occluder, on other objects' cores and outside the frame, so
                # an object clipped by a bar and the frame edge at once is fitted too).
                win = _dilate(cm, MOMENT_RING + 2)
                rows_w, cols_w = np.nonzero(win.any(1))[0], np.nonzero(win.any(0))[0]
                q0, q1, p0, p1 = rows_w[0], rows_w[-1] + 1, cols_w[0], cols_w[-1] + 1
                usable = (~occ_near & ~(cores & (label != k)))[q0:q1, p0:p1]
                target = np.where(ring, np.clip(malpha[..., k] if luma else alpha[..., k], 0.0, 1.0), 0.0)
                fs, fx, fy, fr, vis = fit_hidden(target[q0:q1, p0:p1], usable.astype(np.float64), cx - p0,
                                                 cy - q0, area)
                cx, cy, visible = fx + p0, fy + q0, vis  # the whole object's centre, however little shows
                whole = area_of(fs, fr)
                if vis >= OCCLUDED_FIT_MIN_VISIBLE:
                    shape = fs
            dets.append((region, Detection(name, cx * upp, world_h - cy * upp, area * upp * upp, shape,
                                           touches_edge, touches_occ, visible=visible,
                                           residual=float(resid[cm].mean()),
                                           whole_area=None if whole is None else whole * upp * upp), cm))
    return dets


def _keep_whole(dets: list) -> list[Detection]:
    """Drop fringes and mark detections that touch another colour's. A thin component (no pixel of its core is
    1 px inside it) hugging a much larger one of another colour is a compression or blur fringe; a real object,
    however small, keeps an interior pixel. Pairs are tested only where their bounding boxes meet (a noise
    frame has hundreds of components)."""
    grown = [_dilate(r, 1) for r, _, _ in dets]
    boxes = [_box(g) for g in grown]

    def touching(i, j):
        (a0, a1, b0, b1), (c0, c1, d0, d1) = boxes[i], boxes[j]
        return (dets[i][1].color != dets[j][1].color and a0 <= c1 and c0 <= a1 and b0 <= d1 and d0 <= b1
                and bool((grown[i] & dets[j][0]).any()))

    n = len(dets)
    fringe = [_erode(dets[i][2]).sum() == 0 and any(dets[j][1].area > FRINGE_RATIO * dets[i][1].area
                                                   and touching(i, j) for j in range(n)) for i in range(n)]
    kept = [i for i in range(n) if not fringe[i]]
    for i in kept:
        dets[i][1].touches_object = any(touching(i, j) for j in kept)
    return [dets[i][1] for i in kept]


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(first row, last row, first column, last column) of a non-empty mask."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return rows[0], rows[-1], cols[0], cols[-1]


def link_tracks(per_frame: list[list[Detection]], fps: float, max_jump: float = 2.5) -> list[Track]:
    """Tracks by colour; within a colour, each frame's detections go to tracks by greedy global assignment on
    cost = distance to the track's predicted position (from its last velocity, so same-colour objects may
    cross) + AREA_COST * |log area ratio| to the track's median area (so a big object is not captured by a
    track of small compression fragments that happens to sit nearer). Gaps are allowed, so an object that
    comes out from behind an occluder continues its track."""
    T = len(per_frame)
    tracks: list[Track] = []
    for color in dict.fromkeys(d.color for dets in per_frame for d in dets):
        mine: list[Track] = []
        for t, dets in enumerate(per_frame):
            cands = sorted((d for d in dets if d.color == color), key=lambda d: -d.area)
            pairs = []
            for ti, tr in enumerate(mine):
                px, py, gap = _predict(tr, t)
                area = float(np.median([d.area for d in tr.dets if d is not None]))
                for di, d in enumerate(cands):
                    dist = np.hypot(d.x - px, d.y - py)
                    if dist < max_jump + 0.5 * gap:
                        pairs.append((dist + AREA_COST * abs(np.log(d.area / area)), ti, di))
            used_t, used_d = set(), set()
            for _, ti, di in sorted(pairs):
                if ti not in used_t and di not in used_d:
                    used_t.add(ti)
                    used_d.add(di)
                    mine[ti].dets[t] = cands[di]
            for di, d in enumerate(cands):
                if di not in used_d:
                    mine.append(Track(color, [None] * T))
                    mine[-1].dets[t] = d
        tracks.extend(mine)
    return tracks


def _predict(track: Track, t: int) -> tuple[float, float, int]:
    """Where a track should be at frame t: last position plus its last step times the gap, from frames whose
    position is trusted (a sliver still showing beside an occluder has a poor fitted centre) if there are any."""
    idx = [i for i in range(t) if track.dets[i] is not None]
    idx = [i for i in idx if track.dets[i].visible >= OCCLUDED_FIT_MIN_VISIBLE] or idx
    last = track.dets[idx[-1]]
    gap = t - idx[-1]
    if len(idx) >= 2 and idx[-1] - idx[-2] == 1:
        prev = track.dets[idx[-2]]
        return last.x + (last.x - prev.x) * gap, last.y + (last.y - prev.y) * gap, gap
    return last.x, last.y, gap
