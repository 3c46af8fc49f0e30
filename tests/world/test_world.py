"""Tenku World: palette, hand-built scenes, exact physics, rendering, serialisation."""

import itertools
import json

import numpy as np
import pytest

from tenku.world import Background, Occluder, Scene, WorldObject, build_scene, palette, render
from tenku.world.sample import sample_scene


def test_colours_are_distinguishable():
    for a, b in itertools.combinations(palette.COLORS.values(), 2):
        assert palette.rgb_distance(a, b) >= palette.MIN_OBJECT_DISTANCE
    for bg, rgb in palette.BACKGROUNDS.items():
        for name, c in palette.COLORS.items():
            if name not in palette.BACKGROUND_EXCLUDES[bg]:
                assert palette.rgb_distance(c, rgb) >= palette.MIN_BACKGROUND_DISTANCE, (bg, name)
    assert "white" in palette.BACKGROUND_EXCLUDES["grey"]
    for name, rgb in palette.COLORS.items():
        assert palette.nearest_color(np.asarray(rgb) + 15) == name


def test_sampled_scenes_respect_colour_rules():
    for seed in range(150):
        s = sample_scene("train", seed)
        colors = [o.color for o in s.objects]
        assert len(set(colors)) == len(colors)
        assert not palette.BACKGROUND_EXCLUDES[s.background.name] & set(colors)
        for c in s.occluders:
            assert min(palette.rgb_distance(c.rgb, rgb) for rgb in [s.background.rgb] + [o.rgb for o in s.objects]) \
                >= palette.MIN_OCCLUDER_DISTANCE


def _track(scene, k=0):
    st = np.array([[f[k]["x"], f[k]["y"], f[k]["vx"], f[k]["vy"]] for f in scene.states])  # (T, 4)
    t = np.arange(len(st)) / scene.fps
    return t, st


def test_uniform_motion_has_constant_velocity():
    s = build_scene("uniform", [WorldObject("ball", "red", 0.8, x=1, y=5, vx=2.0)], frames=17, fps=8)
    t, st = _track(s)
    assert np.allclose(st[:, 2], 2.0) and np.allclose(st[:, 3], 0.0)
    assert np.allclose(st[:, 0], 1 + 2.0 * t, atol=1e-6) and np.allclose(st[:, 1], 5.0)
    assert s.objects[0].direction == "right" and s.objects[0].speed_value == pytest.approx(2.0)


def test_fall_is_a_parabola_with_gravity_g_between_bounces():
    s = build_scene("fall", [WorldObject("ball", "blue", 0.7, x=1, y=8, vx=1.5)], frames=81, fps=20)
    t, st = _track(s)
    y, vy = st[:, 1], st[:, 3]
    bounce = np.flatnonzero(np.diff(vy) > 0)[0]  # the first floor contact
    seg = slice(0, bounce + 1)
    a2, _, _ = np.polyfit(t[seg], y[seg], 2)
    assert 2 * a2 == pytest.approx(-palette.GRAVITY, rel=1e-5)
    assert np.allclose(np.diff(st[:, 0])[: bounce], 1.5 / 20, atol=1e-5)  # horizontal speed unchanged
    # after the bounce, the next arc is again a parabola with the same g and a lower peak
    after = np.flatnonzero(np.diff(vy) > 0)
    seg2 = slice(after[0] + 1, after[1] + 1)
    a2b, _, _ = np.polyfit(t[seg2], y[seg2], 2)
    assert 2 * a2b == pytest.approx(-palette.GRAVITY, rel=1e-5)
    assert y[seg2].max() < 8 and y.min() >= 0.7 - 1e-6


def test_floor_bounce_restitution():
    s = build_scene("fall", [WorldObject("square", "green", 0.5, x=5, y=5.5)], frames=4, fps=2, restitution=0.5)
    # falls 5 units: impact speed sqrt(2 g h); rebounds at half; the state at t = 1.5 s is exact
    v0 = (2 * palette.GRAVITY * 5.0) ** 0.5
    t_hit = v0 / palette.GRAVITY
    dt = 1.5 - t_hit
    vy = 0.5 * v0 - palette.GRAVITY * dt
    y = 0.5 + 0.5 * v0 * dt - 0.5 * palette.GRAVITY * dt**2
    assert s.states[3][0]["vy"] == pytest.approx(vy, abs=1e-5) and s.states[3][0]["y"] == pytest.approx(y, abs=1e-5)


