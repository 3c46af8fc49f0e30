"""Published Wan 2.1 text-to-video weights (a diffusers folder) as a Tenku model, by renaming keys.

A Wan 2.1 folder in the diffusers layout holds model_index.json and transformer/, vae/, text_encoder/,
tokenizer/, scheduler/. Each part maps onto Tenku's own code, so every Tenku mode (image-to-video, extend,
connect, loop, edit, sliding windows) and the chunked constant-memory VAE decode serve a Wan model unchanged:

  transformer/  WanTransformer3DModel -> tenku.models.dit.DiT (tenku/models/convert.py renames the keys; same block layout)
  vae/          AutoencoderKLWan -> tenku.models.vae.VideoVAE with VAEConfig.wan_layout; latents_mean/std from its
                config become the per-channel latent statistics
  text_encoder/ UMT5EncoderModel + tokenizer/, through `transformers` (ModelConfig.text_convention "wan")
  scheduler/    only its shift (`flow_shift`, or `shift`): Tenku samples with its own solvers (euler by default)
                on its grid shift_t(linspace(1, 0, steps + 1)), not with UniPC
Sampling defaults are Wan's published ones (diffusers' WanPipeline): 81 frames of 832x480 at 16 fps, 50
steps, guidance 5, negative prompt "". Nothing here imports diffusers and nothing is unpickled: weights are
read from safetensors files only. `convert_wan` writes the same model as a Tenku model directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from tenku.checkpoint import CheckpointError, _check_shapes, load_tensors, save_model_dir
from tenku.config import DiTConfig, FlowConfig, ModelConfig, SampleConfig, VAEConfig
from tenku.models.convert import diffusers_wan_to_tenku
from tenku.models.dit import DiT
from tenku.models.vae import VideoVAE

PIPELINE = "WanPipeline"
PARTS = {"transformer": "WanTransformer3DModel", "vae": "AutoencoderKLWan", "text_encoder": "UMT5EncoderModel",
         "tokenizer": None, "scheduler": None}  # None: any class
FLOW_SCHEDULERS = ("UniPCMultistepScheduler", "FlowMatchEulerDiscreteScheduler")
WAN_SAMPLE = dict(frames=81, max_frames=81, height=480, width=832, fps=16, steps=50, guidance=5.0)
TEXT_MAX_LENGTH = 512  # WanPipeline's max_sequence_length: every prompt is padded to it
LAYOUT = "a Wan 2.1 diffusers folder holds model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/"


class WanFolderError(CheckpointError):
    """A Wan folder is missing a part, holds another model, or has weights Tenku cannot read."""


def is_diffusers_folder(path: str | Path) -> bool:
    """A diffusers pipeline folder rather than a Tenku model directory (which has config.json)."""
    path = Path(path)
    return not (path / "config.json").is_file() and ((path / "model_index.json").is_file() or (path / "transformer").is_dir())


# ----------------------------------------------------------------------------- reading the folder

def _json(path: Path) -> dict:
    if not path.is_file():
        raise WanFolderError(f"{path}: file not found ({LAYOUT})")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WanFolderError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise WanFolderError(f"{path}: expected a JSON object")
    return d


def read_folder(path: str | Path) -> dict[str, dict]:
    """Every part's config, checked: the folder and its parts exist and name the classes Tenku maps."""
    path = Path(path)
    if not path.is_dir():
        raise WanFolderError(f"{path}: folder not found")
    index = _json(path / "model_index.json")
    if index.get("_class_name") != PIPELINE:
        raise WanFolderError(f"{path / 'model_index.json'}: _class_name {index.get('_class_name')!r}; Tenku runs Wan 2.1"
                             f" text-to-video folders ({PIPELINE!r}; image-to-video and Wan 2.2 are not supported)")
    if index.get("transformer_2") not in (None, [None, None]) or index.get("boundary_ratio") is not None:
        raise WanFolderError(f"{path / 'model_index.json'}: a two-transformer Wan 2.2 folder; Tenku runs Wan 2.1")
    configs = {}
    for part, klass in PARTS.items():
        if not (path / part).is_dir():
            raise WanFolderError(f"{path / part}: folder not found ({LAYOUT})")
        named = index.get(part)
        if klass is not None and (not isinstance(named, list) or len(named) != 2 or named[1] != klass):
            raise WanFolderError(f"{path / 'model_index.json'}: {part} is {named!r}, expected a {klass}")
    for part, name in (("transformer", "config.json"), ("vae", "config.json"), ("text_encoder", "config.json"),
                       ("scheduler", "scheduler_config.json"), ("tokenizer", "tokenizer_config.json")):
        configs[part] = _json(path / part / name)
    for part in ("transformer", "vae"):
        if configs[part].get("_class_name") != PARTS[part]:
            raise WanFolderError(f"{path / part / 'config.json'}: _class_name {configs[part].get('_class_name')!r},"
                                 f" expected {PARTS[part]!r}")
    if configs["text_encoder"].get("model_type") != "umt5":
        raise WanFolderError(f"{path / 'text_encoder' / 'config.json'}: model_type"
                             f" {configs['text_encoder'].get('model_type')!r}, expected 'umt5'")
    weight_files(path / "text_encoder", "model")  # present and safetensors, before anything is built
    return configs


