"""Latent cache: round trip against direct encoding, resume, settings guard, collate, CLI."""

import json

import numpy as np
import pytest
import torch

from tenku.data.buckets import BucketBatchSampler
from tenku.data.cache import LatentDataset, cache_manifest, collate_latents, shard_name
from tenku.config import preset
from tenku.data.clips import BucketConfig, VideoDataset, read_manifest
from tenku.models.vae import VideoVAE
from tenku.data.video_io import write_image, write_video

CFG = BucketConfig(sizes=[(32, 32), (32, 48)], frames=[1, 5], stride=16)


class WordEncoder:
    """Stand-in text encoder: one token per word, states from a fixed hash of the word."""

    dim = 6
    name = "words"

    def __init__(self):
        self.calls = 0

    def encode(self, prompts):
        self.calls += 1
        L = max(len(p.split()) for p in prompts)
        states, mask = torch.zeros(len(prompts), L, self.dim), torch.zeros(len(prompts), L, dtype=torch.bool)
        for b, p in enumerate(prompts):
            for t, w in enumerate(p.split()):
                g = torch.Generator().manual_seed(sum(map(ord, w)))
                states[b, t], mask[b, t] = torch.randn(self.dim, generator=g), True
        return states, mask


def frames(T, H, W, seed):
    rng = np.random.default_rng(seed)
    f = np.zeros((T, H, W, 3), np.uint8)
    colour = rng.integers(60, 255, 3)
    for t in range(T):
        f[t, 8:16, 2 * t : 2 * t + 8] = colour
    return f


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache")
    write_video(d / "a.mp4", frames(6, 32, 32, 0), fps=8)
    write_video(d / "b.mp4", frames(5, 32, 48, 1), fps=8)
    write_video(d / "c.mp4", frames(7, 32, 32, 2), fps=8)
    write_image(d / "d.png", frames(1, 32, 32, 3)[0])
    (d / "bad.mp4").write_bytes(b"\x00not a video" * 100)
    lines = [("a.mp4", "a red square moves right"), ("bad.mp4", "broken"), ("b.mp4", "a wide clip"),
             ("c.mp4", "square"), ("d.png", "a still image of a square")]
    (d / "m.jsonl").write_text("".join(json.dumps({"video": v, "caption": c}) + "\n" for v, c in lines))
    torch.manual_seed(0)
    vae = VideoVAE(preset("tiny").vae).eval()
    vae.latent_mean.fill_(0.1)
    vae.latent_std.fill_(2.0)
    return d, vae


def test_round_trip_matches_direct_encoding(setup):
    d, vae = setup
    enc = WordEncoder()
    out = cache_manifest(d / "m.jsonl", (vae, enc), d / "out", CFG, batch_size=2, shard_size=2)
    ds = LatentDataset(out)
    assert len(ds) == 4 and [it["line"] for it in ds.items] == [1, 3, 4, 5]
    assert ds.buckets == [(4, 2, 4, 4), (4, 2, 4, 6), (4, 2, 4, 4), (4, 1, 4, 4)]  # (C, T', h, w), tiny VAE / 8
    assert [p for p, _ in ds.skipped] == [str((d / "bad.mp4").resolve())]
    assert ds.settings["text_dim"] == 6 and ds.settings["latent_std"] == [2.0] * 4
    assert sorted(p.name for p in out.glob("shard-*")) == [shard_name(k) for k in range(3)]

    videos = VideoDataset(read_manifest(d / "m.jsonl"), CFG)
    with torch.no_grad():
        for i, line in enumerate([0, 2, 3, 4]):
            item = ds[i]
            expected = vae.normalize(vae.encode(videos[line]["video"][None]).mean)[0]  # (C, T', h, w)
            torch.testing.assert_close(item["latent"], expected, rtol=0, atol=1e-5)
            words = item["caption"].split()
            assert item["text"].shape == (len(words), 6)  # trimmed to the prompt's true length
            torch.testing.assert_close(item["text"], enc.encode([item["caption"]])[0][0])

    batch = collate_latents([ds[0], ds[2]])
    assert batch["latent"].shape == (2, 4, 2, 4, 4)
    assert batch["text"].shape == (2, 5, 6) and batch["text_mask"].sum(1).tolist() == [5, 1]
    assert torch.all(batch["text"][1, 1:] == 0) and batch["index"].tolist() == [0, 2]
    with pytest.raises(ValueError, match="one latent shape"):
        collate_latents([ds[0], ds[1]])

    sampler = BucketBatchSampler(ds.buckets, batch_size=2, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate_latents)
    assert [b["index"].tolist() for b in loader] in ([[0, 2]], [[2, 0]])  # the only full same-shape pair


