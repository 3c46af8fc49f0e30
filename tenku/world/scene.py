"""A Tenku World scene: what is in it, how it moves, and its ground-truth state at every frame.

`Scene.to_dict()` is exactly the manifest's `scene` object (docs/manifest.md) and `Scene.from_dict()` reads it
back, so a clip's pixels can be re-rendered from its manifest line. Build scenes by hand with `build_scene`
(it runs the physics), or draw them at random with `tenku.world.sample.sample_scene`.

Coordinates are view coordinates in world units: x right, y up, origin at the bottom-left of the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tenku.vocab import AT_REST, direction_of, world_size
from tenku.world import palette


@dataclass
class WorldObject:
    """One object. `x, y, vx, vy` is its state at t = 0 in the world (= view coordinates at t = 0; in a pan the
    camera adds -camera to the velocity seen in the view). `radius` is its half-extent. `direction` and
    `speed_value`, when None, are filled by `build_scene` from the velocity seen in the view."""

    shape: str
    color: str
    radius: float
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    size: str | None = None  # small | medium | large (the label; `radius` is the truth)
    speed: str | None = None  # slow | fast | None
    direction: str | None = None  # None: derived from (vx, vy)
    speed_value: float | None = None  # None: |(vx, vy)|
    rgb: tuple[int, int, int] | None = None  # None: palette.COLORS[color]
    id: int = 0

    def __post_init__(self):
        palette.check_name("shape", self.shape, palette.SHAPES)
        palette.check_name("colour", self.color, palette.COLORS)
        if self.radius <= 0:
            raise ValueError(f"radius must be positive, got {self.radius}")
        self.rgb = tuple(int(c) for c in (self.rgb or palette.COLORS[self.color]))

    @property
    def mass(self) -> float:
        """Uniform density: mass is proportional to area, radius**2 (used by collisions)."""
        return self.radius**2


@dataclass
class Occluder:
    """A static axis-aligned bar drawn in front of every object."""

    x0: float
    x1: float
    y0: float
    y1: float
    color: str = "silver"
    rgb: tuple[int, int, int] | None = None

    def __post_init__(self):
        palette.check_name("occluder colour", self.color, palette.OCCLUDERS)
        self.rgb = tuple(int(c) for c in (self.rgb or palette.OCCLUDERS[self.color]))
        if not (self.x0 < self.x1 and self.y0 < self.y1):
            raise ValueError(f"occluder needs x0 < x1 and y0 < y1, got {self}")


@dataclass
class Background:
    """A plain colour, optionally with a texture {"kind": "checker"|"stripes", "cell": units, "rgb2": [r,g,b]}
    fixed to the world (so it moves with a camera pan)."""

    name: str = "black"
    rgb: tuple[int, int, int] | None = None
    texture: dict | None = None

    def __post_init__(self):
        palette.check_name("background", self.name, palette.BACKGROUNDS)
        self.rgb = tuple(int(c) for c in (self.rgb or palette.BACKGROUNDS[self.name]))
        if self.texture is not None:
            palette.check_name("texture", self.texture.get("kind"), palette.TEXTURE_KINDS)


@dataclass
class Scene:
    """A full clip spec. `states[i][k]` is object k at frame i (time i / fps):
    {"x", "y", "vx", "vy", "radius", "visible"}."""

    motion: str
    objects: list[WorldObject]
    background: Background = field(default_factory=Background)
    occluders: list[Occluder] = field(default_factory=list)
    camera: tuple[float, float] = (0.0, 0.0)  # camera velocity (pan), world units / s
    world_w: float = 10.0
    world_h: float = 10.0
    gravity: float = palette.GRAVITY
    restitution: float = palette.RESTITUTION
    fps: float = 8.0
    height: int = 64
    width: int = 64
    states: list[list[dict]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.states)

    @property
    def pixels_per_unit(self) -> float:
        return self.height / self.world_h

    def to_dict(self) -> dict:
        """The manifest's `scene` object. Adds `restitution`, `fps`, `height`, `width` and per-object `x0`..
        (initial state) and `mass` to the documented fields so the dict alone rebuilds the scene."""
        return {
            "world_w": self.world_w, "world_h": self.world_h, "gravity": self.gravity,
            "restitution": self.restitution, "motion": self.motion,
            "fps": self.fps, "height": self.height, "width": self.width,
            "background": {"name": self.background.name, "rgb": list(self.background.rgb),
                           "texture": self.background.texture},
            "objects": [
                {"id": o.id, "shape": o.shape, "color": o.color, "rgb": list(o.rgb), "size": o.size,
                 "radius": o.radius, "direction": o.direction, "speed": o.speed, "speed_value": o.speed_value,
                 "mass": o.mass, "x0": o.x, "y0": o.y, "vx0": o.vx, "vy0": o.vy}
                for o in self.objects
            ],
            "occluders": [{"color": c.color, "rgb": list(c.rgb), "x0": c.x0, "x1": c.x1, "y0": c.y0, "y1": c.y1}
                          for c in self.occluders],
            "camera": {"vx": self.camera[0], "vy": self.camera[1]},
            "states": self.states,
        }

    @classmethod
    def from_dict(cls, d: dict, fps: float | None = None, height: int | None = None,
                  width: int | None = None) -> "Scene":
        """Read a manifest `scene` object. `fps`/`height`/`width` come from the manifest line when the dict
        lacks them (or override them: rendering at another resolution of the same aspect ratio)."""
        objects = []
        for k, o in enumerate(d["objects"]):
            s0 = d["states"][0][k] if d.get("states") else {}
            objects.append(WorldObject(
                shape=o["shape"], color=o["color"], radius=o["radius"], rgb=o.get("rgb"), size=o.get("size"),
                x=o.get("x0", s0.get("x", 0.0)), y=o.get("y0", s0.get("y", 0.0)),
                vx=o.get("vx0", s0.get("vx", 0.0)), vy=o.get("vy0", s0.get("vy", 0.0)),
                speed=o.get("speed"), direction=o.get("direction"), speed_value=o.get("speed_value"),
                id=o.get("id", k)))
        bg = d.get("background") or {}
        cam = d.get("camera") or {}
        fps, height, width = fps or d.get("fps"), height or d.get("height"), width or d.get("width")
        if fps is None or height is None or width is None:
            raise ValueError("scene dict has no fps/height/width; pass them (they are on the manifest line)")
        return cls(
            motion=d["motion"], objects=objects,
            background=Background(bg.get("name", "black"), bg.get("rgb"), bg.get("texture")),
            occluders=[Occluder(c["x0"], c["x1"], c["y0"], c["y1"], c.get("color", "silver"), c.get("rgb"))
                       for c in d.get("occluders", [])],
            camera=(cam.get("vx", 0.0), cam.get("vy", 0.0)),
            world_w=d.get("world_w", 10.0), world_h=d.get("world_h", 10.0),
            gravity=d.get("gravity", palette.GRAVITY), restitution=d.get("restitution", palette.RESTITUTION),
            fps=float(fps), height=int(height), width=int(width), states=d.get("states", []),
        )


def build_scene(motion: str, objects: list[WorldObject], *, frames: int, fps: float = 8.0, height: int = 64,
                width: int = 64, background: Background | str = "black", occluders=(), camera=(0.0, 0.0),
                gravity: float = palette.GRAVITY, restitution: float = palette.RESTITUTION) -> Scene:
    """Make a scene by hand and run its physics. Example: a red ball moving right at 2 units/s:

        build_scene("uniform", [WorldObject("ball", "red", 0.8, x=2, y=5, vx=2)], frames=17, fps=8)

    `motion` picks the physics: still/uniform/occlude/pan move objects at constant velocity through open
    edges; bounce reflects them off all four walls; fall adds gravity, floor bounces (restitution) and side
    walls; collide reflects off walls and collides balls elastically.
    """
    from tenku.world.physics import simulate

    palette.check_name("motion", motion, palette.MOTIONS)
    if frames < 1 or fps <= 0:
        raise ValueError(f"need frames >= 1 and fps > 0, got frames={frames}, fps={fps}")
    world_w, world_h = world_size(height, width)
    for k, o in enumerate(objects):
        o.id = k
        view_v = (o.vx - camera[0], o.vy - camera[1])
        if o.direction is None:
            o.direction = direction_of(*view_v, still=AT_REST)
        if o.speed_value is None:
            o.speed_value = math.hypot(*view_v)
    if isinstance(background, str):
        background = Background(background)
    scene = Scene(motion=motion, objects=list(objects), background=background, occluders=list(occluders),
                  camera=tuple(float(c) for c in camera), world_w=world_w, world_h=world_h, gravity=gravity,
                  restitution=restitution, fps=float(fps), height=int(height), width=int(width))
    scene.states = simulate(scene, frames)
    return scene