def weight_files(folder: Path, stem: str) -> list[Path]:
    """The safetensors files of one part: `stem`.safetensors, or the shards its .index.json names."""
    single, index = folder / f"{stem}.safetensors", folder / f"{stem}.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        shards = sorted(set(_json(index).get("weight_map", {}).values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if not shards or missing:
            raise WanFolderError(f"{index}: shards missing: {missing or 'none listed'}")
        return [folder / s for s in shards]
    found = sorted(p.name for p in folder.iterdir() if p.is_file())
    raise WanFolderError(f"{folder}: no {single.name} (or sharded {index.name}); found {found}. Tenku reads only"
                         " safetensors weights (it never unpickles .bin files)")


def read_state(folder: Path, stem: str = "diffusion_pytorch_model") -> dict[str, torch.Tensor]:
    """All tensors of one part as float32 (the shards merged)."""
    state = {}
    for f in weight_files(folder, stem):
        state.update({k: v.float() for k, v in load_tensors(f).items()})
    return state


# ----------------------------------------------------------------------------- configs

def _need(cfg: dict, what: str, **expected) -> None:
    for key, want in expected.items():
        if cfg.get(key, want) != want:
            raise WanFolderError(f"{what}: {key} = {cfg.get(key)!r} is not supported (Wan 2.1 has {want!r})")


def dit_config(t: dict) -> DiTConfig:
    """WanTransformer3DModel config -> DiTConfig (text-to-video: no image branch)."""
    _need(t, "transformer/config.json", image_dim=None, added_kv_proj_dim=None, pos_embed_seq_len=None)
    if t.get("qk_norm") not in ("rms_norm_across_heads", None):
        raise WanFolderError(f"transformer/config.json: qk_norm {t.get('qk_norm')!r} is not supported")
    heads, head_dim = t["num_attention_heads"], t["attention_head_dim"]
    return DiTConfig(in_channels=t["in_channels"], out_channels=t["out_channels"], patch_size=tuple(t["patch_size"]),
                     dim=heads * head_dim, ffn_dim=t["ffn_dim"], num_layers=t["num_layers"], num_heads=heads,
                     text_dim=t["text_dim"], freq_dim=t["freq_dim"], qk_norm=t.get("qk_norm") is not None,
                     cross_attn_norm=bool(t.get("cross_attn_norm", True)), eps=float(t.get("eps", 1e-6)))


