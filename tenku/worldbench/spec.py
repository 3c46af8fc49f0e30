"""What a clip should show: expected objects (colour, shape, size, direction, speed) and motion, from a Tenku World
scene (exact, with per-frame states) or from a caption (`prompt.parse_prompt`, no states)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ObjectSpec:
    color: str | None = None
    shape: str | None = None
    size: str | None = None
    direction: str | None = None  # still | right | ... | down-left; None: not stated
    speed: str | None = None  # slow | fast | None
    speed_value: float | None = None  # world units / s (scenes only)
    radius: float | None = None  # world units (scenes only)


@dataclass
class Spec:
    motion: str | None  # still | uniform | bounce | fall | collide | occlude | pan | None (unknown)
    objects: list[ObjectSpec] = field(default_factory=list)
    background: str | None = None
    occluder: str | None = None  # occluder colour name when the clip has a bar
    gravity: float | None = None
    fps: float | None = None
    states: list | None = None  # per-frame ground truth (docs/manifest.md), scenes only
    source: str = "prompt"  # "scene" or "prompt"

    @property
    def has_truth(self) -> bool:
        return self.states is not None


def spec_from_scene(scene: dict, fps: float | None = None) -> Spec:
    """A manifest `scene` object -> Spec with ground truth."""
    objs = [ObjectSpec(o["color"], o["shape"], o.get("size"), o.get("direction"), o.get("speed"),
                       o.get("speed_value"), o.get("radius")) for o in scene["objects"]]
    occ = scene.get("occluders") or []
    return Spec(motion=scene.get("motion"), objects=objs, background=(scene.get("background") or {}).get("name"),
                occluder=occ[0].get("color") if occ else None, gravity=scene.get("gravity"),
                fps=fps or scene.get("fps"), states=scene.get("states"), source="scene")