def test_wall_bounces_keep_objects_inside():
    for shape in palette.SHAPES:
        o = WorldObject(shape, "cyan", 1.0, x=5, y=5, vx=7.3, vy=-5.1)
        s = build_scene("bounce", [o], frames=80, fps=10, height=48, width=80)
        el, er, eb, et = palette.shape_extents(shape, 1.0)
        xy = np.array([[f[0]["x"], f[0]["y"]] for f in s.states])
        assert xy[:, 0].min() >= el - 1e-6 and xy[:, 0].max() <= s.world_w - er + 1e-6
        assert xy[:, 1].min() >= eb - 1e-6 and xy[:, 1].max() <= s.world_h - et + 1e-6
        assert xy[:, 0].max() > s.world_w - er - 1.0  # it did reach the walls
        speeds = [np.hypot(f[0]["vx"], f[0]["vy"]) for f in s.states]
        assert np.allclose(speeds, np.hypot(7.3, 5.1))  # elastic


def test_elastic_collision_conserves_momentum_and_energy():
    a = WorldObject("ball", "red", 0.8, x=2, y=5, vx=3.0)
    b = WorldObject("ball", "blue", 1.1, x=7, y=5.6, vx=-1.0, vy=0.2)
    s = build_scene("collide", [a, b], frames=9, fps=8)
    m = np.array([a.mass, b.mass])
    v = np.array([[[o["vx"], o["vy"]] for o in f] for f in s.states])  # (T, 2, 2)
    p = (m[None, :, None] * v).sum(1)  # (T, 2)
    e = (0.5 * m[None] * (v**2).sum(-1)).sum(1)  # (T,)
    assert not np.allclose(v[0], v[-1])  # they did collide
    assert np.allclose(p, p[0], atol=1e-5) and np.allclose(e, e[0], rtol=1e-6)
    xy = np.array([[[o["x"], o["y"]] for o in f] for f in s.states])
    assert (np.linalg.norm(xy[:, 0] - xy[:, 1], axis=-1) >= 0.8 + 1.1 - 1e-5).all()  # never overlap


def test_sampled_collide_scenes_collide():
    n = 0
    for seed in range(200):
        s = sample_scene("train", seed, frames=17)
        if s.motion == "collide":
            v = np.array([[[o["vx"], o["vy"]] for o in f] for f in s.states])  # (T, 2, 2)
            assert not np.allclose(v[0], v[-1]), seed  # the planned collision happened within the clip
            n += 1
    assert n >= 10


@pytest.mark.parametrize("split", ["train", "ood"])
def test_sampled_bounces_first_move_the_way_the_caption_says(split):
    n = 0
    for seed in range(300):
        s = sample_scene(split, seed, frames=17)
        if s.motion == "bounce":
            o = s.objects[0]
            want = np.sign(palette.DIRECTION_VECTORS[o.direction])  # (2,)
            moved = np.array([s.states[3][0]["x"] - s.states[0][0]["x"], s.states[3][0]["y"] - s.states[0][0]["y"]])
            assert (np.sign(np.round(moved, 6)) == want).all(), (seed, o.direction, moved)  # no wall in 3 frames
            n += 1
    assert n >= 20


def test_occlusion_visibility_drops_to_zero_and_returns():
    o = WorldObject("square", "yellow", 0.8, x=1, y=5, vx=4)
    s = build_scene("occlude", [o], frames=17, fps=8, occluders=[Occluder(4, 6, 0, 10, "silver")])
    vis = np.array([f[0]["visible"] for f in s.states])
    assert vis[0] == 1 and vis[-1] == 1 and vis.min() == 0
    assert (np.diff(vis[: vis.argmin() + 1]) <= 0).all()
    frames = render(s)
    hidden = vis.argmin()
    assert not (np.abs(frames[hidden].astype(int) - palette.COLORS["yellow"]).sum(-1) < 30).any()
    assert (np.abs(frames[0].astype(int) - palette.COLORS["yellow"]).sum(-1) < 30).any()


