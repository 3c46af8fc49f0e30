"""Motion probe: can a small DiT learn to move one object the way the caption says, in CPU minutes?

The simplest world there is: one ball on black, raw pixels (no VAE), a handful of colours and directions,
fixed captions encoded by the real text encoder (MiniLM). The DiT is Tenku's own (`tenku.models.dit.DiT`) trained
with Tenku's own objective (`tenku.flow.training_loss`), so a lever that wins here is a lever for the real
recipe, tried in minutes instead of hours. Several designs train side by side on the same data and are
evaluated at the same steps; each row of the table is one evaluation.

    nice .venv/bin/python bench/motion_probe.py --designs t2v i2v --steps 1000 --eval-every 250

Designs (--designs, any of):
    t2v        text-to-video: every frame generated
    i2v        image-to-video: frame 0 given clean in training and in evaluation (ground-truth frame 0)
    mix        trained half t2v, half i2v; evaluated as t2v
    two-stage  trained like mix; evaluated by sampling frame 0 as an image, then animating it (Emu Video)
    forcing    t2v with an independent noise level per frame (diffusion forcing); evaluated as t2v
    stagger    trained like forcing; sampled with a staggered schedule (frame k trails frame 0 by
               `--lag` x k / (T - 1) in t, so early frames are decided first: a rolling, image-led t2v)
`--per-frame-t` trains any design with per-frame noise levels (e.g. two-stage: the factorised recipe plus
diffusion forcing's objective), sampled as that design is.
Wording (--wording): `fixed` is one caption per colour and direction; `varied` trains on every train wording
of tenku.vocab (3 colour words x 3 direction phrases each) and also scores clips captioned only with held-out
words (rows "..., paraphrase"), as WorldBench's `paraphrase` split does; `--text-layers` picks the text
encoder's hidden states the DiT reads (ModelConfig.text_layers; bench/text_probe.py says which keep the
held-out words apart).
Starts (--start): `inside` puts the ball where its whole path stays in view (where it starts depends on
where it goes); `bounce` starts it anywhere and reflects it off the walls (any start works for any motion).

Metrics, from the sampled pixels (an object is the bright region; a clip without one fails every metric):
    colour     the object's mean colour is nearest the caption's
    direction  the displacement from the first frame to the last (bounce: to the end of the free flight)
               points the caption's way (of 4 or 8) and is at least a third of the true one; chance is 1/4
               (1/8) for a model that moves things at random
    moved      mean displacement along the caption's direction, px (truth: speed x the frames it holds for)
    found      share of clips where an object was found in every frame
Floor and chance rows come from the same code: ground truth, ground truth with captions shuffled, and
uniform noise.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenku import flow  # noqa: E402
from tenku.config import DiTConfig, FlowConfig  # noqa: E402
from tenku.models.dit import DiT, count_params  # noqa: E402
from tenku.flow.sampler import Conditioning, GuidedVelocity, sample  # noqa: E402
from tenku.vocab import COLOR_WORDS, DIRECTION_WORDS  # noqa: E402

COLORS = {"red": (1.0, 0.15, 0.15), "green": (0.15, 0.9, 0.2), "blue": (0.2, 0.35, 1.0), "yellow": (1.0, 0.9, 0.1)}
DIRECTIONS = {  # caption phrase -> unit (dx, dy) in image coordinates (y down)
    "to the right": (1, 0), "to the left": (-1, 0), "up": (0, -1), "down": (0, 1),
    "up and to the right": (1, -1), "up and to the left": (-1, -1),
    "down and to the right": (1, 1), "down and to the left": (-1, 1),
}
VOCAB_DIRECTION = {d: d.replace("to the ", "").replace(" and ", "-") for d in DIRECTIONS}  # -> tenku.vocab key
DESIGNS = ("t2v", "i2v", "mix", "two-stage", "forcing", "stagger")


@dataclass
class Probe:
    size: int = 16
    frames: int = 9
    radius: float = 2.5
    speed: float = 1.0  # px per frame
    directions: int = 4
    start: str = "inside"  # or "bounce"
    free: int = 4  # bounce: frames the ball flies before any wall turns it (its captioned direction is seen)

    def span(self) -> int:
        """Frames over which the captioned direction holds: the whole clip, or the free flight of a bounce."""
        return self.frames - 1 if self.start == "inside" else min(self.free, self.frames - 1)

    def captions(self, wording: str = "fixed", held: bool = False) -> list[tuple[str, str, str]]:
        """(caption, colour, direction) for every caption a clip may have. "fixed": one wording per colour and
        direction; "varied": every train wording of tenku.vocab, or (held) every held-out one, as the world's
        `paraphrase` split words them."""
        dirs = list(DIRECTIONS)[: self.directions]
        if wording == "fixed":
            return [(f"a {c} ball moves {d}", c, d) for c in COLORS for d in dirs]
        col = int(held)
        return [(f"a {cw} ball moves {dw}", c, d) for c in COLORS for d in dirs
                for cw in COLOR_WORDS[c][col] for dw in DIRECTION_WORDS[VOCAB_DIRECTION[d]][col]]

    def path(self, direction: str, g: torch.Generator) -> torch.Tensor:
        """Ball centre per frame, (T, 2) in px (x, y)."""
        dx, dy = DIRECTIONS[direction]
        v = torch.tensor([dx, dy], dtype=torch.float32) * self.speed / math.hypot(dx, dy)
        steps = torch.arange(self.frames, dtype=torch.float32)[:, None]  # (T, 1)
        lo, hi = self.radius, self.size - self.radius
        if self.start == "inside":
            end = v * (self.frames - 1)
            low = torch.clamp(lo - torch.minimum(end, torch.zeros(2)), min=lo)
            high = torch.clamp(hi - torch.maximum(end, torch.zeros(2)), max=hi)
            p0 = low + torch.rand(2, generator=g) * (high - low)
            return p0 + steps * v
        # Bounce: start with `free` frames of room ahead, then reflect the straight path into [lo, hi].
        room = v * self.free
        low, high = lo + torch.clamp(-room, min=0), hi - torch.clamp(room, min=0)
        p = low + torch.rand(2, generator=g) * (high - low) + steps * v - lo
        span = hi - lo
        p = torch.remainder(p, 2 * span)
        return lo + torch.where(p > span, 2 * span - p, p)

    def render(self, centres: torch.Tensor, color: str) -> torch.Tensor:
        """(T, 2) centres -> (3, T, S, S) in [-1, 1]: an anti-aliased disc on black."""
        ys, xs = torch.meshgrid(torch.arange(self.size) + 0.5, torch.arange(self.size) + 0.5, indexing="ij")
        d = torch.hypot(xs[None] - centres[:, 0, None, None], ys[None] - centres[:, 1, None, None])  # (T, S, S)
        cover = torch.clamp(self.radius + 0.5 - d, 0, 1)  # (T, S, S)
        rgb = torch.tensor(COLORS[color])[:, None, None, None]  # (3, 1, 1, 1)
        return cover[None] * rgb * 2 - 1


def make_batch(probe: Probe, captions, n: int, g: torch.Generator):
    """n random clips: video (n, 3, T, S, S), caption indices (n,)."""
    idx = torch.randint(len(captions), (n,), generator=g)
    clips = []
    for i in idx.tolist():
        _, color, direction = captions[i]
        clips.append(probe.render(probe.path(direction, g), color))
    return torch.stack(clips), idx


# ----------------------------------------------------------------------------- measuring pixels

def measure(video: torch.Tensor, probe: Probe, captions, idx: torch.Tensor) -> dict:
    """Score (n, 3, T, S, S) clips in [-1, 1] against their captions."""
    x = (video.clamp(-1, 1) + 1) / 2  # (n, 3, T, S, S) in [0, 1]
    bright = x.amax(1)  # (n, T, S, S)
    mask = bright > 0.35
    w = bright * mask
    mass = w.sum((2, 3))  # (n, T)
    coords = torch.arange(probe.size, dtype=torch.float32) + 0.5
    cx = (w.sum(2) * coords).sum(-1) / mass.clamp(min=1e-6)  # (n, T)
    cy = (w.sum(3) * coords).sum(-1) / mass.clamp(min=1e-6)
    # An object is one compact region of about the ball's area in every frame: noise and smears are not.
    area = mask.sum((2, 3)).float()  # (n, T)
    ball = math.pi * probe.radius ** 2
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    near = torch.hypot(xs - cx[..., None, None], ys - cy[..., None, None]) <= 2 * probe.radius  # (n, T, S, S)
    compact = (w * near).sum((2, 3)) >= 0.9 * mass
    found = ((area >= 0.4 * ball) & (area <= 2.5 * ball) & compact).all(1)  # (n,)
    k = probe.span()
    disp = torch.stack([cx[:, k] - cx[:, 0], cy[:, k] - cy[:, 0]], 1)  # (n, 2) over the captioned flight
    mean_rgb = (x * mask[:, None]).sum((2, 3, 4)) / mask.sum((1, 2, 3)).clamp(min=1)[:, None]  # (n, 3)
    palette = torch.tensor(list(COLORS.values()))  # (K, 3)
    color_names = list(COLORS)
    dir_names = list(DIRECTIONS)[: probe.directions]
    unit = torch.tensor([DIRECTIONS[d] for d in dir_names], dtype=torch.float32)
    unit = unit / unit.norm(dim=1, keepdim=True)  # (D, 2)
    truth = probe.speed * k
    colour_ok, dir_ok, moved = [], [], []
    for k, i in enumerate(idx.tolist()):
        _, color, direction = captions[i]
        want = unit[dir_names.index(direction)]
        along = float(disp[k] @ want)
        best = dir_names[int((unit @ disp[k]).argmax())]
        ok = bool(found[k])
        colour_ok.append(ok and color_names[int((palette - mean_rgb[k]).norm(dim=1).argmin())] == color)
        dir_ok.append(ok and best == direction and along >= truth / 3)
        moved.append(along if ok else 0.0)
    mean = lambda v: sum(v) / max(len(v), 1)  # noqa: E731
    return {"found": float(found.float().mean()), "colour": mean(colour_ok), "direction": mean(dir_ok),
            "moved": mean(moved)}


# ----------------------------------------------------------------------------- training and sampling

class Space:
    """Where the DiT works: raw pixels, or (--vae) the normalised latents of a Tenku VAE, as the real recipe."""

    def __init__(self, vae_dir: str | None = None, per_frame: bool = False):
        self.vae, self.per_frame = None, per_frame  # per_frame: every frame encoded as an image (no time compression)
        if vae_dir:
            from tenku.checkpoint import load_model_dir

            self.vae = load_model_dir(vae_dir, ("vae",))[1].eval()
        self.channels = 3 if self.vae is None else self.vae.cfg.latent_channels

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(n, 3, T, S, S) pixels in [-1, 1] -> what the DiT models: (n, C, T', s, s)."""
        if self.vae is None:
            return video
        return self._apply(lambda v: self.vae.encode_latents(v, chunked=False), video)

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """(n, C, T', s, s) -> (n, 3, T, S, S) pixels."""
        if self.vae is None:
            return x
        return self._apply(lambda z: self.vae.decode(self.vae.denormalize(z), chunked=False), x)

    def _apply(self, fn, x: torch.Tensor) -> torch.Tensor:
        """fn over clips in chunks of 32, or (per_frame) over every frame as a one-frame video in chunks of 256."""
        if not self.per_frame:
            return torch.cat([fn(v) for v in x.split(32)])
        n, T = x.shape[0], x.shape[2]
        images = x.transpose(1, 2).flatten(0, 1)[:, :, None]  # (n * T, C, 1, H, W)
        y = torch.cat([fn(v) for v in images.split(256)])  # (n * T, C', 1, H', W')
        return y[:, :, 0].unflatten(0, (n, T)).transpose(1, 2).contiguous()  # (n, C', T, H', W')


