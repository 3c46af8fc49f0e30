"""Scoring a manifest: read each clip, score it against its scene (or caption), aggregate, and write
report.json, report.md (a table with the detector floor beside every metric) and a contact sheet of the worst
clip per metric."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tqdm import tqdm

from tenku.data.clips import read_records
from tenku.data.video_io import read_video, write_image
from tenku.worldbench.chance import chance_rows, shuffled_expected
from tenku.worldbench.metrics import LOWER_IS_BETTER, score_clip
from tenku.worldbench.prompt import parse_prompt
from tenku.worldbench.spec import spec_from_scene
from tenku.worldbench.truth import render_truth

SHEET_FRAMES = 6  # frames per contact-sheet row


def spec_of(entry: dict):
    if entry.get("scene"):
        return spec_from_scene(entry["scene"], entry.get("fps"))
    return parse_prompt(entry["caption"])


def aggregate(clips: list[dict]) -> dict:
    """Mean of each metric over the clips where it applies, with the count."""
    keys = dict.fromkeys(k for c in clips for k in c.get("metrics", {}))
    out = {}
    for k in keys:
        v = [c["metrics"][k] for c in clips if k in c.get("metrics", {}) and not math.isnan(c["metrics"][k])]
        out[k] = {"mean": float(np.mean(v)) if v else float("nan"), "n": len(v)}
    return out


def score_entries(entries, videos_dir, progress: str | None = None) -> tuple[list[dict], list[np.ndarray]]:
    """Score each manifest entry's video (found at videos_dir / entry['video']). A missing or undecodable video
    is recorded with its reason and the run carries on. `progress`: a progress bar's label (None: no bar)."""
    clips, feats = [], []
    for e in tqdm(entries, desc=progress, unit="clip", disable=progress is None):
        rec = {"id": e.get("id", e["video"]), "video": e["video"], "caption": e["caption"], "line": e.get("_line")}
        try:
            frames, fps = read_video(Path(videos_dir) / e["video"])
            metrics, f = score_clip(frames, float(e.get("fps") or fps), spec_of(e))
        except (ValueError, OSError, KeyError) as err:
            rec["error"] = str(err)
            clips.append(rec)
            continue
        rec["metrics"] = metrics
        feats.append(f)
        clips.append(rec)
    return clips, feats


def read_truth(entries, real_dir) -> list[tuple]:
    """(frames, fps, Spec) of the manifest's ground-truth clips found under real_dir."""
    truth = []
    for e in entries:
        try:
            frames, fps = read_video(Path(real_dir) / e["video"])
        except (ValueError, OSError):
            continue
        truth.append((frames, float(e.get("fps") or fps), spec_of(e)))
    return truth


def score_truth(truth, progress: str | None = None) -> tuple[list[dict], list[np.ndarray]]:
    """score_entries for (frames, fps, Spec) items in memory."""
    out = [score_clip(f, fps, spec) for f, fps, spec in tqdm(truth, desc=progress, unit="clip",
                                                              disable=progress is None)]
    return [{"metrics": m} for m, _ in out], [f for _, f in out]


def detector_floor(entries, count: int = 8) -> dict:
    """The metrics on ground-truth clips rendered from the first `count` scenes (H.264 round trip included), or
    from `id` world scenes when the manifest has none: the best score the detectors allow."""
    return aggregate(score_truth(render_truth(entries, count))[0])


def chance_summary(truth, progress: str | None = None) -> dict:
    """Aggregated chance rows (chance.py) on ground-truth (frames, fps, Spec) items and their prompts."""
    return {name: aggregate(clips) for name, clips in chance_rows(truth, progress=progress).items()} if truth else {}


def frechet(feats, real_feats) -> float:
    from tenku.worldbench.frechet import frechet_distance

    if len(feats) < 2 or len(real_feats) < 2:
        return float("nan")
    return frechet_distance(np.stack(feats), np.stack(real_feats))


