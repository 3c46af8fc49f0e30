"""A contact sheet of sample outputs from a `tenku worldbench run` folder: for each of its first clips, the
ground-truth scene (top) above the model's video for the same caption (bottom), 6 frames each, 2x nearest
upscaled. Captions go to a text file beside the PNG (no font rendering needed).

    .venv/bin/python scripts/sample_sheet.py runs/wb-id docs/default_samples.png --clips 8
"""

import argparse
import json
from pathlib import Path

import numpy as np

from tenku.data.video_io import read_video, write_image
from tenku.worldbench.report import frame_strip

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("run", help="a `tenku worldbench run` output folder (world/ and generated/ inside)")
ap.add_argument("out", help="PNG path")
ap.add_argument("--clips", type=int, default=8)
ap.add_argument("--frames", type=int, default=6, help="frames shown per clip")
args = ap.parse_args()

run = Path(args.run)
lines = [json.loads(x) for x in (run / "world" / "manifest.jsonl").read_text().splitlines() if x.strip()]
rows, captions = [], []
for i, line in enumerate(lines[: args.clips]):
    strips = [frame_strip(read_video(run / folder / line["video"])[0], args.frames)  # (H+2, n (W+2), 3)
              for folder in ("world", "generated")]
    rows.append(np.concatenate(strips + [np.full((4, strips[0].shape[1], 3), 255, np.uint8)]))
    captions.append(f"{i + 1}. {line['caption']}")
width = max(r.shape[1] for r in rows)
sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
write_image(args.out, sheet.repeat(2, 0).repeat(2, 1))
Path(args.out).with_suffix(".txt").write_text(
    "Rows in pairs: ground truth (top), the model for the same caption (bottom).\n" + "\n".join(captions) + "\n")
print(args.out)