def test_resume_skips_finished_shards(setup, tmp_path):
    d, vae = setup
    enc = WordEncoder()
    out = cache_manifest(d / "m.jsonl", (vae, enc), tmp_path / "out", CFG, batch_size=4, shard_size=2)
    calls = enc.calls
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    # A run killed after shard 0: shard 1 and the index are missing.
    (out / shard_name(1)).unlink()
    (out / "index.json").unlink()
    cache_manifest(d / "m.jsonl", (vae, enc), out, CFG, batch_size=4, shard_size=2)
    assert enc.calls == calls + 2  # only shard 1 was encoded again: b.mp4 and c.mp4, two buckets, two batches
    assert (out / shard_name(0)).stat().st_mtime_ns == stamps[shard_name(0)]
    assert (out / shard_name(2)).stat().st_mtime_ns == stamps[shard_name(2)]
    assert len(LatentDataset(out)) == 4
    # A rerun with other settings would mix two caches: refused.
    with pytest.raises(ValueError, match="shard_size"):
        cache_manifest(d / "m.jsonl", (vae, enc), out, CFG, shard_size=3)
    with pytest.raises(FileNotFoundError, match="not a finished latent cache"):
        LatentDataset(tmp_path)


def test_cli_caches_with_a_model_dir(setup, tmp_path, capsys):
    from tenku.cli import main
    from tenku.pipeline import init_model

    d, _ = setup
    init_model(tmp_path / "model", "tiny")
    rc = main(["cache", "--model", str(tmp_path / "model"), "--manifest", str(d / "m.jsonl"), "--out",
               str(tmp_path / "out"), "--buckets", "32x32", "32x48", "--frames", "1", "5", "-q"])
    text = capsys.readouterr().out
    assert rc == 0 and "4 clips cached, 1 skipped" in text and "bad.mp4" in text
    ds = LatentDataset(tmp_path / "out")
    assert ds.text_dim == 384 and ds.settings["text_encoder"] == "minilm"
    item = ds[0]
    assert item["latent"].shape == (4, 2, 4, 4) and item["text"].shape[1] == 384


def test_the_cache_holds_the_latents_raw_clip_training_encodes(setup, tmp_path):
    d, vae = setup
    out = cache_manifest(d / "m.jsonl", (vae, WordEncoder()), tmp_path / "out", CFG, batch_size=3)
    ds, videos = LatentDataset(out), VideoDataset(read_manifest(d / "m.jsonl"), CFG)
    with torch.no_grad():
        for i, line in enumerate([0, 2, 3, 4]):
            video = videos[line]["video"][None]  # (1, 3, T, H, W)
            raw = vae.encode_latents(video, chunked=False)[0]  # one clip, whole, as raw-clip training encodes it
            torch.testing.assert_close(ds[i]["latent"], raw, rtol=0, atol=1e-5)  # float rounding (batch, chunks)
            sample = vae.normalize(vae.encode(video).sample(torch.Generator().manual_seed(0)))[0]
            assert (sample - raw).abs().max() > 1e-3  # a posterior sample would not match


def test_cache_cli_bad_input_exits_2_with_a_message(setup, tmp_path, capsys):
    from tenku.cli import main

    d, _ = setup
    base = ["cache", "--model", str(tmp_path / "none"), "--manifest", str(d / "m.jsonl"), "--out", str(tmp_path / "o")]
    for bad, says in ((["--buckets", "64"], "size '64' must look like HEIGHTxWIDTH"),
                      (["--device", "gpu"], "argument --device: invalid choice: 'gpu'")):
        with pytest.raises(SystemExit) as e:
            main(base + bad)
        assert e.value.code == 2 and says in capsys.readouterr().err
    assert main(base) == 2 and "tenku: error: " in capsys.readouterr().err  # no model directory there


def test_cached_text_layers_must_match_the_model(setup, tmp_path):
    from tenku.cli import main
    from tenku.pipeline import init_model
    from tenku.train.dit_task import check_cache

    d, _ = setup
    init_model(tmp_path / "model", "tiny")
    rc = main(["cache", "--model", str(tmp_path / "model"), "--manifest", str(d / "m.jsonl"), "--out",
               str(tmp_path / "out"), "--buckets", "32x32", "--frames", "1", "5", "--text-layers", "3", "6", "-q"])
    ds = LatentDataset(tmp_path / "out")
    assert rc == 0 and ds.settings["text_layers"] == [3, 6]
    tiny, layered = preset("tiny"), preset("tiny")
    layered.text_layers = [3, 6]
    check_cache(ds.settings, layered, None)  # matches: no error
    with pytest.raises(ValueError, match="text_layers"):
        check_cache(ds.settings, tiny, None)  # a model reading the last layer would see other states
    with pytest.raises(ValueError, match="text_layers"):
        check_cache({"text_dim": 384}, layered, None)  # an older cache holds the last layer
