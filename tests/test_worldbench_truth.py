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


def world_imports(path: Path) -> list[str]:
    """Modules under tenku.world that a worldbench file imports (relative `..world` or absolute)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            name = ("." * node.level) + (node.module or "")
            if name.startswith("..world") or name.startswith("tenku.world"):
                found.append(name)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("tenku.world")]
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
