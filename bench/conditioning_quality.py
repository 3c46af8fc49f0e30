"""Conditioning quality of a model: image-to-video, extend forward/backward, connect, loop and long videos, scored
from frames alone with tenku.worldbench.seams on Tenku World `id` clips.

    .venv/bin/python bench/conditioning_quality.py --model DIR             # 3 clips, 30 s long video
    .venv/bin/python bench/conditioning_quality.py --quick                 # random world-xs, 1 clip, 4 steps, 6 s

For each clip (a held-out `id` scene rendered at the model's size, its caption as the prompt):
  ground truth  the clip itself, seam at frame 9: what a perfect continuation scores
  image         first frame given; PSNR of the output's first frame, seam between it and the first new frame,
                and WorldBench direction accuracy of the animation against the caption
  extend fwd    frames 0-8 given, 8 new after them; seam where the new frames begin
  extend back   frames 8-16 given, 8 new before them; seam where the given frames begin
  connect       frames 0-4 and 12-16 given, 8 new between; both seams (mean)
  loop          a 17-frame clip and its transition back; the wrap-around seam (last frame -> first)
  long          generate_long for --seconds; every window seam (mean); drift per segment
  edit          the clip re-generated from the caption of the same scene with its first object recoloured, at
                each --strengths value: layout IoU with the source (layout and motion kept) and WorldBench colour
                accuracy against the recoloured scene (the new colour followed, the others kept); the two pull
                against each other, so the sweep shows where an attribute edit starts to take
Seam columns (world units, RGB 0-441, units/s): a seamless cut has pos ratio ~1 and small colour/size/velocity
jumps. "kept" is the max abs pixel difference of the given frames in the output (0 = kept exactly).
With a random model the numbers only exercise the pipeline: there are no objects to track in noise.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from tenku.worldbench.seams import (drift_per_segment, first_frame_psnr, given_frames_unchanged, layout_iou,
                                   seam_continuity)

SEAM_KEYS = ("matched", "position_jump", "position_typical", "position_ratio", "color_jump", "color_typical",
             "size_jump", "velocity_jump")


def seams(frames, indices, fps) -> dict:
    """Mean of seam_continuity over several seams of one video."""
    rows = [seam_continuity(frames, i, fps) for i in indices]
    return {k: float(np.nanmean([r[k] for r in rows])) if any(np.isfinite(r[k]) for r in rows) else math.nan
            for k in SEAM_KEYS}


def window_seams(total: int, window: int, history: int) -> list[int]:
    """Frame indices where generate_long's windows meet (the first new frame of each later window)."""
    from tenku.request import window_plan

    return [start for start, _ in window_plan(total, window, history)[1:]]


def recolour_first(scene):
    """A copy of the scene whose first object has the first palette colour that its background allows and no
    other object or bar in it uses."""
    from tenku.world import palette
    from tenku.world.scene import Scene

    d = scene.to_dict()
    taken = {o["color"] for o in d["objects"]} | palette.BACKGROUND_EXCLUDES[d["background"]["name"]]
    occ = [c["rgb"] for c in d.get("occluders", [])]
    new = next(c for c, rgb in palette.COLORS.items() if c not in taken
               and all(palette.rgb_distance(rgb, o) >= palette.MIN_OCCLUDER_DISTANCE for o in occ))
    d["objects"][0].update(color=new, rgb=list(palette.COLORS[new]))
    return Scene.from_dict(d, scene.fps, scene.height, scene.width)


def run_clip(pipe, k: int, seed: int, seconds: float, segment_s: float, gen: dict, out_dir: Path,
             strengths: list[float]):
    from tenku.long_video import generate_long
    from tenku.data.video_io import read_video
    from tenku.world import caption, render, sample_scene
    from tenku.worldbench.metrics import score_clip
    from tenku.worldbench.spec import spec_from_scene

    d = pipe.cfg.sample
    fps = float(d.fps)
    scene = sample_scene("id", seed + k, height=d.height, width=d.width, frames=17, fps=fps)
    gt = render(scene)  # (17, H, W, 3) uint8
    prompt = caption(scene, np.random.default_rng(seed + k), "id")
    args = dict(seed=seed + k, **gen)
    truth = spec_from_scene(scene.to_dict(), fps)

    def direction(frames) -> float:  # WorldBench direction accuracy against the caption's scene
        return score_clip(frames, fps, truth)[0]["direction_accuracy"]

    rows = {"ground truth": {"psnr": math.nan, "kept": math.nan, "direction": direction(gt), **seams(gt, [9], fps)}}

    out = pipe.generate(prompt, image=gt[0], frames=17, **args).frames.numpy()
    rows["image"] = {"psnr": first_frame_psnr(out, gt[0]), "kept": given_frames_unchanged(out, gt[:1]),
                     "direction": direction(out), **seams(out, [1], fps)}
    out = pipe.generate(prompt, extend=gt[:9], direction="forward", frames=8, **args).frames.numpy()
    rows["extend fwd"] = {"psnr": math.nan, "kept": given_frames_unchanged(out, gt[:9], "start"),
                          **seams(out, [9], fps)}
    out = pipe.generate(prompt, extend=gt[8:], direction="backward", frames=8, **args).frames.numpy()
    rows["extend back"] = {"psnr": math.nan, "kept": given_frames_unchanged(out, gt[8:], "end"),
                           **seams(out, [len(out) - 9], fps)}
    out = pipe.generate(prompt, connect=(gt[:5], gt[12:]), frames=8, **args).frames.numpy()
    rows["connect"] = {"psnr": math.nan, "kept": max(given_frames_unchanged(out, gt[:5], "start"),
                                                     given_frames_unchanged(out, gt[12:], "end")),
                       **seams(out, [5, len(out) - 5], fps)}
    out = pipe.generate(prompt, loop=True, frames=17, **args).frames.numpy()
    wrapped = np.concatenate([out, out[:8]])  # the loop played twice around its end
    rows["loop"] = {"psnr": math.nan, "kept": math.nan, **seams(wrapped, [len(out)], fps)}

    recoloured = recolour_first(scene)
    edit_prompt = caption(recoloured, np.random.default_rng(seed + k), "id")
    new_truth = spec_from_scene(recoloured.to_dict(), fps)
    edit = {}  # strength -> {"layout_iou", "color_accuracy"}
    for s in strengths:
        out = pipe.generate(edit_prompt, edit=gt, strength=s, **args).frames.numpy()
        edit[s] = {"layout_iou": layout_iou(gt, out, fps),
                   "color_accuracy": score_clip(out, fps, new_truth)[0]["color_accuracy"]}

    path = generate_long(pipe, prompt, seconds, out_dir / f"long_{k}.mp4", **args)
    frames, _ = read_video(path)
    idx = [i for i in window_seams(len(frames), d.frames, 5) if i < len(frames)]
    rows["long"] = {"psnr": math.nan, "kept": math.nan, **(seams(frames, idx, fps) if idx else {})}
    return rows, drift_per_segment(frames, fps, segment_s), prompt, edit


