"""The networks.

    vae.py, causal_conv.py  the causal 3D video VAE (pixels <-> latent) and its causal building blocks
    dit.py                  the diffusion transformer on spacetime patches (Wan 2.1 block layout)
    text.py                 the frozen text encoder (MiniLM by default; T5/umT5, CLIP from local folders)
    wan.py, convert.py      Wan 2.1 diffusers folders -> Tenku modules (key mapping, parity-tested)
    lora.py                 low-rank adapters on the DiT with peft
"""
