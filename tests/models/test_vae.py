"""Causal video VAE: shapes, bit-exact causality, chunked == whole clip, tiling, latent stats, errors, overfit."""

import io

import pytest
import torch

from tenku.models.causal_conv import CausalConv3d
from tenku.config import VAEConfig, preset
from tenku.models.vae import VideoVAE, fold_time_taps, run_tiled

# Chunked vs whole-clip: the same arithmetic per frame, but oneDNN may pick different conv kernels for 1
# and for many frames, so allow float rounding (outputs are O(1)).
CHUNK_ATOL = 1e-5


def tiny_vae(spatial_compression: int = 8, seed: int = 0, local_time: bool = False) -> VideoVAE:
    torch.manual_seed(seed)
    cfg = preset("tiny").vae
    if spatial_compression != 8:
        levels = spatial_compression.bit_length() - 1
        cfg = VAEConfig(latent_channels=4, base_channels=8, channel_mult=(1,) + (2,) * levels,
                        spatial_compression=spatial_compression)
    cfg.local_time = local_time
    return VideoVAE(cfg).eval()


def clip(frames: int, height: int = 16, width: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, frames, height, width, generator=g) * 2 - 1  # (1, 3, T, H, W)


@pytest.mark.parametrize("s", [4, 8, 16])
def test_shapes(s):
    vae = tiny_vae(s)
    with torch.no_grad():
        for frames in (1, 5, 17, 33):
            lat = vae.latent_shape(frames, 32, 48)
            assert lat == ((frames - 1) // 4 + 1, 32 // s, 48 // s)
            assert vae.pixel_frames(lat[0]) == frames
            post = vae.encode(clip(frames, 32, 48))
            assert post.mean.shape == post.logvar.shape == (1, 4, *lat)
            assert vae.decode(post.mode()).shape == (1, 3, frames, 32, 48)


@pytest.mark.parametrize("local_time", [False, True])
def test_causality_bit_exact(local_time):
    vae = tiny_vae(local_time=local_time)
    video = clip(17)
    with torch.no_grad():
        for chunked in (True, False):
            z = vae.encode(video, chunked=chunked).mean  # (1, 4, 5, 2, 2)
            rec = vae.decode(z, chunked=chunked)
            for j in range(4):  # latent frame j covers pixel frames <= 4j
                later = video.clone()
                later[:, :, 4 * j + 1 :] = clip(17, seed=9)[:, :, 4 * j + 1 :]
                z2 = vae.encode(later, chunked=chunked).mean
                assert torch.equal(z2[:, :, : j + 1], z[:, :, : j + 1])
                assert not torch.equal(z2[:, :, j + 1], z[:, :, j + 1])  # the next latent frame does see it
                rec2 = vae.decode(z2, chunked=chunked)  # round trip
                assert torch.equal(rec2[:, :, : 4 * j + 1], rec[:, :, : 4 * j + 1])
                assert not torch.equal(rec2[:, :, 4 * j + 1], rec[:, :, 4 * j + 1])

                z3 = z.clone()
                z3[:, :, j + 1 :] = torch.randn_like(z3[:, :, j + 1 :])
                rec3 = vae.decode(z3, chunked=chunked)  # decode alone
                assert torch.equal(rec3[:, :, : 4 * j + 1], rec[:, :, : 4 * j + 1])
                assert not torch.equal(rec3[:, :, 4 * j + 1 :], rec[:, :, 4 * j + 1 :])


def local_vae() -> VideoVAE:
    """A local-time tiny VAE whose time taps are all live (at init they copy the newest frame only)."""
    vae = tiny_vae(local_time=True)
    with torch.no_grad():
        for m in vae.modules():
            if isinstance(m, CausalConv3d) and m.kernel_size[0] > 1:
                m.weight.add_(torch.randn_like(m.weight) * 0.3)
    return vae


@pytest.mark.parametrize("chunked", [True, False])
def test_local_time_latent_frame_sees_only_its_pixel_frames(chunked):
    vae = local_vae()
    assert vae.receptive_field() == 4 and tiny_vae().receptive_field() > 33  # today's encoder sees past any clip
    video, other = clip(17), clip(17, seed=9)
    with torch.no_grad():
        z = vae.encode(video, chunked=chunked).mean  # (1, 4, 5, 2, 2)
        for j in range(1, 5):
            own = slice(4 * j - 3, 4 * j + 1)
            outside = other.clone()
            outside[:, :, own] = video[:, :, own]  # every frame but latent frame j's own four replaced
            assert torch.equal(vae.encode(outside, chunked=chunked).mean[:, :, j], z[:, :, j])
            inside = video.clone()
            inside[:, :, 4 * j - 3] = other[:, :, 4 * j - 3]  # the oldest of its own frames does reach it
            assert not torch.equal(vae.encode(inside, chunked=chunked).mean[:, :, j], z[:, :, j])


@pytest.mark.parametrize("chunked", [True, False])
def test_local_time_latents_are_stationary(chunked):
    vae = local_vae()
    long = clip(21)
    with torch.no_grad():
        # A clip started 4 frames later has the same latent frames, one index earlier (after latent frame 0).
        a = vae.encode(long[:, :, :17], chunked=chunked).mean  # (1, 4, 5, 2, 2)
        b = vae.encode(long[:, :, 4:], chunked=chunked).mean
        assert torch.equal(a[:, :, 2:], b[:, :, 1:4])
        # A still clip has equal latent frames from 1 on, and those decode to equal pixel groups once the
        # decoder's reach (latent frames j-2..j for pixel frames 4j-3..4j) holds none of latent frame 0.
        still = vae.encode(long[:, :, :1].expand(-1, -1, 17, -1, -1).contiguous(), chunked=chunked).mean
        for j in range(2, 5):
            assert torch.equal(still[:, :, j], still[:, :, 1])
        rec = vae.decode(still, chunked=chunked)  # (1, 3, 17, 16, 16)
        assert torch.equal(rec[:, :, 13:17], rec[:, :, 9:13])
        z = torch.randn_like(a)
        z2 = z.clone()
        z2[:, :, 0] += 1.0
        assert torch.equal(vae.decode(z2, chunked=chunked)[:, :, 9:], vae.decode(z, chunked=chunked)[:, :, 9:])


def test_local_time_default_off_keeps_the_architecture():
    # The shipped model's weights load only into today's layer shapes.
    a, b = VideoVAE(preset("world-xs").vae), VideoVAE(VAEConfig(**{**vars(preset("world-xs").vae), "local_time": True}))
    assert list(a.state_dict()) == list(b.state_dict())
    assert a.encoder.conv_in.weight.shape[2] == 3 and b.encoder.conv_in.weight.shape[2] == 1


@pytest.mark.parametrize("k_to, stride", [(1, 1), (2, 1), (2, 2)])
def test_folded_time_taps_equal_the_original_conv_on_a_still_clip(k_to, stride):
    torch.manual_seed(0)
    full = CausalConv3d(4, 6, kernel=(3, 3, 3) if k_to == 1 else (3, 1, 1), stride_t=stride)
    local = CausalConv3d(4, 6, kernel=(k_to, 3, 3) if k_to == 1 else (k_to, 1, 1), stride_t=stride)
    local.load_state_dict(fold_time_taps(full.state_dict(), local.state_dict()))
    still = torch.randn(1, 1, 5, 5, 4).expand(1, 9, 5, 5, 4).contiguous()  # (B, T, H, W, C): one frame, 9 times
    with torch.no_grad():
        a, b = full(still), local(still)  # (B, T', H, W, C')
    assert a.shape == b.shape
    assert torch.allclose(a[:, 2:], b[:, 2:], atol=1e-5)  # where the original's window holds no zero padding
    if k_to == 1:  # a one-frame conv sees no padding, the original did at frame 0: that is the drift removed
        assert not torch.allclose(a[:, 0], b[:, 0], atol=1e-3)


def test_a_local_vae_warm_starts_from_a_full_one():
    cfg = preset("tiny").vae
    full, local = VideoVAE(cfg), VideoVAE(VAEConfig(**{**vars(cfg), "local_time": True}))
    state = fold_time_taps(full.state_dict(), local.state_dict())
    local.load_state_dict(state)  # every shape fits
    assert torch.equal(local.encoder.conv_in.weight, full.encoder.conv_in.weight.sum(2, keepdim=True))


def test_chunked_equals_whole_clip():
    vae = tiny_vae()
    video = torch.cat([clip(17, 32, 32, seed=1), clip(17, 32, 32, seed=2)])  # B = 2
    with torch.no_grad():
        a, b = vae.encode(video, chunked=True), vae.encode(video, chunked=False)
        torch.testing.assert_close(a.mean, b.mean, atol=CHUNK_ATOL, rtol=0)
        torch.testing.assert_close(a.logvar, b.logvar, atol=CHUNK_ATOL, rtol=0)
        torch.testing.assert_close(vae.decode(a.mean, chunked=True), vae.decode(a.mean, chunked=False),
                                   atol=CHUNK_ATOL, rtol=0)


def test_chunked_gradients_match_whole_clip():
    # The cache keeps the autograd graph, so training through the chunked path is also exact.
    vae = tiny_vae()
    video = clip(9)
    grads = []
    for chunked in (True, False):
        vae.zero_grad()
        post = vae.encode(video, chunked=chunked)
        vae.decode(post.mean, chunked=chunked).pow(2).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in vae.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-4)


