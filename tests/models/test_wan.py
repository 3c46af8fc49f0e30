"""Wan 2.1 folders through Tenku: a tiny random diffusers pipeline (built here, saved with save_pretrained in the
diffusers layout) gives the same transformer output, VAE encode/decode and 2-step video through Tenku as
through diffusers; `tenku convert wan` round-trips; broken folders are refused with a message naming the part.

The generation test runs diffusers' WanPipeline with FlowMatchEulerDiscreteScheduler(shift) on Tenku's sigma
grid (shift_t(linspace(1, 0, steps + 1))): the Euler steps Tenku's default sampler takes.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from tenku import cli
from tenku.pipeline import load_pipeline
from tenku.models.convert import diffusers_wan_to_tenku
from tenku.models.dit import DiT, count_params
from tenku.models.vae import VideoVAE
from tenku.models.wan import WanFolderError, convert_wan, dit_config, load_wan, vae_config, vae_state

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")
from tokenizers import Tokenizer, models, pre_tokenizers, processors  # noqa: E402

WORDS = "a red green blue ball square moves to the left right up down slowly".split()
SHIFT = 3.0
Z = 4  # latent channels of the tiny VAE


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def tiny_tokenizer():
    """A word-level tokenizer that appends </s> as T5's does; built offline."""
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                                unk_token="<unk>", model_max_length=512)


def tiny_wan() -> "diffusers.WanPipeline":
    torch.manual_seed(0)
    text_encoder = transformers.UMT5EncoderModel(transformers.UMT5Config(
        vocab_size=len(WORDS) + 3, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, dropout_rate=0.0,
        feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)).eval()
    transformer = diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=Z, out_channels=Z, text_dim=16,
        freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
        rope_max_seq_len=32).eval()
    vae = diffusers.AutoencoderKLWan(
        base_dim=8, z_dim=Z, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.3, -0.2, 0.1, 0.5], latents_std=[1.5, 0.7, 2.0, 1.1]).eval()
    with torch.no_grad():  # off the default init, so a swapped or mis-shaped weight cannot hide
        for p in list(transformer.parameters()) + list(vae.parameters()):
            p.add_(0.05 * torch.randn_like(p))
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=SHIFT)
    return diffusers.WanPipeline(tokenizer=tiny_tokenizer(), text_encoder=text_encoder, vae=vae,
                                 transformer=transformer, scheduler=scheduler)


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    """(the diffusers pipeline, its folder saved in the diffusers layout)."""
    pipe = tiny_wan()
    folder = tmp_path_factory.mktemp("wan") / "Wan2.1-tiny"
    pipe.save_pretrained(folder)
    return pipe, folder


def test_transformer_output_equals_diffusers(wan):
    pipe, folder = wan
    _, _, dit = load_wan(folder)
    g = torch.Generator().manual_seed(1)
    x, text = torch.randn(2, Z, 3, 4, 6, generator=g), torch.randn(2, 7, 16, generator=g)
    t = torch.tensor([0.25, 0.75])  # t * 1000 exact in float32, as diffusers gets it
    with torch.no_grad():
        ours = dit(x, t, text, torch.ones(2, 7, dtype=torch.bool))
        theirs = pipe.transformer(hidden_states=x, timestep=t * 1000, encoder_hidden_states=text, return_dict=False)[0]
    assert ours.shape == theirs.shape == x.shape
    assert rel_err(ours, theirs) < 1e-5


@pytest.mark.parametrize("chunked", [True, False])
def test_vae_encode_decode_equal_autoencoder_kl_wan(wan, chunked):
    pipe, folder = wan
    cfg, vae, _ = load_wan(folder)
    g = torch.Generator().manual_seed(2)
    video = torch.rand(1, 3, 9, 32, 32, generator=g) * 2 - 1  # (1, 3, T, H, W)
    z = torch.randn(1, Z, 3, 4, 4, generator=g)
    with torch.no_grad():
        ours, theirs = vae.encode(video, chunked=chunked), pipe.vae.encode(video).latent_dist
        assert rel_err(ours.mean, theirs.mean) < 1e-5 and rel_err(ours.logvar, theirs.logvar) < 1e-5
        decoded = vae.decode(z, chunked=chunked).clamp(-1, 1)  # AutoencoderKLWan clamps its output
        assert decoded.shape == (1, 3, 9, 32, 32)
        assert rel_err(decoded, pipe.vae.decode(z).sample) < 1e-5
    # the latent statistics come from the VAE config: denormalize = z * std + mean, as WanPipeline decodes
    assert torch.equal(vae.latent_std, torch.tensor(pipe.vae.config.latents_std))
    assert torch.equal(vae.latent_mean, torch.tensor(pipe.vae.config.latents_mean))


def test_two_step_generation_equals_wan_pipeline(wan):
    pipe, folder = wan
    tenku = load_pipeline(folder)
    assert tenku.cfg.flow.base_shift == SHIFT and tenku.cfg.sample.steps == 50 and tenku.cfg.sample.guidance == 5.0
    prompt, steps, seed, guidance = "a red ball moves to the left", 2, 3, 5.0
    latents = tenku.sample_latents(prompt, 3, 4, 4, steps, guidance, "euler", seed)  # (1, Z, 3, 4, 4)
    frames = tenku.generate(prompt, frames=9, height=32, width=32, steps=steps, guidance=guidance, seed=seed).frames

    noise = torch.randn(1, Z, 3, 4, 4, generator=torch.Generator().manual_seed(seed))  # Tenku's initial latents
    set_timesteps = pipe.scheduler.set_timesteps
    pipe.scheduler.set_timesteps = lambda n, device=None: set_timesteps(sigmas=np.linspace(1, 0, n + 1)[:-1], device=device)
    try:
        kw = dict(prompt=prompt, height=32, width=32, num_frames=9, num_inference_steps=steps, guidance_scale=guidance,
                  latents=noise.clone())
        theirs = pipe(**kw, output_type="latent").frames
        video = pipe(**kw, output_type="np").frames[0]  # (T, H, W, 3) in [0, 1]
    finally:
        pipe.scheduler.set_timesteps = set_timesteps
    assert rel_err(latents, theirs) < 1e-5
    assert frames.shape == (9, 32, 32, 3)
    assert np.abs(frames.numpy() / 255.0 - video).max() <= 1 / 255 + 1e-6  # uint8 rounding only