def vae_config(v: dict) -> VAEConfig:
    """AutoencoderKLWan config -> VAEConfig with Wan's layout (Wan 2.1: no residual blocks, no patching)."""
    _need(v, "vae/config.json", attn_scales=[], is_residual=False, patch_size=None, in_channels=3, out_channels=3,
          scale_factor_temporal=4)
    if v.get("decoder_base_dim") not in (None, v["base_dim"]):
        raise WanFolderError("vae/config.json: decoder_base_dim differs from base_dim (not Wan 2.1's VAE)")
    mult, down = list(v["dim_mult"]), list(v["temperal_downsample"])
    spatial = 2 ** (len(mult) - 1)
    if v.get("scale_factor_spatial", spatial) != spatial:
        raise WanFolderError(f"vae/config.json: scale_factor_spatial {v['scale_factor_spatial']} but dim_mult gives {spatial}")
    return VAEConfig(latent_channels=v["z_dim"], base_channels=v["base_dim"], channel_mult=tuple(mult),
                     num_res_blocks=v["num_res_blocks"], spatial_compression=spatial,
                     temporal_down_levels=tuple(i + 1 for i, d in enumerate(down) if d), mid_attention=True,
                     wan_layout=True)


def scheduler_shift(s: dict) -> float:
    """The timestep shift of a flow-matching scheduler config."""
    name = s.get("_class_name")
    if name not in FLOW_SCHEDULERS or (name == "UniPCMultistepScheduler" and not s.get("use_flow_sigmas")):
        raise WanFolderError(f"scheduler/scheduler_config.json: {name!r} is not a flow-matching scheduler"
                             f" ({' or '.join(FLOW_SCHEDULERS)} with flow sigmas)")
    if s.get("use_dynamic_shifting"):
        raise WanFolderError("scheduler/scheduler_config.json: use_dynamic_shifting is not supported (Wan uses one shift)")
    shift = float(s.get("flow_shift") if name == "UniPCMultistepScheduler" else s.get("shift", 1.0))
    if not 1.0 <= shift <= 1000.0:
        raise WanFolderError(f"scheduler/scheduler_config.json: shift {shift} outside [1, 1000]")
    return shift


def model_config(path: str | Path, configs: dict[str, dict]) -> ModelConfig:
    """The Tenku ModelConfig of a Wan folder: its sizes, its shift, Wan's sampling defaults and text convention."""
    dit, vae = dit_config(configs["transformer"]), vae_config(configs["vae"])
    if dit.in_channels != vae.latent_channels or dit.out_channels != vae.latent_channels:
        raise WanFolderError(f"transformer in/out channels {dit.in_channels}/{dit.out_channels} != VAE z_dim {vae.latent_channels}")
    if configs["text_encoder"].get("d_model") != dit.text_dim:
        raise WanFolderError(f"text_encoder d_model {configs['text_encoder'].get('d_model')} != transformer text_dim {dit.text_dim}")
    shift = scheduler_shift(configs["scheduler"])
    # shift_for_tokens(n) = min(max(base * sqrt(n / 1), 1), max) = shift for every n >= 1: one fixed shift, as Wan.
    flow = FlowConfig(base_shift=shift, shift_ref_tokens=1, max_shift=shift)
    return ModelConfig(vae=vae, dit=dit, flow=flow, sample=SampleConfig(**WAN_SAMPLE),
                       text_encoder=str((Path(path) / "text_encoder").resolve()), text_max_length=TEXT_MAX_LENGTH,
                       text_convention="wan", negative_prompt="")


# ----------------------------------------------------------------------------- weights

_VAE_RENAMES = (("conv_shortcut.", "shortcut."), ("resample.1.", "conv."), ("to_qkv.", "qkv."))


def _vae_blocks(v: dict, part: str) -> dict[str, int]:
    """diffusers prefix -> index in Tenku's encoder.blocks / decoder.blocks (both list blocks in the same order)."""
    levels, n = len(v["dim_mult"]), v["num_res_blocks"]
    mid = [f"{part}.mid_block.resnets.0", f"{part}.mid_block.attentions.0", f"{part}.mid_block.resnets.1"]
    if part == "encoder":
        names = [f"encoder.down_blocks.{i}" for i in range(levels * n + levels - 1)] + mid
    else:
        names = list(mid)
        for i in range(levels):
            names += [f"decoder.up_blocks.{i}.resnets.{j}" for j in range(n + 1)]
            names += [f"decoder.up_blocks.{i}.upsamplers.0"] if i < levels - 1 else []
    return {name: i for i, name in enumerate(names)}


