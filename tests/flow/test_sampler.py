import math

import pytest
import torch

from tenku.flow.sampler import SAMPLERS, Conditioning, GuidedVelocity, sample


def test_oracle_velocity_recovers_data_in_one_euler_step():
    x0, noise = torch.randn(1, 2, 3, 2, 2), torch.randn(1, 2, 3, 2, 2)
    out = sample(lambda x, t: noise - x0, noise, steps=1, shift=1.0)
    assert torch.allclose(out, x0, atol=1e-6)


def test_higher_order_solvers_converge_faster():
    # dx/dt = a x  =>  x(0) = x(1) exp(-a); a nonlinear-in-t path that exposes the solver order.
    a = 1.5
    x1 = torch.ones(1, 1, 1, 1, 1)
    exact = math.exp(-a)
    err = {m: abs(sample(lambda x, t: a * x, x1, 8, 1.0, m).item() - exact) for m in SAMPLERS}
    assert err["heun"] < err["euler"] / 10
    assert err["multistep"] < err["euler"] / 3
    err16 = abs(sample(lambda x, t: a * x, x1, 16, 1.0, "heun").item() - exact)
    assert err16 < err["heun"] / 3  # second order: halving the step cuts the error ~4x


@pytest.mark.parametrize("method", SAMPLERS)
def test_given_frames_stay_exactly_clean(method):
    torch.manual_seed(0)
    latents = torch.randn(2, 3, 4, 2, 2)
    mask = torch.tensor([[True, False, False, True], [False, True, False, False]])
    calls = []

    def velocity(x, t):
        calls.append(x.clone())
        return torch.sin(x) + t

    noise = torch.randn(2, 3, 4, 2, 2)
    out = sample(velocity, noise, 5, 2.0, method, cond=Conditioning(latents, mask))
    m = mask[:, None, :, None, None].expand_as(out)
    assert torch.equal(out[m], latents[m])
    assert not torch.equal(out[~m], latents[~m])
    assert all(torch.equal(c[m], latents[m]) for c in calls)  # the model always sees them clean


def test_guided_velocity_batches_and_combines():
    seen = []

    class Fake:
        def __call__(self, x, t, text, mask):
            seen.append((x.shape[0], t.clone()))
            # conditional rows get +1, unconditional rows 0
            return text[:, :1, :1, None, None].expand(-1, x.shape[1], x.shape[2], x.shape[3], x.shape[4]) + 0 * x

    text, mask = torch.ones(1, 2, 3), torch.ones(1, 2, dtype=torch.bool)
    x = torch.zeros(1, 2, 3, 2, 2)
    v = GuidedVelocity(Fake(), text, mask, guidance=3.0)(x, 0.7)
    assert seen[-1][0] == 2  # one batched call for cond + uncond
    assert torch.allclose(v, torch.full_like(v, 3.0))  # 0 + 3 * (1 - 0)
    cond = Conditioning(torch.zeros_like(x), torch.tensor([[True, False, False]]))
    v = GuidedVelocity(Fake(), text, mask, guidance=1.0, cond=cond)(x, 0.7)
    assert seen[-1][0] == 1 and seen[-1][1][0].tolist() == pytest.approx([0.0, 0.7, 0.7])
    assert (v[:, :, 0] == 0).all() and (v[:, :, 1:] == 1).all()


def test_bad_sampler_arguments():
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(lambda x, t: x, torch.zeros(1, 1, 1, 1, 1), 2, 1.0, "rk45")
    with pytest.raises(ValueError, match="steps"):
        sample(lambda x, t: x, torch.zeros(1, 1, 1, 1, 1), 0, 1.0)


def test_noised_given_frames_are_seen_noisy_at_their_level_and_returned_clean():
    torch.manual_seed(0)
    latents, noise_given = torch.randn(1, 3, 4, 2, 2), torch.randn(1, 3, 4, 2, 2)
    mask = torch.tensor([[True, False, False, False]])
    seen = []

    def dit(x, t, text, m):
        seen.append((x.clone(), t.clone()))
        return torch.zeros_like(x)

    cond = Conditioning(latents, mask, t=0.1, noise=noise_given)
    velocity = GuidedVelocity(dit, torch.ones(1, 2, 3), torch.ones(1, 2, dtype=torch.bool), 1.0, cond)
    out = sample(velocity, torch.randn(1, 3, 4, 2, 2), 3, 1.0, "euler", cond=cond)
    x, t = seen[-1]
    assert t[0, 0] == pytest.approx(0.1) and (t[0, 1:] != 0.1).all()
    assert torch.allclose(x[:, :, 0], 0.9 * latents[:, :, 0] + 0.1 * noise_given[:, :, 0])  # (1 - t) x0 + t noise
    assert torch.equal(out[:, :, 0], latents[:, :, 0])  # the result holds the given frame exactly