def fmt(v, spec=".2f") -> str:
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model directory (default: a randomly initialised world-xs)")
    ap.add_argument("--clips", type=int, help="number of Tenku World id clips (default 3; 1 with --quick)")
    ap.add_argument("--seed", type=int, default=0, help="first id scene and generation seed")
    ap.add_argument("--steps", type=int, help="sampler steps (default the model's; 4 with --quick)")
    ap.add_argument("--seconds", type=float, help="long-video length (default 30; 6 with --quick)")
    ap.add_argument("--segment", type=float, help="drift segment length in s (default 10; 2 with --quick)")
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.4, 0.6, 0.8, 0.9],
                    help="edit strengths to sweep (default 0.4 0.6 0.8 0.9)")
    ap.add_argument("--quick", action="store_true", help="1 clip, 4 steps, a 6 s long video")
    a = ap.parse_args()

    from tenku.pipeline import Pipeline, init_model

    tmp = tempfile.TemporaryDirectory()
    model = a.model or str(init_model(Path(tmp.name) / "world-xs", "world-xs"))
    pipe = Pipeline.from_dir(model)
    n = a.clips or (1 if a.quick else 3)
    steps = a.steps or (4 if a.quick else pipe.cfg.sample.steps)
    seconds = a.seconds or (6.0 if a.quick else 30.0)
    segment = a.segment or (2.0 if a.quick else 10.0)
    print(f"model: {a.model or 'randomly initialised world-xs'}; {n} id clip(s) from seed {a.seed}; {steps} steps; "
          f"{pipe.cfg.sample.width}x{pipe.cfg.sample.height} {pipe.cfg.sample.fps} fps; long video {seconds:g} s")

    t0 = time.perf_counter()
    all_rows, all_drift, all_edits = [], [], []
    for k in range(n):
        rows, drift, prompt, edit = run_clip(pipe, k, a.seed, seconds, segment, {"steps": steps}, Path(tmp.name),
                                             a.strengths)
        print(f"  clip {k}: {prompt!r}")
        all_rows.append(rows)
        all_edits.append(edit)
        all_drift.append(drift)

    def mean(values):
        v = [x for x in values if np.isfinite(x)]
        return float(np.mean(v)) if v else (math.inf if any(np.isinf(x) for x in values) else math.nan)

    print(f"\nseams (mean over {n} clip(s); pos/size in world units, colour RGB distance, dv units/s)")
    head = ("mode", "psnr0 dB", "kept", "matched", "pos jump", "pos typ", "pos ratio", "col jump", "col typ",
            "size jump", "dv")
    print(f"{head[0]:<13}" + "".join(f"{h:>10}" for h in head[1:]))
    for mode in all_rows[0]:
        vals = [mean([r[mode].get(key, math.nan) for r in all_rows]) for key in ("psnr", "kept") + SEAM_KEYS]
        print(f"{mode:<13}" + "".join(f"{fmt(v, '.1f' if i < 2 else '.2f'):>10}" for i, v in enumerate(vals)))

    print(f"\nlong-video drift per {segment:g} s segment vs the first (mean over clips; colour RGB 0-441, size units,"
          " flicker 0-255 on background)")
    print(f"{'segment':<12}{'objects':>9}{'present':>9}{'seen':>7}{'col drift':>11}{'size drift':>12}{'flicker':>9}")
    for s in range(min(len(d) for d in all_drift)):
        r = [d[s] for d in all_drift]
        span = f"{r[0]['start_s']:g}-{r[0]['end_s']:g} s"
        print(f"{span:<12}" + "".join(f"{fmt(mean([x[key] for x in r])):>{w}}" for key, w in (
            ("objects", 9), ("present", 9), ("seen", 7), ("color_drift", 11), ("size_drift", 12), ("flicker", 9))))
    print("\nedit to a recoloured caption (mean over clips): layout IoU with the source, colour accuracy against the"
          " recoloured scene")
    print(f"{'strength':<10}{'layout IoU':>12}{'colour acc':>12}")
    for s in a.strengths:
        print(f"{s:<10g}{fmt(mean([e[s]['layout_iou'] for e in all_edits])):>12}"
              f"{fmt(mean([e[s]['color_accuracy'] for e in all_edits])):>12}")
    print(f"image-to-video direction accuracy (mean over clips): {fmt(mean([r['image']['direction'] for r in all_rows]))}"
          f" (detector on ground truth {fmt(mean([r['ground truth']['direction'] for r in all_rows]))})")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
