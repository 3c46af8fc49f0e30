"""VAE losses and metrics: PSNR/SSIM values, frequency terms that punish blur, discriminator shapes."""

import pytest
import torch

from tenku.train.vae_loss import (PatchDiscriminator, fft_loss, hinge_d_loss, hinge_g_loss, kl_loss, laplacian_loss,
                            foreground_mask, metrics, psnr, reconstruction_loss, ssim)


def _video(seed=0, shape=(2, 3, 5, 32, 32)):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_psnr_matches_formula_and_ssim_is_one_for_identity():
    x = _video()
    y = (x + 0.2).clamp(-1, 1)
    mse = (((x + 1) / 2 - (y + 1) / 2) ** 2).flatten(1).mean(1)
    assert torch.allclose(psnr(y, x), 10 * torch.log10(1 / mse), atol=1e-4)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    s = ssim(y + 0.3 * torch.randn_like(y), x)
    assert s.shape == (2,) and (s < 0.9).all()
    m = metrics(x[:, :, :1], x[:, :, :1])  # images (T = 1) work too
    assert m["ssim"] == pytest.approx(1.0, abs=1e-5) and m["psnr"] > 90
    with pytest.raises(ValueError, match="same shape"):
        metrics(x, x[:, :, :1])


def test_frequency_terms_punish_blur_more_than_l1_does():
    x = _video()
    blur = torch.nn.functional.avg_pool3d(x, (1, 3, 3), 1, (0, 1, 1), count_include_pad=False)
    noisy = x + (blur - x).abs().mean() * torch.randn_like(x).sign()  # same L1 error, no blur
    assert laplacian_loss(blur, x) > 0 and fft_loss(blur, x) > 0
    assert laplacian_loss(x, x) == 0 and fft_loss(x, x) == 0
    parts = reconstruction_loss(blur, x, freq_weight=0.5)
    assert set(parts) == {"l1", "freq", "rec"} and parts["rec"] > parts["l1"]
    assert set(reconstruction_loss(blur, x, 0.0)) == {"l1", "rec"}
    assert torch.isfinite(reconstruction_loss(noisy, x, 0.5)["rec"])


def test_foreground_weight_makes_object_errors_cost_more_than_background_errors():
    x = torch.full((1, 3, 2, 16, 16), -0.8)  # flat dark background
    x[:, :, :, 4:8, 4:8] = torch.tensor([0.9, -0.5, 0.2])[:, None, None, None]  # a 4x4 coloured object
    mask = foreground_mask(x)
    assert mask.shape == (1, 1, 2, 16, 16) and mask.sum() == 2 * 16 and mask[0, 0, :, 4:8, 4:8].all()
    grey_object, bad_corner = x.clone(), x.clone()
    grey_object[:, :, :, 4:8, 4:8] = 0.0  # the object's colour lost
    bad_corner[:, :, :, 12:16, 12:16] += 1.6 / 3  # the same L1 error spent on the background
    a, b = reconstruction_loss(grey_object, x, 0.0, 4.0), reconstruction_loss(bad_corner, x, 0.0, 4.0)
    assert a["l1"] == pytest.approx(b["l1"].item(), rel=0.02)  # plain L1 cannot tell them apart
    assert a["rec"] > 3 * b["rec"]
    assert reconstruction_loss(x + 0.1, x, 0.0, 4.0)["rec"] == pytest.approx(0.1, rel=1e-4)  # uniform error: same scale


def test_the_training_kl_is_the_posterior_kl_per_element():
    from tenku.models.vae import DiagonalGaussian

    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(2, 4, 3, 4, 4, generator=g), torch.randn(2, 4, 3, 4, 4, generator=g)
    torch.testing.assert_close(kl_loss(mean, logvar) * mean.numel(), DiagonalGaussian(mean, logvar).kl().sum())


def test_kl_and_hinge():
    z = torch.zeros(2, 4, 3, 4, 4)
    assert kl_loss(z, z) == 0 and kl_loss(z + 1, z) == pytest.approx(0.5)
    d = PatchDiscriminator(channels=8)
    logits = d(_video())
    assert logits.shape == (2, 1, 5, 4, 4) and d(_video()[:, :, :1]).shape == (2, 1, 1, 4, 4)
    assert hinge_d_loss(torch.full((3,), 2.0), torch.full((3,), -2.0)) == 0  # confident and right: no loss
    assert hinge_g_loss(torch.ones(3)) == -1
