"""End-to-end pipeline and CLI on a tiny random model: sizes, determinism, conditioning modes, errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from tenku.cli import main
from tenku.pipeline import init_model, load_pipeline
from tenku.data.video_io import read_video, write_video


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return init_model(tmp_path_factory.mktemp("m") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="module")
def pipe(model_dir):
    p = load_pipeline(model_dir)
    torch.manual_seed(1)
    for param in p.dit.parameters():  # a random but non-degenerate transformer (zero-init outputs nothing)
        param.data.normal_(0, 0.05)
    return p


def moving_square(T=9, H=32, W=32):
    f = np.zeros((T, H, W, 3), np.uint8)
    for i in range(T):
        f[i, 10:18, 2 + 2 * i: 10 + 2 * i] = (230, 40, 40)
    return f


def test_generate_sizes_and_aspect_ratios(pipe):
    for frames, h, w in [(1, 32, 32), (5, 32, 48), (9, 48, 16)]:
        v = pipe.generate("a red ball", frames=frames, height=h, width=w, steps=2)
        assert v.frames.shape == (frames, h, w, 3) and v.frames.dtype == torch.uint8


def test_seed_determinism(pipe):
    a = pipe.generate("a red ball", frames=5, steps=3, seed=7).frames
    b = pipe.generate("a red ball", frames=5, steps=3, seed=7).frames
    c = pipe.generate("a red ball", frames=5, steps=3, seed=8).frames
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_sizes_name_nearest_valid_values(pipe):
    with pytest.raises(ValueError, match=r"frames must be 1 \+ 4k \(got 16; nearest valid: 13 or 17\)"):
        pipe.generate("x", frames=16)
    with pytest.raises(ValueError, match="height must be a positive multiple of 16 .*nearest valid: 48 or 64"):
        pipe.generate("x", height=50)
    with pytest.raises(ValueError, match="unknown sampler"):
        pipe.generate("x", sampler="ddim")
    with pytest.raises(ValueError, match="non-empty"):
        pipe.generate("  ")


def test_image_to_video_keeps_the_image(pipe):
    img = moving_square()[0]
    v = pipe.generate("a red square moves right", frames=9, image=img, steps=2)
    assert v.frames.shape == (9, 32, 32, 3) and np.array_equal(v.frames[0].numpy(), img)
    v = pipe.generate("x", frames=9, image=img, last_image=img, steps=2)
    assert np.array_equal(v.frames[-1].numpy(), img)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_extend_keeps_given_frames_and_adds_new_ones(pipe, direction):
    src = moving_square(7)  # not 1 + 4k: leftover frames must survive too
    v = pipe.generate("a red square", extend=src, direction=direction, frames=6, steps=2)
    out = v.frames.numpy()
    assert len(out) >= 7 + 6
    given = out[:7] if direction == "forward" else out[-7:]
    assert np.array_equal(given, src)


def test_given_latents_are_bit_exact_during_sampling(pipe):
    from tenku.conditioning import Conditioner

    src = moving_square(5)
    cond = Conditioner(pipe.vae, pipe.device)
    head, n = cond.head_latents(src)
    plan = cond.plan(4, head, None)
    z = pipe.sample_latents("x", 4, 4, 4, steps=3, guidance=3.0, sampler="heun", seed=0, plan=plan)
    assert torch.equal(z[:, :, :2], head) and not torch.equal(z[:, :, 2:], torch.zeros_like(z[:, :, 2:]))


def test_connect_loop_and_edit(pipe):
    a, b = moving_square(5), moving_square(5)[::-1].copy()
    v = pipe.generate("x", connect=(a, b), frames=4, steps=2).frames.numpy()
    assert np.array_equal(v[:5], a) and np.array_equal(v[-5:], b) and len(v) >= 14
    loop = pipe.generate("x", frames=9, loop=True, steps=2).frames
    assert len(loop) > 9
    edited = pipe.generate("a green square", edit=moving_square(9), strength=0.5, steps=2).frames
    assert edited.shape == (9, 32, 32, 3)


def test_incompatible_inputs_are_refused(pipe):
    with pytest.raises(ValueError, match="48x32 .*but the video is 32x32"):
        pipe.generate("x", image=np.zeros((32, 48, 3), np.uint8), height=32, width=32)
    with pytest.raises(ValueError, match="choose one mode"):
        pipe.generate("x", image=moving_square()[0], extend=moving_square())
    with pytest.raises(ValueError, match="strength"):
        pipe.generate("x", edit=moving_square(), strength=1.5)


def test_cli_writes_mp4_with_asked_frames_and_size(model_dir, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    assert main(["generate", "a red ball", "--model", str(model_dir), "--frames", "9", "--height", "32",
                 "--width", "48", "--steps", "2", "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)  # the path is printed last
    frames, fps = read_video(out)
    assert frames.shape == (9, 32, 48, 3) and fps == 8
    assert main(["generate", "a red ball", "--model", str(model_dir), "--frames", "1", "-o", str(tmp_path / "i.mp4"), "-q"]) == 0
    assert read_video(tmp_path / "i.png")[0].shape == (1, 32, 32, 3)


def test_cli_reads_a_repeated_prompt_from_the_prompt_cache(model_dir, tmp_path, monkeypatch):
    import tenku.models.text as text

    monkeypatch.setenv("TENKU_CACHE", str(tmp_path / "cache"))
    args = ["generate", "a red ball", "--model", str(model_dir), "--frames", "5", "--steps", "2", "-q", "-o"]
    assert main(args + [str(tmp_path / "a.mp4")]) == 0
    assert len(list((tmp_path / "cache" / "prompts").glob("*.safetensors"))) == 1
    monkeypatch.setattr(text, "_ENCODERS", {})  # as a fresh process

    def no_model(*a):
        raise AssertionError("the text encoder was loaded for a cached prompt")

    monkeypatch.setattr(text.TextEncoder, "_load", no_model)
    assert main(args + [str(tmp_path / "b.mp4")]) == 0
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_cli_errors_are_clear(model_dir, tmp_path, capsys):
    assert main(["generate", "x", "--model", str(model_dir), "--frames", "8"]) == 2
    assert "nearest valid: 5 or 9" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    for f in ("config.json", "vae.safetensors"):
        (tmp_path / "broken" / f).write_bytes((model_dir / f).read_bytes())
    data = (model_dir / "dit.safetensors").read_bytes()
    (tmp_path / "broken" / "dit.safetensors").write_bytes(data[:100])
    assert main(["generate", "x", "--model", str(tmp_path / "broken")]) == 2
    assert "dit.safetensors" in capsys.readouterr().err


def test_init_model_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tenku.cli", "init-model", "--preset", "tiny", str(tmp_path / "m")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and (tmp_path / "m" / "dit.safetensors").is_file()


def test_two_stage_samples_frame_zero_as_an_image_then_animates_it(pipe, monkeypatch):
    from tenku import flow
    from tenku.flow.sampler import GuidedVelocity, sample

    T, h, w, steps, guidance = 3, 4, 4, 3, 4.0
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(1, pipe.cfg.vae.latent_channels, T, h, w, generator=g)
    text, mask = pipe.encode_prompt("a red ball moves to the left")
    shift = flow.shift_for_tokens(pipe.dit.num_tokens(1, h, w), pipe.cfg.flow)
    image = sample(GuidedVelocity(pipe.dit, text, mask, guidance), noise[:, :, :1], steps, shift, "euler")
    run = lambda: pipe.sample_latents("a red ball moves to the left", T, h, w, steps, guidance, "euler", seed=5)  # noqa: E731
    with torch.inference_mode():
        joint = run()
        monkeypatch.setattr(pipe.cfg.sample, "two_stage", True)
        two = run()
    assert torch.equal(two[:, :, :1], image)  # stage 1: the image from the text alone
    assert not torch.allclose(joint[:, :, :1], image)  # jointly sampled, frame 0 differs
    assert not torch.allclose(two[:, :, 1:], joint[:, :, 1:])  # stage 2 animates the given frame


def test_image_guidance_guides_the_first_stage_alone(pipe, monkeypatch):
    from tenku import flow
    from tenku.flow.sampler import GuidedVelocity, sample

    T, h, w, steps = 3, 4, 4, 3
    prompt = "a red ball moves to the left"
    noise = torch.randn(1, pipe.cfg.vae.latent_channels, T, h, w, generator=torch.Generator().manual_seed(5))
    text, mask = pipe.encode_prompt(prompt)
    shift = flow.shift_for_tokens(pipe.dit.num_tokens(1, h, w), pipe.cfg.flow)
    image = lambda g: sample(GuidedVelocity(pipe.dit, text, mask, g), noise[:, :, :1], steps, shift, "euler")  # noqa: E731
    run = lambda g: pipe.sample_latents(prompt, T, h, w, steps, g, "euler", seed=5)  # noqa: E731
    monkeypatch.setattr(pipe.cfg.sample, "two_stage", True)
    with torch.inference_mode():
        same = run(2.0)
        monkeypatch.setattr(pipe.cfg.sample, "image_guidance", 6.0)
        split = run(2.0)
        assert torch.equal(split[:, :, :1], image(6.0)) and not torch.allclose(split[:, :, :1], image(2.0))
        assert torch.equal(same[:, :, :1], image(2.0))
        assert not torch.allclose(split[:, :, 1:], same[:, :, 1:])  # animated from another first frame


def test_image_guidance_is_checked_like_guidance():
    from tenku.config import SampleConfig

    assert SampleConfig(image_guidance=None).image_guidance is None
    with pytest.raises(ValueError, match="sample.image_guidance must be in"):
        SampleConfig(image_guidance=-1.0)
    with pytest.raises(ValueError, match="sample.image_guidance must be a number"):
        SampleConfig(image_guidance="high")


def test_given_noise_shows_the_given_frame_noised_and_keeps_it_exact(pipe, monkeypatch):
    img = moving_square()[0]
    seen = []
    dit = pipe.dit

    def spy(x, t, text, mask):
        seen.append(t[0].clone())
        return dit(x, t, text, mask)

    monkeypatch.setattr(pipe.cfg.flow, "given_noise", 0.2)
    monkeypatch.setattr(pipe, "dit", spy)
    spy.num_tokens = dit.num_tokens
    v = pipe.generate("a red square moves right", frames=9, image=img, steps=2, seed=3)
    assert np.array_equal(v.frames[0].numpy(), img)  # the user's frame is kept
    assert all(t[0].item() == pytest.approx(0.1) for t in seen)  # the model saw it at given_noise / 2
    monkeypatch.setattr(pipe.cfg.flow, "given_noise", 0.0)
    seen.clear()
    pipe.generate("a red square moves right", frames=9, image=img, steps=2, seed=3)
    assert all(t[0].item() == 0.0 for t in seen)


def test_small_clips_decode_in_one_pass_with_the_chunked_numbers(pipe, monkeypatch):
    """decode_latents decodes a small clip whole (faster) and a large one chunk by chunk: the same pixels."""
    import tenku.pipeline as P

    z = torch.randn(1, pipe.cfg.vae.latent_channels, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    calls = []
    decode = pipe.vae.decode
    monkeypatch.setattr(pipe.vae, "decode", lambda x, chunked=True: calls.append(chunked) or decode(x, chunked))
    whole = pipe.decode_latents(z)
    monkeypatch.setattr(P, "WHOLE_DECODE_PIXELS", 0)
    chunked = pipe.decode_latents(z)
    assert calls == [False, True]
    assert whole.shape == chunked.shape == (9, 32, 32, 3)
    assert (whole.int() - chunked.int()).abs().max() <= 1  # uint8 rounding of float differences ~1e-6