def table(summary: dict, floor: dict, fd: float | None = None, chance: dict | None = None) -> str:
    """Markdown table: metric, score, detector floor, each chance row, which way is better, clips."""
    chance = chance or {}
    lines = ["| metric | score | floor | " + "".join(f"{c} | " for c in chance) + "better | clips |",
             "|---|---|---|" + "---|" * len(chance) + "---|---|"]
    for k, v in summary.items():
        fl = floor.get(k, {}).get("mean", float("nan"))
        ch = "".join(f"{row.get(k, {}).get('mean', float('nan')):.4f} | " for row in chance.values())
        lines.append(f"| {k} | {v['mean']:.4f} | {fl:.4f} | {ch}{'lower' if k in LOWER_IS_BETTER else 'higher'} |"
                     f" {v['n']} |")
    if fd is not None:
        lines.append(f"| frechet_distance | {fd:.4f} | 0 | " + "- | " * len(chance) + "lower | - |")
    return "\n".join(lines)


def frame_strip(frames: np.ndarray, count: int = SHEET_FRAMES) -> np.ndarray:
    """(T, H, W, 3) -> (H+2, count (W+2), 3): `count` evenly spaced frames side by side, each in a white border."""
    pick = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return np.concatenate([np.pad(frames[i], ((1, 1), (1, 1), (0, 0)), constant_values=255) for i in pick], axis=1)


def contact_sheet(clips: list[dict], videos_dir, path) -> dict:
    """A PNG with one row per metric: SHEET_FRAMES frames of the clip that scored worst on it. Returns
    {metric: clip id} in row order."""
    scored = [c for c in clips if "metrics" in c]
    rows, names = [], {}
    for k in (scored[0]["metrics"] if scored else {}):
        cands = [c for c in scored if not math.isnan(c["metrics"][k])]
        if not cands:
            continue
        worst = (max if k in LOWER_IS_BETTER else min)(cands, key=lambda c: c["metrics"][k])
        rows.append(frame_strip(read_video(Path(videos_dir) / worst["video"])[0]))
        names[k] = worst["id"]
    if not rows:
        return names
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    write_image(path, sheet)
    return names


def score_manifest(manifest, videos_dir, out_dir, floor_count: int = 8, real_dir=None, quiet: bool = False) -> dict:
    """Score every clip of a manifest; write report.json, report.md and contact_sheet.png into out_dir.
    `real_dir`: folder with the manifest's ground-truth videos, for the floor, the chance rows and the Frechet
    distance; without it they come from `floor_count` clips rendered from the manifest's scenes. When no clip
    could be scored, report["scored"] is 0 and neither floor nor chance rows are computed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = None if quiet else "score"
    errors: list[dict] = []
    entries = read_records(manifest, errors)  # bad lines are reported, the rest scored
    clips, feats = score_entries(entries, videos_dir, progress=bar)
    failed = [c for c in clips if "error" in c]
    report = {"manifest": str(manifest), "videos": str(videos_dir), "clips": clips, "scored": len(feats),
              "manifest_errors": errors, "failed": [{"id": c["id"], "error": c["error"]} for c in failed]}
    if not feats:
        (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=float))
        return report
    # 1. The model's scores; 2. the floor (ground truth) and 3. the chance rows, on the same prompts.
    summary = aggregate(clips)
    truth = read_truth(entries, real_dir) if real_dir is not None else render_truth(entries, floor_count)
    real, real_feats = score_truth(truth, progress=None if quiet else "floor")
    floor, fd = aggregate(real), frechet(feats, real_feats) if real_dir is not None else None
    chance = chance_summary(truth, progress=None if quiet else "chance")
    expected = shuffled_expected(truth) if len(truth) > 1 else {}
    report.update(summary=summary, floor=floor, chance=chance, shuffled_expected=expected, frechet_distance=fd)
    report["contact_sheet"] = contact_sheet(clips, videos_dir, out_dir / "contact_sheet.png")
    text = [f"# WorldBench: {len(clips) - len(failed)} of {len(clips)} clips scored", "",
            table(summary, floor, fd, chance), "",
            "floor = the same metrics on ground-truth clips (H.264); the chance rows (tenku/worldbench/chance.py) are"
            " the same metrics on noise, a frozen first frame, shuffled captions and mirrored ground truth."
            " Read model scores against both."]
    if expected:
        text.append("shuffled captions, expected from the scenes alone (a perfect detector): " +
                    ", ".join(f"{k} {v:.4f}" for k, v in expected.items()))
    text += [f"- {e['error']}" for e in errors] + [f"- {c['id']}: {c['error']}" for c in failed]
    md = "\n".join(text) + "\n"
    (out_dir / "report.md").write_text(md)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=float))
    if not quiet:
        print(md)
    return report