def test_sampled_occlusions_hide_the_object():
    n = 0
    for seed in range(120):
        s = sample_scene("train", seed, frames=17, fps=8)
        if s.motion == "occlude" and s.objects[0].size != "large":
            vis = [f[0]["visible"] for f in s.states]
            assert min(vis) == 0 and vis[0] > 0.5 and vis[-1] > 0.5, vis
            n += 1
    assert n >= 3


def test_pan_moves_objects_opposite_to_camera():
    o = WorldObject("triangle", "red", 1.0, x=5, y=5)
    s = build_scene("pan", [o], frames=9, fps=8, camera=(2.0, 0.0),
                    background=Background("grey", texture={"kind": "checker", "cell": 2.5, "rgb2": [115] * 3}))
    assert s.objects[0].direction == "left"
    t, st = _track(s)
    assert np.allclose(st[:, 0], 5 - 2 * t) and np.allclose(st[:, 2], -2.0)
    frames = render(s)
    assert not np.array_equal(frames[0], frames[-1])


@pytest.mark.parametrize("height,width", [(64, 64), (48, 80), (80, 48), (17, 33)])
def test_render_sizes_and_pixel_positions(height, width):
    s = sample_scene("train", 3, height=height, width=width, frames=5)
    v = render(s)
    assert v.shape == (5, height, width, 3) and v.dtype == np.uint8
    assert min(s.world_w, s.world_h) == 10 and s.world_w / s.world_h == pytest.approx(width / height)
    # a hand-built ball sits at the documented pixel: column x / world_w * W, row (world_h - y) / world_h * H
    b = build_scene("still", [WorldObject("ball", "white", 2.0, x=3, y=7)], frames=1, height=height,
                    width=width, background="black")
    img = render(b)[0]
    col, row = 3 / b.world_w * width, (b.world_h - 7) / b.world_h * height
    ys, xs = np.nonzero(img[..., 0] > 127)
    assert abs(xs.mean() + 0.5 - col) < 0.6 and abs(ys.mean() + 0.5 - row) < 0.6


def test_one_frame_and_antialiasing():
    s = build_scene("uniform", [WorldObject("ball", "red", 1.3, x=5, y=5, vx=1)], frames=1, height=32, width=32)
    img = render(s)
    assert img.shape == (1, 32, 32, 3)
    red = img[0, ..., 0]
    assert ((red > 10) & (red < 215)).any()  # partially covered edge pixels
    coverage = red.astype(float).sum() / 225
    assert coverage == pytest.approx(np.pi * (1.3 * 3.2) ** 2, rel=0.02)  # area in pixels


def test_scene_round_trip_and_rerender():
    for seed in range(10):
        s = sample_scene("train", seed, height=48, width=80, frames=9)
        d = json.loads(json.dumps(s.to_dict()))
        back = Scene.from_dict(d)
        assert back.to_dict() == d
        assert np.array_equal(render(back), render(s))
        d2 = {k: v for k, v in d.items() if k not in ("fps", "height", "width")}
        assert np.array_equal(render(Scene.from_dict(d2, fps=8, height=48, width=80)), render(s))


def test_determinism_by_seed():
    a, b = sample_scene("train", 11), sample_scene("train", 11)
    assert a.to_dict() == b.to_dict() and np.array_equal(render(a), render(b))
    assert sample_scene("train", 12).to_dict() != a.to_dict()


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="shape"):
        WorldObject("hexagon", "red", 1, x=0, y=0)
    with pytest.raises(ValueError, match="colour"):
        WorldObject("ball", "magenta", 1, x=0, y=0)
    with pytest.raises(ValueError, match="motion"):
        build_scene("spin", [], frames=3)
    with pytest.raises(ValueError, match="split"):
        sample_scene("val", 0)


@pytest.mark.parametrize("mix,motions", [("uniform", {"uniform"}), ("simple", {"uniform", "bounce", "fall"})])
def test_scene_mixes_draw_one_object_of_their_motions_on_plain_backgrounds(mix, motions):
    seen = set()
    for seed in range(60):
        scene = sample_scene("train", seed, mix=mix)
        seen.add(scene.motion)
        assert len(scene.objects) == 1 and scene.background.texture is None
    assert seen == motions


def test_full_mix_is_the_default_world():
    a, b = sample_scene("id", 7), sample_scene("id", 7, mix="full")
    assert a.to_dict() == b.to_dict()
    with pytest.raises(ValueError, match="unknown mix"):
        sample_scene("id", 7, mix="easy")