def build(args, channels: int = 3) -> DiT:
    cfg = DiTConfig(in_channels=channels, out_channels=channels, patch_size=(1, args.patch, args.patch), dim=args.dim,
                    ffn_dim=4 * args.dim, num_layers=args.layers, num_heads=args.dim // 32, text_dim=384)
    return DiT(cfg)


def cond_mask(design: str, n: int, frames: int, g: torch.Generator, first_share: float = 0.5) -> torch.Tensor | None:
    """Which frames are given clean in training, (n, T) bool, or None."""
    if design == "i2v":
        first = torch.ones(n, dtype=torch.bool)
    elif design in ("mix", "two-stage"):
        first = torch.rand(n, generator=g) < first_share
    else:
        return None
    m = torch.zeros(n, frames, dtype=torch.bool)
    m[:, 0] = first
    return m


def flow_config(args, model: DiT, probe: Probe) -> FlowConfig:
    """The probe's flow settings: `--shift` is the shift of a whole clip (fewer tokens, e.g. one frame, less)."""
    x = args.latent_shape  # (T', h, w) of a clip in the model's space
    return FlowConfig(base_shift=args.shift, shift_ref_tokens=model.num_tokens(*x),
                      given_noise=args.given_noise)


@torch.no_grad()
def staggered(model: DiT, text, mask, noise: torch.Tensor, steps: int, guidance: float, lag: float,
              fcfg: FlowConfig) -> torch.Tensor:
    """Euler with a per-frame schedule: frame k sits at t_k = clamp(u + lag * k / (T - 1)) while u walks from 1 to
    -lag, so frame 0 is decided first and later frames follow it (the model was trained on such mixed levels)."""
    n, _, T, S, _ = noise.shape
    velocity = GuidedVelocity(model, text, mask, guidance)
    shift = flow.shift_for_tokens(model.num_tokens(T, S, S), fcfg)
    lead = lag * torch.arange(T, dtype=torch.float32) / max(T - 1, 1)  # (T,)
    us = torch.linspace(1.0, -lag, steps + 1).tolist()
    x = noise
    for u, u_next in zip(us[:-1], us[1:]):
        t = flow.shift_t((u + lead).clamp(0, 1), shift)  # (T,)
        t_next = flow.shift_t((u_next + lead).clamp(0, 1), shift)
        tt = t[None].expand(n, T)
        if guidance == 1.0:
            v = model(x, tt, velocity.text, velocity.text_mask)
        else:
            v_c, v_u = model(torch.cat([x, x]), torch.cat([tt, tt]), velocity.text, velocity.text_mask).chunk(2)
            v = v_u + guidance * (v_c - v_u)
        x = x + (t_next - t)[None, None, :, None, None] * v  # frames already at 0 stay put
    return x


@torch.no_grad()
def generate(model: DiT, design: str, text, mask, truth: torch.Tensor, args, seed: int, fcfg: FlowConfig) -> torch.Tensor:
    """Sample clips shaped like `truth` (n, 3, T, S, S) for `design`."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    n, C, T, S, _ = truth.shape
    shift = flow.shift_for_tokens(model.num_tokens(T, S, S), fcfg)
    noise = torch.randn(truth.shape, generator=g)  # (n, 3, T, S, S)
    if design == "stagger":
        out = staggered(model, text, mask, noise, args.sample_steps, args.guidance, args.lag, fcfg)
        model.train()
        return out
    cond = None
    if design == "i2v":
        given = torch.zeros(n, T, dtype=torch.bool)
        given[:, 0] = True
        cond = Conditioning(truth, given)
    elif design == "two-stage":
        # Stage 1: frame 0 as an image (a one-frame video) from the text alone.
        first = sample(GuidedVelocity(model, text, mask, args.guidance), noise[:, :, :1], args.sample_steps,
                       flow.shift_for_tokens(model.num_tokens(1, S, S), fcfg))
        given = torch.zeros(n, T, dtype=torch.bool)
        given[:, 0] = True
        latents = torch.zeros_like(truth)
        latents[:, :, :1] = first
        cond = Conditioning(latents, given)
    if cond is not None and fcfg.given_noise > 0:  # given frames as training saw them (FlowConfig.given_noise)
        cond = Conditioning(cond.latents, cond.mask, flow.given_t(fcfg), torch.randn(noise.shape, generator=g))
    out = sample(GuidedVelocity(model, text, mask, args.guidance, cond), noise, args.sample_steps, shift, cond=cond)
    model.train()
    return out


def train_design(design: str, probe: Probe, captions, text_all, mask_all, evalset, args, space: Space,
                 eval_x: torch.Tensor, pool=None, paraphrase=None) -> list[dict]:
    """eval_x: the evaluation clips in the model's space (encoded once), for the given frames. paraphrase:
    (captions, text, mask, evalset, eval_x) of held-out wordings, scored too at every evaluation."""
    torch.manual_seed(args.seed)
    model = build(args, space.channels)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed + 1)
    fcfg = flow_config(args, model, probe)
    forcing = design in ("forcing", "stagger")  # designs that always train with per-frame noise levels
    label = f"{design} + per-frame t" if args.per_frame_t and not forcing else design  # the rows' name
    rows, spent, losses = [], 0.0, []
    for step in range(1, args.steps + 1):
        t0 = time.perf_counter()
        if pool is None:
            video, idx = make_batch(probe, captions, args.batch, g)
        else:  # latent mode: clips encoded once (the real recipe's latent cache)
            pick = torch.randint(len(pool[1]), (args.batch,), generator=g)
            video, idx = pool[0][pick], pool[1][pick]
        cm = cond_mask(design, args.batch, video.shape[2], g, args.first_share)
        if torch.rand(1, generator=g).item() < args.image_share:  # a batch of first frames: the image stage
            video, cm = video[:, :, :1], None
        loss = flow.training_loss(model, video, text_all[idx], mask_all[idx], fcfg, cond_mask=cm,
                                  per_frame_t=args.per_frame_t or forcing, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        spent += time.perf_counter() - t0
        losses.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            # (row name, sampling mode, captions, text, mask, evaluation set, its clips in the model's space).
            tracks = [(label, design, captions, text_all, mask_all, evalset, eval_x)]
            if design in ("mix", "two-stage", "stagger"):  # image-to-video learnt: the true frame 0 animated
                tracks.append((f"{label}, animating true frame 0", "i2v", *tracks[0][2:]))
            if paraphrase is not None:
                tracks.append((f"{label}, paraphrase", design, *paraphrase))
            for name, mode, caps, text, mask, (_, idx), x in tracks:
                out = space.decode(generate(model, mode, text[idx], mask[idx], x, args, args.seed + 2, fcfg))
                row = {"design": name, "step": step, "train_min": spent / 60, "loss": sum(losses) / len(losses),
                       **measure(out, probe, caps, idx)}
                rows.append(row)
                print(fmt(row), flush=True)
            losses = []
    if args.save:  # the trained model, to look at its samples afterwards (safetensors, plain state dict)
        from safetensors.torch import save_file

        save_file(model.state_dict(), f"{args.save}-{design}.safetensors")
    return rows


def fmt(row: dict) -> str:
    return (f"| {row['design']} | {row['step']} | {row['train_min']:.1f} | {row['loss']:.4f} | {row['found']:.2f} |"
            f" {row['colour']:.2f} | {row['direction']:.2f} | {row['moved']:.1f} |")


HEADER = "| design | step | train CPU min | loss | found | colour | direction | moved px |\n|---|---|---|---|---|---|---|---|"


def reference_rows(probe: Probe, captions, evalset, space: Space, eval_x: torch.Tensor) -> list[dict]:
    """Detector floor and chance levels, measured by the same code (and the VAE's round trip: its ceiling)."""
    truth, idx = evalset
    g = torch.Generator().manual_seed(123)
    shuffled = idx[torch.randperm(len(idx), generator=g)]
    noise = torch.rand(truth.shape, generator=g) * 2 - 1
    rows = []
    refs = [("ground truth", truth, idx), ("truth, shuffled captions", truth, shuffled), ("uniform noise", noise, idx),
            ("frame 0 frozen", truth[:, :, :1].expand_as(truth), idx)]
    if space.vae is not None:
        refs.append(("VAE round trip", space.decode(eval_x), idx))
    for name, video, ids in refs:
        rows.append({"design": name, "step": 0, "train_min": 0.0, "loss": float("nan"), **measure(video, probe, captions, ids)})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--designs", nargs="+", default=["t2v", "i2v"], choices=DESIGNS)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-count", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--directions", type=int, default=4, choices=(4, 8))
    p.add_argument("--start", default="inside", choices=("inside", "bounce"))
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--patch", type=int, default=2)
    p.add_argument("--sample-steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--shift", type=float, default=1.0, help="timestep shift of a whole clip, training and sampling")
    p.add_argument("--image-share", type=float, default=0.0, help="share of steps trained on first frames alone")
    p.add_argument("--first-share", type=float, default=0.5, help="mix, two-stage: share of clips with frame 0 given")
    p.add_argument("--given-noise", type=float, default=0.0, help="FlowConfig.given_noise: given frames lightly noised")
    p.add_argument("--save", help="write each design's final weights to SAVE-DESIGN.safetensors")
    p.add_argument("--vae", help="model directory: the DiT works on its VAE's latents (clips encoded once, --pool)")
    p.add_argument("--per-frame", action="store_true", help="--vae: each frame encoded as an image (no time compression)")
    p.add_argument("--pool", type=int, default=2048, help="--vae: training clips encoded once")
    p.add_argument("--lag", type=float, default=1.0, help="stagger: how far the last frame trails frame 0 in t")
    p.add_argument("--per-frame-t", action="store_true",
                   help="any design: train with an independent noise level per frame (diffusion forcing; forcing and"
                        " stagger always do)")
    p.add_argument("--wording", default="fixed", choices=("fixed", "varied"),
                   help="varied: train captions in every train wording of tenku.vocab; also score held-out wordings")
    p.add_argument("--text-layers", type=int, nargs="*", default=[],
                   help="text encoder hidden states averaged per token (ModelConfig.text_layers; default: the last)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    scale = args.size / 16  # geometry as at 16 px: radius 2.5, 1 px per frame
    probe = Probe(size=args.size, frames=args.frames, directions=args.directions, start=args.start,
                  radius=2.5 * scale, speed=1.0 * scale)
    captions = probe.captions(args.wording)
    space = Space(args.vae, args.per_frame)
    from tenku.models.text import load_text_encoder

    encoder = load_text_encoder(layers=tuple(args.text_layers))
    text_all, mask_all = encoder.encode([c for c, _, _ in captions])  # (K, L, 384), (K, L)
    evalset = make_batch(probe, captions, args.eval_count, torch.Generator().manual_seed(10_000 + args.seed))
    pool = None
    if space.vae is not None:
        t0 = time.perf_counter()
        clips, idx = make_batch(probe, captions, args.pool, torch.Generator().manual_seed(20_000 + args.seed))
        pool = (space.encode(clips), idx)
        print(f"latent pool: {args.pool} clips encoded in {time.perf_counter() - t0:.0f} s, {tuple(pool[0].shape[1:])}")
    eval_x = space.encode(evalset[0])  # the evaluation clips in the model's space, encoded once
    paraphrase = None
    if args.wording == "varied":  # scenes captioned only with held-out words
        caps_p = probe.captions("varied", held=True)
        set_p = make_batch(probe, caps_p, args.eval_count, torch.Generator().manual_seed(10_000 + args.seed))
        paraphrase = (caps_p, *encoder.encode([c for c, _, _ in caps_p]), set_p, space.encode(set_p[0]))
    args.latent_shape = tuple(eval_x.shape[2:])
    print(f"probe: {probe}; {len(captions)} captions ({args.wording}), text layers {args.text_layers or 'last'};"
          f" space {'pixels' if space.vae is None else args.vae}; DiT"
          f" {count_params(build(args, space.channels)) / 1e6:.2f}M parameters; batch {args.batch}, lr {args.lr},"
          f" {args.sample_steps} Euler steps, guidance {args.guidance}, shift {args.shift}")
    print(HEADER)
    for row in reference_rows(probe, captions, evalset, space, eval_x):
        print(fmt(row))
    for design in args.designs:
        train_design(design, probe, captions, text_all, mask_all, evalset, args, space, eval_x, pool, paraphrase)


if __name__ == "__main__":
    main()
