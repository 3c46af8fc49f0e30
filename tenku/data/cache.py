"""Latent cache: encode a clip manifest once into VAE latents + text token states, so DiT training reads tensors.

What is stored, per clip that gets a bucket:
  latent.{i}  (C, T', h, w) float32: `vae.encode_latents`, the VAE posterior *mean* normalised with the
              latent mean/std of the VAE at caching time (recorded in the index). The mean, not a sample (nor
              mean + logvar): Tenku's VAE is trained with a tiny KL weight, so its posterior std is far below
              the flow's noise.
  text.{i}    (L_i, D) float32: the text encoder's token states trimmed to the prompt's true length (padding
              happens at collate time, to the batch's longest prompt).
`i` is the clip's 0-based position in the manifest.

Layout of `out_dir`:
  cache_config.json              the settings the cache was made with (manifest hash, buckets, VAE fingerprint,
                                 text encoder, shard size); a rerun with other settings is refused
  shard-00000.safetensors ...    shard k holds manifest lines [k * shard_size, (k + 1) * shard_size); its
                                 metadata lists the items and the skipped files; written atomically, so a
                                 shard file that exists is complete and a rerun skips it (resume)
  index.json                     written last: every item (shard, key, latent shape, caption) and every skip

`LatentDataset(out_dir)` reads it; `collate_latents` pads text and stacks one bucket's latents. Use
`BucketBatchSampler(dataset.buckets, ...)` so that every batch holds one latent shape.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from tenku.data.buckets import bucket_counts
from tenku.checkpoint import (CheckpointError, load_json, load_model_config, load_model_dir, save_json, save_tensors,
                         state_sha256)
from tenku.cli_args import add_device, size
from tenku.data.clips import BucketConfig, Clip, VideoDataset, collate_videos, read_manifest
from tenku.train.distributed import pick_device
from tenku.models.text import pad_tokens, text_encoder_for

FORMAT_VERSION = 1
CONFIG_FILE = "cache_config.json"
INDEX_FILE = "index.json"


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"




def load_cache_models(model_dir: str | Path, device: str | torch.device = "cpu", text_layers: list[int] | None = None):
    """(vae, text_encoder, ModelConfig) from a model directory (config.json + vae.safetensors); `text_layers`
    replaces its config's (the DiT to be trained reads other hidden states than the VAE folder says)."""
    cfg, vae = load_model_dir(model_dir, ("vae",))
    if text_layers is not None:
        cfg.text_layers = list(text_layers)
    return vae, text_encoder_for(cfg, device), cfg  # text read the model's way, as raw-clip training reads it


def _settings(manifest: Path, vae, encoder, encoder_name: str, cfg: BucketConfig, shard_size: int) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "manifest": str(manifest.resolve()),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "shard_size": shard_size,
        "buckets": {k: (list(map(list, v)) if k == "sizes" else v) for k, v in asdict(cfg).items()},
        "vae_sha256": state_sha256(vae),  # the latents depend on exactly these numbers (latent mean/std included)
        "latent_channels": vae.cfg.latent_channels,
        "spatial_compression": vae.cfg.spatial_compression,
        "latent_mean": vae.latent_mean.tolist(),
        "latent_std": vae.latent_std.tolist(),
        "normalized": True,
        "text_encoder": encoder_name,
        "text_dim": int(encoder.dim),
        # which hidden states (ModelConfig.text_layers); written only when not the last layer's, so caches
        # made before the setting existed still match
        **({"text_layers": list(encoder.layers)} if getattr(encoder, "layers", ()) else {}),
    }


