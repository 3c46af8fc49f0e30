"""Given frames -> latent conditioning: image-to-video, last frame, extend forward/backward, connect.

Every mode reduces to one mechanism: some latent frames are given (held clean at t = 0, see flow.py) and the
rest are generated. How the given pixels become latents depends on where they sit:

* At the start (an image, the video being extended forward, the first clip of a connection): the VAE is
  causal, so encoding the given frames alone gives exactly the latents they have as a prefix of any longer
  video. Exact.
* At the end (a last image, the video being extended backward, the second clip of a connection): their
  latents are "group" latents (4 frames each) whose causal context is what comes before. We encode the
  clip standalone and use its group latents (frames 1..), i.e. the context is the clip's own first frame.
  The VAE's receptive field in time is a few frames, so this is close, and it is what training saw for
  "last frames" conditioning.

In the output, given pixel frames are pasted back verbatim: the user's frames are kept exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tenku.data.video_io import frames_to_tensor, read_video


def load_frames(source, what: str, max_frames: int | None = None) -> np.ndarray:
    """A path, an (H, W, 3) image or (T, H, W, 3) uint8 frames -> (T, H, W, 3) uint8; a file of more than
    `max_frames` frames is refused after decoding one frame past the limit (never the whole file)."""
    if isinstance(source, (str, Path)):
        frames, _ = read_video(source, max_frames=None if max_frames is None else max_frames + 1)
        if max_frames is not None and len(frames) > max_frames:
            raise ValueError(f"{what} {source} has more than {max_frames} frames (the limit); trim it")
        return frames
    if isinstance(source, torch.Tensor):
        source = source.cpu().numpy()
    frames = np.asarray(source)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 frames (T, H, W, 3) or a file path, got {frames.dtype} {frames.shape}")
    return frames


def check_frame_size(size: tuple[int, int], height: int, width: int, what: str) -> None:
    """An input of (h, w) pixels must be the video's size: given frames are pasted into it."""
    h, w = size
    if (h, w) != (height, width):
        raise ValueError(f"{what} is {w}x{h} (WxH) but the video is {width}x{height}; "
                         f"resize it, or ask for width {w} and height {h}")


def valid_prefix(n: int) -> int:
    """Largest 1 + 4k <= n."""
    return 1 + 4 * ((n - 1) // 4)


@dataclass
class Plan:
    """What to generate: T' latent frames, which are given, and how to assemble the output pixels."""

    latent_frames: int
    given: torch.Tensor | None = None  # (1, C, T', h, w) normalised latents (only masked frames matter)
    mask: torch.Tensor | None = None  # (1, T') bool
    head: np.ndarray | None = None  # pixel frames that replace the output's first frames verbatim
    tail: np.ndarray | None = None  # pixel frames that replace the output's last frames verbatim
    notes: list[str] = field(default_factory=list)

    def assemble(self, frames: torch.Tensor) -> torch.Tensor:
        """Paste the given pixel frames over the decoded ones. frames (T, H, W, 3) uint8."""
        out = frames.clone()
        if self.head is not None:
            out[: len(self.head)] = torch.from_numpy(self.head)
        if self.tail is not None:
            out[len(out) - len(self.tail):] = torch.from_numpy(self.tail)
        return out


class Conditioner:
    """Builds Plans with a pipeline's VAE."""

    def __init__(self, vae, device):
        self.vae, self.device = vae, device

    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 with N = 1 + 4k -> normalised latents (1, C, 1 + k, h, w)."""
        x = frames_to_tensor(frames)[None].to(self.device)  # (1, 3, N, H, W)
        return self.vae.encode_latents(x)

    def head_latents(self, frames: np.ndarray) -> tuple[torch.Tensor, int]:
        """Latents of frames that open the video (exact); uses the longest valid prefix. -> (latents, pixels used)."""
        n = valid_prefix(len(frames))
        return self.encode(frames[:n]), n

    def tail_latents(self, frames: np.ndarray) -> tuple[torch.Tensor, int]:
        """Group latents of frames that close the video. A single image is held for 4 frames."""
        if len(frames) == 1:
            frames = np.repeat(frames, 5, axis=0)  # a still: the image, then a group of 4 copies
        n = valid_prefix(len(frames))
        clip = frames[len(frames) - n:]  # the last 1 + 4k frames
        return self.encode(clip)[:, :, 1:], n - 1  # drop the first-frame latent: (1, C, k, h, w)

    def plan(self, latent_frames: int, head=None, tail=None, head_exact_pixels=None, tail_exact_pixels=None) -> Plan:
        """Place head latents at the start and tail latents at the end of a T'-frame latent video."""
        given, mask = None, torch.zeros(1, latent_frames, dtype=torch.bool, device=self.device)
        for lat, at_end in ((head, False), (tail, True)):
            if lat is None:
                continue
            k = lat.shape[2]
            if given is None:
                given = torch.zeros(1, lat.shape[1], latent_frames, *lat.shape[3:], device=self.device)
            sl = slice(latent_frames - k, latent_frames) if at_end else slice(0, k)
            if mask[0, sl].any():
                raise ValueError("the given frames overlap: ask for more frames so that something is generated between them")
            given[:, :, sl], mask[:, sl] = lat, True
        if mask.all():
            raise ValueError("every frame is given: ask for more frames than the inputs provide")
        return Plan(latent_frames, given, mask if given is not None else None, head_exact_pixels, tail_exact_pixels)