def test_iter_decode_matches_decode():
    vae = tiny_vae()
    z = torch.randn(1, 4, 5, 2, 3)
    with torch.no_grad():
        parts = list(vae.iter_decode(z))
        assert [p.shape[2] for p in parts] == [1, 4, 4, 4, 4]
        assert torch.equal(torch.cat(parts, dim=2), vae.decode(z))


def test_run_tiled_blends_exactly_for_local_ops():
    # With an op that has no spatial reach, overlapping tiles must reassemble the untiled result exactly.
    x = torch.randn(1, 2, 40, 56, 3)  # (B, T, H, W, C)
    up = lambda t, cache: t.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3) * 2  # noqa: E731
    torch.testing.assert_close(run_tiled(up, x, 16, 4, 8, None), up(x, None))
    pool = lambda t, cache: t.unflatten(2, (-1, 4)).unflatten(4, (-1, 4)).mean(dim=(3, 5))  # noqa: E731
    torch.testing.assert_close(run_tiled(pool, x, 16, 8, 1 / 4, None), pool(x, None))


def test_tiled_close_to_untiled():
    vae = tiny_vae()
    video = clip(5, 128, 128) * 0.2 + torch.linspace(-0.5, 0.5, 128)  # smooth ramp plus texture
    with torch.no_grad():
        z = vae.encode(video).mean  # (1, 4, 2, 16, 16)
        full = vae.decode(z)
        assert torch.equal(vae.decode(z, tile=128), full)  # one tile covering the frame is the untiled path
        errs = []
        # An untrained net (signal-preserving init, frame attention) reaches across the frame, so the error
        # shrinks as tiles grow toward the frame.
        for tile in (32, 64, 96, 112):
            tiled = vae.decode(z, tile=tile)
            errs.append(((tiled - full).abs().mean() / full.abs().mean()).item())
        assert errs == sorted(errs, reverse=True) and errs[-1] < 0.2, errs
        zt = vae.encode(video, tile=96).mean
        assert ((zt - z).abs().mean() / z.abs().mean()) < 0.25
        # tiled chunked == tiled whole clip: each tile keeps its own cache across chunks
        torch.testing.assert_close(vae.decode(z, tile=64), vae.decode(z, chunked=False, tile=64),
                                   atol=CHUNK_ATOL, rtol=0)
        torch.testing.assert_close(vae.encode(video, tile=64).mean, vae.encode(video, chunked=False, tile=64).mean,
                                   atol=CHUNK_ATOL, rtol=0)


