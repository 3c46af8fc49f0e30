import pytest
import torch

from tenku.config import DiTConfig, preset
from tenku.models.dit import DiT, count_params, rope_axis_dims


def tiny_dit(**kw):
    cfg = DiTConfig(in_channels=4, out_channels=4, dim=24, ffn_dim=48, num_layers=2, num_heads=2, text_dim=16, freq_dim=32, **kw)
    torch.manual_seed(0)
    dit = DiT(cfg)
    # Random (not zero-init) weights so outputs depend on every input.
    for p in dit.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return dit


def text(B=2, L=5, D=16):
    torch.manual_seed(1)
    t = torch.randn(B, L, D)
    m = torch.ones(B, L, dtype=torch.bool)
    m[1, 3:] = False
    return t, m


@pytest.mark.parametrize("patch", [(1, 2, 2), (2, 2, 2), (1, 1, 1)])
def test_patchify_round_trip(patch):
    dit = tiny_dit(patch_size=patch)
    x = torch.randn(2, 4, 4, 6, 8)
    tokens = dit.patchify(x)  # (B, N, C*p)
    assert tokens.shape == (2, dit.num_tokens(4, 6, 8), 4 * patch[0] * patch[1] * patch[2])
    # The head emits features in (pt, ph, pw, c) order; reorder patchify's (c, pt, ph, pw) to match.
    pt, ph, pw = patch
    feats = tokens.view(2, -1, 4, pt, ph, pw).permute(0, 1, 3, 4, 5, 2).reshape(2, -1, 4 * pt * ph * pw)
    assert torch.equal(dit.unpatchify(feats, dit.grid(4, 6, 8)), x)


def test_new_model_outputs_zero_and_blocks_are_identity():
    dit = DiT(preset("tiny").dit)
    x = torch.randn(1, 4, 2, 4, 4)
    t = torch.rand(1)
    tx, m = torch.randn(1, 3, 384), torch.ones(1, 3, dtype=torch.bool)
    assert torch.equal(dit(x, t, tx, m), torch.zeros_like(x))
    e = torch.randn(1, 2, 6, 24) * 0  # zero modulation from a zero-init projection
    tokens = torch.randn(1, 8, 24)
    ctx = torch.randn(1, 3, 24)
    block = dit.blocks[0]
    out = block(tokens, e, ctx, None, dit.rope((2, 2, 2), "cpu"), 2)
    # Only the un-gated cross-attention path acts at init.
    assert torch.allclose(out - block.cross_attn(block.norm3(tokens), context=ctx), tokens, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 4, 4), (3, 4, 4), (5, 2, 8), (2, 8, 2), (4, 6, 10)])
def test_same_weights_any_resolution_duration_aspect(shape):
    dit = tiny_dit()
    tx, m = text()
    x = torch.randn(2, 4, *shape)
    out = dit(x, torch.rand(2), tx, m)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_padding_tokens_are_ignored():
    dit = tiny_dit()
    tx, m = text()
    x = torch.randn(2, 4, 2, 4, 4)
    t = torch.rand(2)
    out1 = dit(x, t, tx, m)
    tx2 = tx.clone()
    tx2[1, 3:] = 100.0  # padded positions of sample 1
    out2 = dit(x, t, tx2, m)
    assert torch.allclose(out1, out2, atol=1e-6)
    tx2[1, 0] += 1.0  # a real token changes the output
    assert not torch.allclose(out1, dit(x, t, tx2, m), atol=1e-4)


def test_per_frame_timesteps():
    dit = tiny_dit()
    tx, m = text()
    x = torch.randn(2, 4, 3, 4, 4)
    t_clip = torch.tensor([0.5, 0.5])
    t_frames = torch.full((2, 3), 0.5)
    assert torch.allclose(dit(x, t_clip, tx, m), dit(x, t_frames, tx, m), atol=1e-6)
    t_frames[:, 0] = 0.0
    assert not torch.allclose(dit(x, t_clip, tx, m), dit(x, t_frames, tx, m), atol=1e-4)
    with pytest.raises(ValueError, match="timesteps"):
        dit(x, torch.rand(2, 2), tx, m)


def test_gradient_checkpointing_same_gradients():
    dit = tiny_dit()
    tx, m = text()
    x = torch.randn(2, 4, 2, 4, 4)
    t = torch.rand(2)
    dit.train()
    dit(x, t, tx, m).square().mean().backward()
    g1 = [p.grad.clone() for p in dit.parameters()]
    dit.zero_grad()
    dit.cfg.gradient_checkpointing = True
    dit(x, t, tx, m).square().mean().backward()
    for a, p in zip(g1, dit.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-5)


def test_rope_is_relative_in_time():
    # Shifting every token by the same number of frames leaves attention scores unchanged.
    from tenku.models.dit import apply_rope, rope_freqs

    f = rope_freqs((6, 1, 1), 12, 10000.0, "cpu")
    q, k = torch.randn(1, 1, 1, 12), torch.randn(1, 1, 1, 12)
    s = lambda i, j: (apply_rope(q, f[i:i + 1]) * apply_rope(k, f[j:j + 1])).sum()
    assert torch.allclose(s(0, 2), s(3, 5), atol=1e-5)
    assert not torch.allclose(s(0, 2), s(0, 4), atol=1e-4)


def test_rope_equals_complex_rotation():
    # The real-valued rotation is Wan's complex one: (x[2i] + i x[2i+1]) * e^{i angle}.
    from tenku.models.dit import apply_rope, rope_freqs

    f = rope_freqs((3, 2, 2), 12, 10000.0, "cpu")  # (12, 6, 2)
    x = torch.randn(2, 3, 12, 12)
    z = torch.view_as_complex(x.unflatten(-1, (-1, 2)).contiguous()) * torch.complex(f[..., 0], f[..., 1])
    assert torch.allclose(apply_rope(x, f), torch.view_as_real(z).flatten(-2), atol=1e-6)


def test_bad_inputs_raise_clear_errors():
    dit = tiny_dit(patch_size=(1, 2, 2))
    tx, m = text()
    with pytest.raises(ValueError, match="patch size"):
        dit(torch.randn(2, 4, 2, 5, 4), torch.rand(2), tx, m)
    with pytest.raises(ValueError, match="latents"):
        dit(torch.randn(2, 3, 2, 4, 4), torch.rand(2), tx, m)
    with pytest.raises(ValueError, match="text states"):
        dit(torch.randn(2, 4, 2, 4, 4), torch.rand(2), torch.randn(2, 5, 7), m)


def test_wan_sized_preset_matches_wan_2_1_1_3b():
    cfg = preset("wan-1.3b").dit
    assert (cfg.dim, cfg.num_layers, cfg.num_heads, cfg.ffn_dim) == (1536, 30, 12, 8960)
    assert rope_axis_dims(cfg.head_dim) == (44, 42, 42)
    with torch.device("meta"):
        n = count_params(DiT(cfg))
    # Wan 2.1 "1.3B" has about 1.42e9 parameters with its 4096-d umT5 text projection.
    assert 1.3e9 < n < 1.5e9