@torch.no_grad()
def _encode_shard(clips: list[Clip], first: int, vae, encoder, cfg: BucketConfig, batch_size: int,
                  device: torch.device, num_workers: int, tile: int | None, bar) -> tuple[dict, list, list]:
    """Encode one shard's clips: (tensors, items, skipped). `first` is the manifest index of clips[0]."""
    ds = VideoDataset(clips, cfg)
    by_bucket: dict[tuple, list[int]] = {}
    for i, b in enumerate(ds.buckets):
        if b is not None:
            by_bucket.setdefault(b, []).append(i)
    batches = [ix[k : k + batch_size] for ix in by_bucket.values() for k in range(0, len(ix), batch_size)]
    loader = torch.utils.data.DataLoader(ds, batch_sampler=batches, collate_fn=collate_videos, num_workers=num_workers)
    tensors, items, done = {}, [], set()
    for batch in loader:
        if batch is not None:
            video = batch["video"].to(device)  # (B, 3, T, H, W)
            latent = vae.encode_latents(video, tile=tile).float().cpu()  # (B, C, T', h, w)
            states, mask = encoder.encode(batch["caption"])  # (B, L, D), (B, L)
            for j, i in enumerate(batch["index"].tolist()):
                key = first + i
                tensors[f"latent.{key}"] = latent[j]
                tensors[f"text.{key}"] = states[j][mask[j].bool()].float().cpu()  # (L_i, D)
                c = ds.clips[i]
                items.append({"key": key, "shape": list(latent.shape[1:]), "bucket": list(ds.buckets[i]),
                              "caption": c.caption, "video": c.video, "line": c.line})
                done.add(i)
        if bar is not None:
            bar.update(0 if batch is None else len(batch["index"]) + batch["skipped"])
    skipped = list(ds.skipped)
    seen = {p for p, _ in skipped}
    for i, b in enumerate(ds.buckets):
        # Worker processes keep their own `skipped`; anything bucketed but not encoded failed to decode there.
        if b is not None and i not in done and ds.clips[i].video not in seen:
            skipped.append((ds.clips[i].video, "unreadable or truncated (see the worker's log)"))
    items.sort(key=lambda it: it["key"])
    return tensors, items, [list(s) for s in skipped]


