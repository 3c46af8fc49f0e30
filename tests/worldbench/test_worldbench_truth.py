"""WorldBench reads pixels with its own geometry: only truth.py imports the world, and the detector's own shape
templates recognise the renderer's shapes."""

import ast
from pathlib import Path

import numpy as np
import pytest

import tenku.worldbench as wb
from tenku.world.render import render
from tenku.world.scene import WorldObject, build_scene
from tenku.worldbench.detect import detect_frames
from tenku.worldbench.shapes import area_of, coverage, radius_from_area


def is_world(module: str) -> bool:
    """"world" or "world.x", not "worldbench"."""
    return module == "world" or module.startswith("world.")


def world_imports(path: Path) -> list[str]:
    """Modules under tenku.world that a worldbench file imports (relative `..world` or absolute)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            name = ("." * node.level) + (node.module or "")
            if is_world(name.removeprefix("..").removeprefix("tenku.")) and (node.level == 2 or name.startswith("tenku.")):
                found.append(name)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("tenku.") and is_world(a.name[6:])]
    return found


def test_only_the_truth_module_imports_the_world():
    files = sorted(Path(wb.__file__).parent.glob("*.py"))
    offenders = {f.name: world_imports(f) for f in files if f.name != "truth.py" and world_imports(f)}
    assert not offenders
    assert world_imports(Path(wb.__file__).parent / "truth.py")  # the ground truth does come from the world


@pytest.mark.parametrize("shape", ["ball", "square", "triangle"])
def test_templates_cover_their_area(shape):
    r = 6.3  # pixels
    xs = np.arange(-12, 12) + 0.5
    cover = coverage(shape, xs[None, :], xs[:, None], r)
    assert abs(cover.sum() - area_of(shape, r)) < 0.01 * area_of(shape, r)
    assert abs(radius_from_area(shape, area_of(shape, r)) - r) < 1e-9


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.4])
def test_own_templates_name_rendered_shapes(radius):
    objs = [WorldObject(s, c, radius, x=x, y=5.0) for s, c, x in
            (("ball", "red", 2.0), ("square", "green", 5.0), ("triangle", "yellow", 8.0))]
    det = detect_frames(render(build_scene("still", objs, frames=3)), 8.0)
    assert sorted((t.color, t.shape) for t in det.objects()) == [("green", "square"), ("red", "ball"),
                                                                 ("yellow", "triangle")]


def test_one_direction_rule_and_one_world_geometry():
    import tenku.world.scene as scene
    import tenku.worldbench.detect as detect
    import tenku.worldbench.metrics as metrics
    from tenku import vocab

    assert scene.direction_of is metrics.direction_of is vocab.direction_of  # one rule, imported by both sides
    assert scene.world_size is detect.world_size is vocab.world_size
    assert vocab.direction_of(2.0, 2.1) == "up-right" and vocab.direction_of(0.0, -1.0) == "down"
    # The thresholds differ on purpose: the world's velocities are exact, WorldBench's are measured.
    slow = build_scene("uniform", [WorldObject("ball", "red", 0.8, x=5, y=5, vx=0.3)], frames=2)
    assert slow.objects[0].direction == "right" and vocab.direction_of(0.3, 0.0) == "still"
    rest = build_scene("still", [WorldObject("ball", "red", 0.8, x=5, y=5)], frames=2)
    assert rest.objects[0].direction == "still"
    assert vocab.world_size(64, 96) == (15.0, 10.0) and vocab.world_size(96, 64) == (10.0, 15.0)
    with pytest.raises(ValueError, match="positive"):
        vocab.world_size(0, 64)
