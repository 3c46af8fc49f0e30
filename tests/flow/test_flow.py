import pytest
import torch

from tenku import flow
from tenku.config import FlowConfig, preset
from tenku.models.dit import DiT


def test_convention_endpoints_and_velocity():
    x0, noise = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    assert torch.equal(flow.interpolate(x0, noise, torch.zeros(2)), x0)
    assert torch.equal(flow.interpolate(x0, noise, torch.ones(2)), noise)
    # The velocity is the derivative of the path in t.
    t, dt = torch.full((2,), 0.3), 1e-3
    fd = (flow.interpolate(x0, noise, t + dt) - flow.interpolate(x0, noise, t)) / dt
    assert torch.allclose(fd, flow.velocity_target(x0, noise), atol=1e-2)
    # Per-frame t: frame 0 clean while frame 1 is noise.
    t = torch.tensor([[0.0, 1.0, 0.5, 0.5]]).expand(2, 4)
    xt = flow.interpolate(x0, noise, t)
    assert torch.equal(xt[:, :, 0], x0[:, :, 0]) and torch.equal(xt[:, :, 1], noise[:, :, 1])


def test_shift_grows_with_tokens_and_keeps_endpoints():
    cfg = FlowConfig(base_shift=1.0, shift_ref_tokens=64, max_shift=6.0)
    shifts = [flow.shift_for_tokens(n, cfg) for n in (16, 64, 256, 1024, 10 ** 6)]
    assert shifts[0] == 1.0 and shifts == sorted(shifts) and shifts[-1] == 6.0
    t = torch.linspace(0, 1, 11)
    s = flow.shift_t(t, 3.0)
    assert s[0] == 0 and s[-1] == 1 and (s >= t).all()


def test_sample_t_is_logit_normal_and_seeded():
    cfg = FlowConfig()
    a = flow.sample_t(4096, cfg, 256, torch.Generator().manual_seed(0))
    b = flow.sample_t(4096, cfg, 256, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and (a > 0).all() and (a < 1).all()
    assert abs(a.median().item() - 0.5) < 0.03  # logit-normal(0, 1) is centred at 0.5 before shift
    shifted = flow.sample_t(4096, FlowConfig(shift_ref_tokens=16), 256, torch.Generator().manual_seed(0))
    assert shifted.median() > 0.7  # 16x the tokens -> shift 4 -> pushed toward noise


def test_drop_text_and_masked_loss():
    text, mask = torch.randn(8, 5, 4), torch.ones(8, 5, dtype=torch.bool)
    t2, m2 = flow.drop_text(text, mask, 1.0)
    assert (t2 == 0).all() and m2[:, 0].all() and not m2[:, 1:].any()
    t3, m3 = flow.drop_text(text, mask, 0.0)
    assert t3 is text
    pred, target = torch.zeros(2, 3, 2, 2, 2), torch.zeros(2, 3, 2, 2, 2)
    target[:, :, 0] = 10.0  # a large error only on frame 0
    assert flow.flow_loss(pred, target, torch.tensor([[False, True], [False, True]])) == 0
    assert flow.flow_loss(pred, target) > 0


def test_overfit_one_batch_drives_loss_down_10x():
    cfg = preset("tiny")
    cfg.flow.text_dropout = 0.0
    torch.manual_seed(0)
    dit = DiT(cfg.dit)
    x0 = torch.randn(2, 4, 2, 4, 4)
    text, mask = torch.randn(2, 3, 384), torch.ones(2, 3, dtype=torch.bool)
    opt = torch.optim.AdamW(dit.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        # The same noise and t every step: a fixed regression problem that the model can memorise.
        loss = flow.training_loss(dit, x0, text, mask, cfg.flow, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_training_loss_conditioning_frames_excluded():
    cfg = preset("tiny")
    dit = DiT(cfg.dit)
    x0 = torch.randn(2, 4, 3, 4, 4)
    text, mask = torch.randn(2, 3, 384), torch.ones(2, 3, dtype=torch.bool)
    seen = {}

    def spy(x, t, tx, m):
        seen["t"], seen["x"] = t.clone(), x.clone()
        return dit(x, t, tx, m)

    cond = torch.tensor([[True, False, False], [False, False, True]])
    flow.training_loss(spy, x0, text, mask, cfg.flow, cond_mask=cond, per_frame_t=True)
    assert (seen["t"][cond] == 0).all() and (seen["t"][~cond] > 0).all()
    assert torch.equal(seen["x"][0, :, 0], x0[0, :, 0])  # given frames enter clean
    assert len(set(seen["t"][0, 1:].tolist())) == 2  # diffusion forcing: independent noise levels


def test_given_noise_augments_given_frames_only_within_its_range():
    cfg = preset("tiny")
    cfg.flow.given_noise = 0.2
    dit = DiT(cfg.dit)
    x0 = torch.randn(64, 4, 3, 2, 2)
    text, mask = torch.randn(64, 3, 384), torch.ones(64, 3, dtype=torch.bool)
    seen = {}

    def spy(x, t, tx, m):
        seen["t"] = t.clone()
        return dit(x, t, tx, m)

    cond = torch.zeros(64, 3, dtype=torch.bool)
    cond[:, 0] = True
    flow.training_loss(spy, x0, text, mask, cfg.flow, cond_mask=cond, generator=torch.Generator().manual_seed(0))
    given = seen["t"][:, 0]
    assert (given >= 0).all() and (given <= 0.2).all() and given.std() > 0.03  # spread over [0, 0.2]
    assert not torch.equal(seen["t"][:, 1], given)  # the generated frames keep their own level
    assert flow.given_t(cfg.flow) == pytest.approx(0.1)
