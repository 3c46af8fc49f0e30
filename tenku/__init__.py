"""Tenku: text-to-video with a diffusion transformer on spacetime patches of a causal video VAE latent."""

__version__ = "0.1.0"


def load_pipeline(path=None, device="cpu", precision="fp32"):
    """Load a model directory (None = the shipped default). See tenku.pipeline.Pipeline.run and
    tenku.request.GenerateRequest; `precision`: "fp32", "bf16" or "auto" (tenku/precision.py)."""
    from tenku.pipeline import load_pipeline as _load

    return _load(path, device, precision=precision)


__all__ = ["load_pipeline", "__version__"]
