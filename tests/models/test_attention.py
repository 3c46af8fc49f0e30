import pytest
import torch
import torch.nn.functional as F

from tenku.models import attention as A


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_sdpa_with_its_gradients(dtype, atol, masked):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 10, 8, generator=g)
    k, v = torch.randn(2, 3, 6, 8, generator=g), torch.randn(2, 3, 6, 8, generator=g)
    mask = torch.tensor([[True] * 6, [True, True, False, False, False, False]])[:, None, None] if masked else None
    grads = []
    for fn in (A.attention, F.scaled_dot_product_attention):
        qq, kk, vv = (t.to(dtype).requires_grad_() for t in (q, k, v))
        out = fn(qq, kk, vv, attn_mask=mask) if fn is F.scaled_dot_product_attention else fn(qq, kk, vv, mask)
        out.float().square().sum().backward()
        grads.append((out, qq.grad, kk.grad, vv.grad))
    for ours, ref in zip(*grads):
        assert ours.dtype == ref.dtype == dtype
        torch.testing.assert_close(ours.float(), ref.float(), rtol=0, atol=atol * max(1.0, ref.abs().max().item()))


def test_a_query_with_nothing_to_attend_gets_zeros_as_sdpa_does():
    q, k, v = torch.randn(1, 1, 3, 4), torch.randn(1, 1, 5, 4), torch.randn(1, 1, 5, 4)
    none = torch.zeros(1, 1, 1, 5, dtype=torch.bool)
    assert torch.equal(A.attention(q, k, v, none), torch.zeros(1, 1, 3, 4))
    assert torch.equal(F.scaled_dot_product_attention(q, k, v, attn_mask=none), torch.zeros(1, 1, 3, 4))


def test_long_sequences_take_sdpa(monkeypatch):
    calls = []
    monkeypatch.setattr(A.F, "scaled_dot_product_attention", lambda *a, **k: calls.append(a[0].shape) or a[0])
    short, long = torch.randn(1, 1, 16, 4), torch.randn(1, 1, 129, 4)  # fp32 limit 128 x 128
    A.attention(short, short, short)
    assert calls == []
    A.attention(long, long, long)
    A.attention(short.bfloat16(), short.bfloat16(), short.bfloat16())
    assert calls == [long.shape]
    with torch.no_grad():  # fp32 eager inference keeps the one fused call; bf16 does not
        A.attention(short, short, short)
        A.attention(short.bfloat16(), short.bfloat16(), short.bfloat16())
    assert calls == [long.shape, short.shape]