def cache_manifest(manifest: str | Path, model, out_dir: str | Path, bucket_cfg: BucketConfig | None = None,
                   batch_size: int = 8, shard_size: int = 256, device: str | torch.device = "cpu",
                   num_workers: int = 0, tile: int | None = None, progress: bool = False,
                   text_layers: list[int] | None = None) -> Path:
    """Encode `manifest` into `out_dir` (layout: module docstring) and return `out_dir`. Resumes: finished shards
    are skipped.

    model: a model directory (its VAE, text encoder and sample size), or a tuple (vae, text_encoder) where
        text_encoder has `.encode(list[str]) -> (states (B, L, D), mask (B, L) bool)` and `.dim`.
    bucket_cfg: the buckets; default for a model directory: its sample height x width, frames 1 and its sample
        frames, stride = VAE compression x DiT patch. Required when `model` is a tuple.
    tile: VAE encode tile size in pixels for frames too large for memory (None: whole frames).
    text_layers: the text encoder's hidden states to cache (ModelConfig.text_layers; None: the model directory's).
    """
    manifest, out_dir, device = Path(manifest), Path(out_dir), torch.device(device)
    if shard_size < 1 or batch_size < 1:
        raise ValueError(f"shard_size and batch_size must be >= 1, got {shard_size} and {batch_size}")
    # 1. Models and buckets.
    if isinstance(model, (str, Path)):
        vae, encoder, mcfg = load_cache_models(model, device, text_layers)
        encoder_name = mcfg.text_encoder
        if bucket_cfg is None:
            bucket_cfg = BucketConfig.for_model(mcfg)
    else:
        vae, encoder = model
        encoder_name = str(getattr(encoder, "name", None) or getattr(encoder, "path", None) or type(encoder).__name__)
        if bucket_cfg is None:
            raise ValueError("bucket_cfg is required when the model is given as (vae, text_encoder) objects")
    comp = vae.cfg.spatial_compression
    if bucket_cfg.stride % comp:
        raise ValueError(f"bucket stride {bucket_cfg.stride} must be a multiple of the VAE's spatial compression {comp}")
    vae = vae.eval().to(device)
    clips = read_manifest(manifest)

    # 2. Settings: a rerun must match the cache it resumes.
    settings = _settings(manifest, vae, encoder, encoder_name, bucket_cfg, shard_size)
    config_path = out_dir / CONFIG_FILE
    if config_path.is_file():
        old = load_json(config_path)
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if diff:
            raise ValueError(f"{out_dir} holds a cache made with other settings (differ: {', '.join(diff)}); "
                             "use a new --out folder or delete this one")
    else:
        save_json(config_path, settings)

    # 3. Shards: each is written whole or not at all.
    n_shards = math.ceil(len(clips) / shard_size)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(clips), desc="caching", unit="clip", file=sys.stderr)
    for k in range(n_shards):
        path = out_dir / shard_name(k)
        part = clips[k * shard_size : (k + 1) * shard_size]
        if path.is_file():
            if bar is not None:
                bar.update(len(part))
            continue
        before = bar.n if bar is not None else 0
        tensors, items, skipped = _encode_shard(part, k * shard_size, vae, encoder, bucket_cfg, batch_size, device,
                                                num_workers, tile, bar)
        save_tensors(path, tensors, metadata={"items": json.dumps(items), "skipped": json.dumps(skipped)})
        if bar is not None:  # clips without a bucket never reach the loader: count them now
            bar.update(before + len(part) - bar.n)
    if bar is not None:
        bar.close()

    # 4. The index, last: its presence means the cache is complete.
    shards, skipped = [], []
    for k in range(n_shards):
        meta = _shard_metadata(out_dir / shard_name(k))
        shards.append({"file": shard_name(k), "items": meta["items"]})
        skipped += meta["skipped"]
    save_json(out_dir / INDEX_FILE, {"settings": settings, "shards": shards, "skipped": skipped,
                                     "num_items": sum(len(s["items"]) for s in shards)})
    return out_dir


def _shard_metadata(path: Path) -> dict:
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return {"items": json.loads(meta["items"]), "skipped": json.loads(meta["skipped"])}
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable cache shard ({e}); delete it and rerun `tenku cache`") from None


# ----------------------------------------------------------------------------- reading the cache

class LatentDataset(torch.utils.data.Dataset):
    """Items of a finished latent cache: {"latent": (C, T', h, w) float32, "text": (L_i, D) float32,
    "caption": str, "index": i}.

    `buckets[i]` is item i's latent shape (C, T', h, w): pass it to BucketBatchSampler so that a batch holds one
    shape. `settings` is the cache's cache_config.json (latent_mean/std, text_encoder, text_dim, buckets, ...);
    `items[i]` has the item's source video, manifest line and pixel bucket. Shards are memory-mapped lazily in
    each process (DataLoader workers open their own).
    """

    def __init__(self, cache_dir: str | Path):
        self.cache_dir = Path(cache_dir)
        index_path = self.cache_dir / INDEX_FILE
        if not index_path.is_file():
            raise FileNotFoundError(f"{self.cache_dir} is not a finished latent cache (no {INDEX_FILE}); "
                                    "run or resume `tenku cache` into it")
        index = load_json(index_path)
        if index.get("settings", {}).get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{index_path}: cache format {index.get('settings', {}).get('format_version')!r}, "
                                  f"this Tenku reads {FORMAT_VERSION}")
        self.settings: dict = index["settings"]
        self.skipped: list = index.get("skipped", [])
        self.items: list[dict] = []
        for shard in index["shards"]:
            self.items += [{**it, "file": shard["file"]} for it in shard["items"]]
        self.buckets: list[tuple[int, ...]] = [tuple(it["shape"]) for it in self.items]
        self._handles: dict[str, object] = {}

    @property
    def text_dim(self) -> int:
        return int(self.settings["text_dim"])

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self):  # open safetensors handles cannot cross into worker processes
        return {**self.__dict__, "_handles": {}}

    def _open(self, name: str):
        if name not in self._handles:
            self._handles[name] = safe_open(str(self.cache_dir / name), "pt")
        return self._handles[name]

    def __getitem__(self, i: int) -> dict:
        it = self.items[i]
        f = self._open(it["file"])
        return {
            "latent": f.get_tensor(f"latent.{it['key']}").float(),  # (C, T', h, w)
            "text": f.get_tensor(f"text.{it['key']}").float(),  # (L_i, D)
            "caption": it["caption"],
            "index": i,
        }