def test_latent_stats_persist_and_normalize_inverts():
    vae = tiny_vae()
    vae.latent_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    vae.latent_std.copy_(torch.tensor([2.0, 0.5, 1.5, 3.0]))
    buf = io.BytesIO()
    torch.save(vae.state_dict(), buf)
    other = tiny_vae(seed=3)
    assert torch.equal(other.latent_std, torch.ones(4))
    other.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    assert torch.equal(other.latent_mean, vae.latent_mean) and torch.equal(other.latent_std, vae.latent_std)
    z = torch.randn(2, 4, 3, 2, 2)
    n = other.normalize(z)
    torch.testing.assert_close(n[:, 1], (z[:, 1] + 1.0) / 0.5)
    torch.testing.assert_close(other.denormalize(n), z)


def test_posterior_kl_and_sample():
    vae = tiny_vae()
    with torch.no_grad():
        post = vae.encode(clip(5).repeat(2, 1, 1, 1, 1))
    kl = post.kl()
    assert kl.shape == (2,) and (kl >= 0).all()
    a = post.sample(torch.Generator().manual_seed(0))
    assert torch.equal(a, post.sample(torch.Generator().manual_seed(0)))
    assert not torch.equal(a, post.mode())


def test_errors():
    vae = tiny_vae()
    with pytest.raises(ValueError, match=r"frames must be 1 \+ 4k \(got 16; nearest valid: 13 or 17\)"):
        vae.latent_shape(16, 64, 64)
    with pytest.raises(ValueError, match=r"height 60 is not a multiple of 8 \(nearest valid: 56 or 64\)"):
        vae.latent_shape(17, 60, 64)
    with pytest.raises(ValueError, match="width 4 is not a multiple of 8"):
        vae.encode(clip(5, 16, 4))
    with pytest.raises(ValueError, match="frames must be 1 \\+ 4k"):
        vae.encode(clip(4))
    with pytest.raises(ValueError, match="3 channels"):
        vae.encode(torch.zeros(1, 4, 5, 16, 16))
    with pytest.raises(ValueError, match="5D"):
        vae.encode(torch.zeros(3, 5, 16, 16))
    with pytest.raises(ValueError, match="4 channels"):
        vae.decode(torch.zeros(1, 8, 2, 2, 2))
    with pytest.raises(ValueError, match="tile"):
        vae.decode(torch.zeros(1, 4, 2, 2, 2), tile=12)
    with pytest.raises(ValueError, match="latent_frames"):
        vae.pixel_frames(0)
    with pytest.raises(ValueError, match="temporal_down_levels"):
        VAEConfig(temporal_down_levels=(1, 4))


