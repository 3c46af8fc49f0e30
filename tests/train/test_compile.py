"""torch.compile for training: the compiled DiT equals eager within float tolerance; a failing compiler falls back."""

import pytest
import torch

from tenku.train import compile as tc
from tenku.config import DiTConfig
from tenku.models.dit import DiT


def tiny():
    torch.manual_seed(0)
    dit = DiT(DiTConfig(in_channels=4, out_channels=4, dim=32, ffn_dim=64, num_layers=1, num_heads=2, text_dim=16))
    for p in dit.parameters():  # non-zero everywhere (adaLN-Zero starts at zero output)
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(2, 4, 3, 4, 4), torch.rand(2, 3)
    text, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    return dit, (x, t, text, mask)


def fwd_bwd(f, dit, args):
    dit.zero_grad(set_to_none=True)
    out = f(*args)
    out.square().mean().backward()
    return out.detach(), [p.grad.clone() for p in dit.parameters()]


@pytest.mark.slow
@pytest.mark.skipif(not tc.compiler_available(torch.device("cpu")), reason="no C compiler for inductor")
def test_compiled_equals_eager():
    dit, args = tiny()
    out_e, grads_e = fwd_bwd(dit, dit, args)
    compiled = tc.MaybeCompiled(dit)
    out_c, grads_c = fwd_bwd(compiled, dit, args)
    assert compiled.ok is True  # it really ran compiled, not the fallback
    assert torch.allclose(out_c, out_e, atol=1e-5, rtol=1e-4)
    for a, b in zip(grads_c, grads_e):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_failing_compiler_falls_back_to_eager(monkeypatch):
    def broken(module):
        def call(*a, **k):
            raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    dit, args = tiny()
    wrapped = tc.MaybeCompiled(dit)
    with pytest.warns(UserWarning, match="running eagerly from now on"):
        out = wrapped(*args)
    assert wrapped.ok is False
    assert torch.equal(out, dit(*args))


def test_modes():
    cpu = torch.device("cpu")
    assert tc.wants_compile("on", cpu) and not tc.wants_compile("off", cpu)
    assert tc.wants_compile("auto", cpu) == tc.compiler_available(cpu)
    with pytest.raises(ValueError, match="compile must be one of"):
        tc.wants_compile("yes", cpu)