def vae_state(state: dict[str, torch.Tensor], v: dict) -> dict[str, torch.Tensor]:
    """Rename an AutoencoderKLWan state dict to VideoVAE keys (wan_layout) and add the latent statistics."""
    blocks = {**_vae_blocks(v, "encoder"), **_vae_blocks(v, "decoder")}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] in ("quant_conv", "post_quant_conv"):
            new = ("encoder." if parts[0] == "quant_conv" else "decoder.") + key
        elif parts[1] in ("conv_in", "conv_out", "norm_out"):
            new = key
        else:
            prefix = next((".".join(parts[:k]) for k in (5, 4, 3) if ".".join(parts[:k]) in blocks), None)
            if prefix is None:
                raise WanFolderError(f"vae: no Tenku name for {key!r}")
            rest = key[len(prefix) + 1:]
            for a, b in _VAE_RENAMES:
                rest = rest.replace(a, b)
            new = f"{parts[0]}.blocks.{blocks[prefix]}.{rest}"
        if new.endswith("gamma"):
            value = value.flatten()  # (C, 1, 1[, 1]) channels-first -> (C,), Tenku's norms are channels-last
        elif new.endswith(("qkv.weight", "proj.weight")):
            value = value.flatten(1)  # 1x1 Conv2d (out, in, 1, 1) -> Linear (out, in)
        out[new] = value
    out["latent_mean"] = torch.tensor(v["latents_mean"], dtype=torch.float32)
    out["latent_std"] = torch.tensor(v["latents_std"], dtype=torch.float32)
    return out


def _assign(build, state: dict[str, torch.Tensor], what: Path) -> torch.nn.Module:
    """Build on the meta device and take the tensors as the weights (no second copy of a large model)."""
    with torch.device("meta"):
        module = build()
    own = {k: tuple(t.shape) for k, t in module.state_dict().items()}
    _check_shapes(what, own, {k: tuple(t.shape) for k, t in state.items()})
    module.load_state_dict(state, assign=True)
    return module


def load_wan(path: str | Path) -> tuple[ModelConfig, VideoVAE, DiT]:
    """(ModelConfig, VideoVAE, DiT) from a Wan 2.1 diffusers folder; WanFolderError names what is wrong."""
    path = Path(path)
    configs = read_folder(path)
    cfg = model_config(path, configs)
    try:
        dit_state = diffusers_wan_to_tenku(read_state(path / "transformer"))
    except KeyError as e:
        raise WanFolderError(f"{path / 'transformer'}: {e.args[0]}") from None
    dit = _assign(lambda: DiT(cfg.dit), dit_state, path / "transformer")
    vae = _assign(lambda: VideoVAE(cfg.vae), vae_state(read_state(path / "vae"), configs["vae"]), path / "vae")
    return cfg, vae, dit


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # a hard link: the multi-GB text encoder costs no space on the same file system
    except OSError:
        shutil.copy2(src, dst)


def convert_wan(path: str | Path, out: str | Path) -> Path:
    """Write a Tenku model directory from a Wan 2.1 folder: config.json, vae/dit safetensors (float32) and the
    folder's text_encoder/ and tokenizer/ (hard-linked where possible), so `out` stands on its own."""
    path, out = Path(path), Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose a new folder")
    cfg, vae, dit = load_wan(path)
    for part in ("text_encoder", "tokenizer"):
        shutil.copytree(path / part, out / part, copy_function=_link_or_copy, dirs_exist_ok=True)
    cfg.text_encoder = "text_encoder"  # inside the model directory (checkpoint.load_model_config resolves it)
    return save_model_dir(out, cfg, vae, dit)  # config.json last: a directory with one is complete
