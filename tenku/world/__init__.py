"""Tenku World: procedural 2D physics videos with captions and exact per-frame ground truth.

    scene = sample_scene("train", seed=0, height=64, width=64, frames=17, fps=8)
    frames = render(scene)                        # (17, 64, 64, 3) uint8
    text = caption(scene, np.random.default_rng(0), "train")
    make_dataset("data/world", count=1000, split="train", seed=0)   # mp4s + manifest.jsonl

Modules: palette (colours, sizes, speeds, held-out combos), scene (dataclasses, to/from manifest dict,
build_scene), physics (exact event-driven motion), sample (random scenes per split), render (anti-aliased
numpy rasteriser), captions (varied wording, held-out paraphrases), make (parallel dataset writer), cli.
"""

from tenku.world.palette import COLORS, MOTIONS, SHAPES
from tenku.world.render import render
from tenku.world.scene import Background, Occluder, Scene, WorldObject, build_scene

# sample_scene, caption and make_dataset load on first use (see __getattr__ below).

__all__ = ["COLORS", "MOTIONS", "SHAPES", "Background", "Occluder", "Scene", "WorldObject", "build_scene",
           "render", "sample_scene", "caption", "make_dataset"]


def __getattr__(name):
    # Lazy: keeps `import tenku.world` light and free of import cycles.
    if name == "sample_scene":
        from tenku.world.sample import sample_scene
        return sample_scene
    if name == "caption":
        from tenku.world.captions import caption
        return caption
    if name == "make_dataset":
        from tenku.world.make import make_dataset
        return make_dataset
    raise AttributeError(name)
