"""Published Wan weights load by renaming keys: a diffusers Wan transformer and Tenku's DiT agree."""

import pytest
import torch

from tenku.config import DiTConfig
from tenku.models.convert import diffusers_wan_to_tenku
from tenku.models.dit import DiT

diffusers = pytest.importorskip("diffusers")


def test_diffusers_wan_weights_give_the_same_output():
    cfg = DiTConfig(in_channels=4, out_channels=4, dim=24, ffn_dim=48, num_layers=2, num_heads=2, text_dim=16, freq_dim=32)
    torch.manual_seed(0)
    wan = diffusers.WanTransformer3DModel(
        patch_size=cfg.patch_size, num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim,
        in_channels=4, out_channels=4, text_dim=16, freq_dim=32, ffn_dim=48, num_layers=2,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=cfg.eps).eval()
    for p in wan.parameters():
        torch.nn.init.normal_(p, std=0.3)
    dit = DiT(cfg).eval()
    dit.load_state_dict(diffusers_wan_to_tenku(wan.state_dict()), strict=True)
    x, text = torch.randn(2, 4, 3, 6, 8), torch.randn(2, 5, 16)
    t = torch.tensor([0.25, 0.8])
    with torch.no_grad():
        ours = dit(x, t, text, torch.ones(2, 5, dtype=torch.bool))
        theirs = wan(hidden_states=x, timestep=t * 1000, encoder_hidden_states=text, return_dict=False)[0]
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4), (ours - theirs).abs().max()


def test_unknown_keys_are_refused():
    with pytest.raises(KeyError, match="no Tenku name"):
        diffusers_wan_to_tenku({"mystery.weight": torch.zeros(1)})
