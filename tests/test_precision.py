"""Where bf16 is used: the CPU feature check, the precision switch, and a pipeline sampling in bf16 autocast."""

import pytest
import torch

from tenku import precision
from tenku.pipeline import init_model, load_pipeline


def test_cpu_flags_and_native_bf16(tmp_path, monkeypatch):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\nCPU part\t: 0xd40\n")
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw\n")
    read = precision.cpu_flags
    assert "avx512_bf16" in read(x86) and "bf16" in read(arm) and read(tmp_path / "missing") == set()
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for info, native in ((x86, True), (arm, True), (old, False), (tmp_path / "missing", False)):
        flags = read(info)
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: flags)
        assert precision.native_bf16(cpu) is native and precision.native_bf16(cuda)
        assert precision.use_bf16("auto", cpu) is native
        assert precision.use_bf16("bf16", cpu) and not precision.use_bf16("fp32", cuda)
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.use_bf16("fp16", cpu)


def _dit_output_dtypes(pipe) -> tuple[set[torch.dtype], torch.Tensor]:
    seen = set()
    hook = pipe.dit.blocks[0].ffn[0].register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    try:
        latents = pipe.sample_latents("a red ball", 3, 8, 8, steps=2, guidance=3.0, sampler="euler", seed=0)
    finally:
        hook.remove()
    assert latents.dtype == torch.float32  # the sampler's state stays fp32 either way
    return seen, latents


def test_pipeline_samples_in_bf16_autocast_close_to_fp32(tmp_path):
    model = init_model(tmp_path / "tiny", "tiny", seed=0)
    pipes = {p: load_pipeline(model, precision=p) for p in ("fp32", "bf16")}
    torch.manual_seed(1)
    weights = {k: torch.randn_like(v) * 0.05 for k, v in pipes["fp32"].dit.state_dict().items()}
    for pipe in pipes.values():  # a random but non-degenerate transformer (zero-init outputs nothing)
        pipe.dit.load_state_dict(weights)
    (dt32, z32), (dt16, z16) = _dit_output_dtypes(pipes["fp32"]), _dit_output_dtypes(pipes["bf16"])
    assert dt32 == {torch.float32} and dt16 == {torch.bfloat16}
    assert not torch.equal(z32, z16)
    assert (z16 - z32).norm() < 0.05 * z32.norm()  # bf16 rounding, not another result
    with pytest.raises(ValueError, match="precision must be one of"):
        load_pipeline(model, precision="half")


def test_pipeline_compile_samples_like_eager_and_survives_a_broken_compiler(tmp_path, monkeypatch):
    model = init_model(tmp_path / "tiny", "tiny", seed=0)
    pipe = load_pipeline(model)
    torch.manual_seed(1)
    for param in pipe.dit.parameters():  # a random but non-degenerate transformer (zero-init outputs nothing)
        param.data.normal_(0, 0.05)
    eager = pipe.generate("a red ball", frames=5, height=32, width=32, steps=2, seed=0).frames

    def broken(module):  # a machine whose compiler fails: the pipeline must still generate, eagerly
        def call(*a, **k):
            raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    assert pipe.compile().net is not pipe.dit
    with pytest.warns(UserWarning, match="torch.compile failed"):
        again = pipe.generate("a red ball", frames=5, height=32, width=32, steps=2, seed=0).frames
    assert torch.equal(again, eager) and pipe.net.ok is False