def test_given_frames_kept_with_a_wan_model(wan):
    _, folder = wan
    pipe = load_pipeline(folder)
    args = dict(frames=9, height=32, width=32, steps=2, seed=0)
    clip = pipe.generate("a ball", **args).frames.numpy()
    image = pipe.generate("a ball", image=clip[0], **args).frames
    assert torch.equal(image[0], torch.from_numpy(clip[0]))
    extended = pipe.generate("a ball", extend=clip, **dict(args, frames=4)).frames
    assert len(extended) == 13 and torch.equal(extended[:9], torch.from_numpy(clip))


def test_wan_2_1_sizes_map_onto_tenku_shapes():
    """Wan 2.1 1.3B's published configs (AutoencoderKLWan's defaults are Wan 2.1's VAE), built on the meta
    device: every renamed key lands on a Tenku parameter of the same shape, at the real channel layout."""
    t = dict(patch_size=[1, 2, 2], num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
             text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
             qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=1024)
    with torch.device("meta"):
        theirs_vae, theirs_dit = diffusers.AutoencoderKLWan(), diffusers.WanTransformer3DModel(**t)
        vae, dit = VideoVAE(vae_config(dict(theirs_vae.config))), DiT(dit_config(t))
    shapes = lambda sd: {k: tuple(v.shape) for k, v in sd.items()}  # noqa: E731
    assert shapes(vae_state(theirs_vae.state_dict(), dict(theirs_vae.config))) == shapes(vae.state_dict())
    assert shapes(diffusers_wan_to_tenku(theirs_dit.state_dict())) == shapes(dit.state_dict())
    assert round(count_params(dit) / 1e9, 2) == 1.42


def test_wan_vae_chunked_decode_equals_whole_clip(wan):
    _, folder = wan
    _, vae, _ = load_wan(folder)
    z = torch.randn(1, Z, 4, 4, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        parts = list(vae.iter_decode(z))  # one latent frame at a time: 1 then 4 pixel frames
        assert [p.shape[2] for p in parts] == [1, 4, 4, 4]
        assert torch.allclose(torch.cat(parts, 2), vae.decode(z, chunked=False), atol=1e-5)


def test_convert_round_trip(wan, tmp_path):
    _, folder = wan
    out = tmp_path / "tenku-wan"
    assert cli.main(["convert", "wan", str(folder), str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["text_encoder"] == "text_encoder" and saved["text_convention"] == "wan"
    assert {"vae.safetensors", "dit.safetensors", "text_encoder", "tokenizer"} <= {p.name for p in out.iterdir()}
    args = dict(frames=5, height=32, width=32, steps=2, seed=5)
    a = load_pipeline(folder).generate("a blue square moves up", **args).frames
    b = load_pipeline(out).generate("a blue square moves up", **args).frames
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="not empty"):
        convert_wan(folder, out)


def broken(folder, tmp_path, edit):
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    edit(bad)
    return bad


def _set_json(path, **kw):
    d = json.loads(path.read_text())
    path.write_text(json.dumps({**d, **kw}))


@pytest.mark.parametrize("edit, message", [
    (lambda d: shutil.rmtree(d / "transformer"), "transformer: folder not found"),
    (lambda d: (d / "model_index.json").unlink(), "model_index.json: file not found"),
    (lambda d: _set_json(d / "model_index.json", _class_name="WanImageToVideoPipeline"), "'WanImageToVideoPipeline'"),
    (lambda d: _set_json(d / "transformer" / "config.json", _class_name="CogVideoXTransformer3DModel"),
     "expected 'WanTransformer3DModel'"),
    (lambda d: (d / "vae" / "diffusion_pytorch_model.safetensors").rename(d / "vae" / "diffusion_pytorch_model.bin"),
     "never unpickles"),
    (lambda d: (d / "tokenizer" / "tokenizer_config.json").unlink(), "tokenizer_config.json: file not found"),
])
def test_broken_folders_are_refused_naming_the_part(wan, tmp_path, edit, message):
    bad = broken(wan[1], tmp_path, edit)
    with pytest.raises(WanFolderError, match=message):
        load_pipeline(bad)


def test_cli_refuses_a_broken_folder_with_exit_2(wan, tmp_path, capsys):
    bad = broken(wan[1], tmp_path, lambda d: shutil.rmtree(d / "vae"))
    assert cli.main(["convert", "wan", str(bad), str(tmp_path / "out")]) == 2
    assert "vae: folder not found" in capsys.readouterr().err
    assert cli.main(["convert", "wan", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert "nowhere: folder not found" in capsys.readouterr().err


def test_loading_a_wan_folder_never_imports_diffusers(wan):
    code = (f"import sys; from tenku.pipeline import load_pipeline; load_pipeline({str(wan[1])!r}); "
            "print('diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