def test_overfit_one_clip():
    vae = tiny_vae().train()
    video = torch.full((1, 3, 5, 16, 16), -1.0)
    for t in range(5):  # a red square moving right on black
        video[0, 0, t, 4:10, 2 + 2 * t : 8 + 2 * t] = 1.0
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        recon, post = vae(video, generator=torch.Generator().manual_seed(0))
        mse = (recon - video).pow(2).mean()
        loss = mse + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(mse.item())
    assert losses[-1] < 0.25 * losses[0], losses


def test_new_vae_posterior_starts_nearly_deterministic():
    from tenku.models.vae import LOGVAR_INIT

    vae = VideoVAE(preset("tiny").vae)
    post = vae.encode(torch.rand(1, 3, 5, 32, 32) * 2 - 1)
    assert torch.allclose(post.logvar, torch.full_like(post.logvar, LOGVAR_INIT))
    assert (post.sample() - post.mode()).abs().max() < 0.5  # noise std e^-3, not ~1



@pytest.mark.parametrize("temporal", [False, True])
def test_resampling_steps_start_at_full_strength(temporal):
    # Regression: with default init a Downsample kept ~1/4 of a first frame's std while its biases did not
    # shrink, so by the latent the input was buried and Tenku World training collapsed to the mean image.
    from tenku.models.causal_conv import Downsample, Upsample

    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 16, 32)  # (B, T, H, W, C): a first frame
    down = Downsample(32, 32, temporal)(x)
    up = Upsample(32, 32, temporal)(x)
    for y in (down, up):
        assert 0.6 < y.std() / x.std() < 1.6, y.std()