def collate_latents(items: list[dict]) -> dict:
    """{"latent": (B, C, T', h, w), "text": (B, L, D) zero-padded to the longest, "text_mask": (B, L) bool,
    "caption": [str], "index": (B,)}. All latents must share one shape (use BucketBatchSampler)."""
    items = [it for it in items if it is not None]
    if not items:
        raise ValueError("collate_latents got an empty batch")
    shapes = {tuple(it["latent"].shape) for it in items}
    if len(shapes) > 1:
        raise ValueError(f"a batch must hold one latent shape, got {sorted(shapes)}; use BucketBatchSampler")
    text, mask = pad_tokens([it["text"] for it in items])  # (B, L, D), (B, L)
    return {
        "latent": torch.stack([it["latent"] for it in items]),  # (B, C, T', h, w)
        "text": text,
        "text_mask": mask,
        "caption": [it["caption"] for it in items],
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),  # (B,)
    }


# ----------------------------------------------------------------------------- command line

def cmd_cache(args) -> int:
    bucket_cfg = None
    if args.buckets or args.frames or args.fps:
        bucket_cfg = BucketConfig.for_model(load_model_config(args.model), args.buckets, args.frames, args.fps)
    out = cache_manifest(args.manifest, args.model, args.out, bucket_cfg, batch_size=args.batch_size,
                         shard_size=args.shard_size, device=pick_device(args.device), num_workers=args.workers,
                         tile=args.tile, progress=not args.quiet, text_layers=args.text_layers)
    ds = LatentDataset(out)
    print(f"{out}: {len(ds)} clips cached, {len(ds.skipped)} skipped")
    for shape, n in bucket_counts(ds.buckets).items():
        print(f"  latent {'x'.join(map(str, shape))}: {n}")
    for path, reason in ds.skipped:
        print(f"  skipped {path}: {reason}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("cache", help="encode a clip manifest into VAE latents + text states for DiT training",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model directory (config.json + vae.safetensors)")
    p.add_argument("--manifest", required=True, help="clip manifest (.jsonl or .csv, see docs/manifest.md)")
    p.add_argument("--out", required=True, help="cache folder; rerunning into it resumes where it stopped")
    p.add_argument("--buckets", nargs="+", type=size, metavar="HxW", help="bucket sizes, e.g. 64x64 64x112 112x64 "
                   "(default: the model's sample size)")
    p.add_argument("--frames", nargs="+", type=int, metavar="N",
                   help="bucket frame counts, 1 + 4k (default: 1 and the model's sample frames)")
    p.add_argument("--fps", type=float, help="resample every clip to this frame rate (default: manifest fps or the file's)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per VAE encode call")
    p.add_argument("--shard-size", type=int, default=256, help="manifest lines per shard file (the unit of resume)")
    add_device(p, "the VAE and the text encoder")
    p.add_argument("--text-layers", nargs="+", type=int, metavar="I", help="text encoder hidden states to average per"
                   " token, 0 = embeddings (the DiT's model_overrides text_layers; default: the model directory's)")
    p.add_argument("--workers", type=int, default=0, help="decoding worker processes")
    p.add_argument("--tile", type=int, help="VAE encode tile size in pixels, for large frames")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_cache)
