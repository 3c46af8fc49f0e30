"""VAE training losses and reconstruction metrics. Nothing here needs a downloaded network.

    reconstruction = L1 + freq_weight * (multi-scale Laplacian L1 + FFT-magnitude L1)
    L1 optionally weighted (1 + fg_weight) on foreground pixels (those far from the frame's median colour)
    total          = reconstruction + kl_weight * KL + adv_weight * hinge generator loss (optional)

The Laplacian pyramid and the FFT magnitude stand in for a perceptual (LPIPS) loss: L1 alone averages away
edges and texture; both terms compare band-pass / spectral content, which blurry reconstructions lack.
Videos are (B, 3, T, H, W) in [-1, 1]; frame-wise terms fold T into the batch, so images (T = 1) and videos
share one code path.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tenku.models.vae import gaussian_kl


def frames_2d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W)."""
    B, C, T, H, W = x.shape
    return x.transpose(1, 2).reshape(B * T, C, H, W)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable [1 4 6 4 1] / 16 binomial blur with reflect padding. x (N, C, H, W)."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device, dtype=x.dtype) / 16
    C = x.shape[1]
    pad_h, pad_w = min(2, x.shape[2] - 1), min(2, x.shape[3] - 1)
    x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect" if min(pad_h, pad_w) > 0 else "replicate")
    kh = k[2 - pad_h: 3 + pad_h].view(1, 1, -1, 1).expand(C, 1, -1, 1)
    kw = k[2 - pad_w: 3 + pad_w].view(1, 1, 1, -1).expand(C, 1, 1, -1)
    x = F.conv2d(x, kh / kh[0].sum(), groups=C)
    return F.conv2d(x, kw / kw[0].sum(), groups=C)


def laplacian_loss(recon: torch.Tensor, target: torch.Tensor, levels: int = 3) -> torch.Tensor:
    """Mean L1 between Laplacian-pyramid bands (fine detail at each scale). Inputs (B, C, T, H, W)."""
    a, b = frames_2d(recon), frames_2d(target)  # (N, C, H, W)
    loss = a.new_zeros(())
    used = 0
    for _ in range(levels):
        if min(a.shape[-2:]) < 2:
            break
        ba, bb = _blur(a), _blur(b)
        loss = loss + (a - ba - (b - bb)).abs().mean()
        used += 1
        a, b = F.avg_pool2d(ba, 2), F.avg_pool2d(bb, 2)
    return loss / max(used, 1)


def fft_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 between log spectral magnitudes per frame (penalises missing high frequencies)."""
    fa = torch.fft.rfft2(frames_2d(recon).float(), norm="ortho").abs()  # (N, C, H, W//2+1)
    fb = torch.fft.rfft2(frames_2d(target).float(), norm="ortho").abs()
    return (torch.log1p(fa) - torch.log1p(fb)).abs().mean()


def foreground_mask(target: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """1 where a pixel differs from its frame's per-channel median colour by more than `threshold` in some
    channel. On scenes of small objects over a flat (or two-colour) background this marks the objects.
    target (B, C, T, H, W) in [-1, 1] -> (B, 1, T, H, W) float."""
    background = target.flatten(3).median(-1).values[..., None, None]  # (B, C, T, 1, 1)
    return ((target - background).abs().amax(1, keepdim=True) > threshold).to(target.dtype)


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, freq_weight: float,
                        fg_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """`l1` is the plain mean L1 (comparable across runs); `rec` is what is minimised. With fg_weight > 0 the
    L1 term weighs foreground pixels 1 + fg_weight times as much (normalised so a uniform error costs the same):
    objects are a few percent of the pixels, and plain L1 lets a VAE trade their colour for the background's."""
    err = (recon - target).abs()  # (B, C, T, H, W)
    l1 = err.mean()
    rec = l1
    if fg_weight > 0:
        w = 1 + fg_weight * foreground_mask(target)  # (B, 1, T, H, W)
        rec = (err * w).mean() / w.mean()
    out = {"l1": l1, "rec": rec}
    if freq_weight > 0:
        freq = laplacian_loss(recon, target) + fft_loss(recon, target)
        out["freq"] = freq
        out["rec"] = rec + freq_weight * freq
    return out


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q || N(0, I)) per latent element, averaged (so its weight does not depend on the clip size)."""
    return gaussian_kl(mean, logvar).mean()


# ----------------------------------------------------------------------------- adversarial (off by default)

class PatchDiscriminator(nn.Module):
    """A small 3D patch discriminator: one logit per spacetime patch. Works on images (T = 1) too."""

    def __init__(self, in_channels: int = 3, channels: int = 32, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv3d(in_channels, channels, (3, 4, 4), (1, 2, 2), (1, 1, 1)), nn.LeakyReLU(0.2)]
        c = channels
        for i in range(1, layers):
            c_out = channels * min(2 ** i, 8)
            mods += [nn.Conv3d(c, c_out, (3, 4, 4), (1, 2, 2), (1, 1, 1)), nn.GroupNorm(min(32, c_out // 4), c_out),
                     nn.LeakyReLU(0.2)]
            c = c_out
        mods.append(nn.Conv3d(c, 1, 3, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)  # (B, 1, T, H / 2^layers, W / 2^layers)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


# ----------------------------------------------------------------------------- metrics

@torch.no_grad()
def psnr(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per clip, on [-1, 1] inputs mapped to [0, 1]. (B,)"""
    a = ((recon.float().clamp(-1, 1) + 1) / 2).flatten(1)
    b = ((target.float().clamp(-1, 1) + 1) / 2).flatten(1)
    mse = (a - b).pow(2).mean(1).clamp(min=1e-10)  # (B,)
    return 10 * torch.log10(1.0 / mse)


def _gaussian(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-x.pow(2) / (2 * sigma ** 2))
    return g / g.sum()


@torch.no_grad()
def ssim(recon: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per clip (Wang et al. 2004, Gaussian window, frame by frame), [-1, 1] inputs. (B,)"""
    B = recon.shape[0]
    a = frames_2d((recon.float().clamp(-1, 1) + 1) / 2)  # (B*T, C, H, W) in [0, 1]
    b = frames_2d((target.float().clamp(-1, 1) + 1) / 2)
    C = a.shape[1]
    window = min(window, a.shape[-2], a.shape[-1])
    window -= 1 - window % 2  # odd
    g = _gaussian(window, sigma, a.device, a.dtype)
    k = (g[:, None] * g[None, :]).expand(C, 1, window, window)

    def filt(x):
        return F.conv2d(x, k, groups=C)

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a.pow(2)
    var_b = filt(b * b) - mu_b.pow(2)
    cov = filt(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.pow(2) + mu_b.pow(2) + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1).view(B, -1).mean(1)


def _check_same(recon: torch.Tensor, target: torch.Tensor) -> None:
    if recon.shape != target.shape:
        raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} must have the same shape")


def metrics(recon: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM over a batch of clips."""
    _check_same(recon, target)
    return {"psnr": float(psnr(recon, target).mean()), "ssim": float(ssim(recon, target).mean())}

