"""WorldBench: analytic (no neural network) evaluation of generated videos against Tenku World physics.

    det = detect_frames(frames, fps)                 # background, objects, occluders, tracks
    metrics, features = score_clip(frames, fps, spec_from_scene(scene_dict))   # or parse_prompt(caption)
    score_manifest("manifest.jsonl", "videos/", "out/")   # report.json, report.md, contact_sheet.png

Modules: colors (vocabulary from the neutral `tenku.vocab`), detect, shapes (the detector's own templates), objects
(which tracks are coherent objects: the gate on every prompt attribute), spec, prompt (caption parser), metrics,
chance (noise, frozen, shuffled and mirrored rows), frechet, report, truth (the one module that imports the
world: ground truth for the floor and the chance rows), seams, cli (`tenku worldbench score|run`).
"""

from tenku.worldbench.detect import detect_frames
from tenku.worldbench.metrics import score_clip
from tenku.worldbench.prompt import parse_prompt
from tenku.worldbench.spec import Spec, spec_from_scene

__all__ = ["detect_frames", "score_clip", "parse_prompt", "Spec", "spec_from_scene"]
