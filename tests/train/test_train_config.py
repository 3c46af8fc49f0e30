"""TrainConfig: presets, YAML and --set overrides, clear errors."""

import json

import pytest

from tenku.train.config import TRAIN_PRESETS, TrainConfig, from_dict, parse_sets, resolve


def test_presets_resolve_and_name_model_presets():
    for name in TRAIN_PRESETS:
        cfg = resolve(name)
        assert cfg.model_config().dit.in_channels == cfg.model_config().vae.latent_channels


def test_yaml_then_set_then_flags(tmp_path):
    y = tmp_path / "run.yaml"
    y.write_text("lr: 3e-4\nsteps: 50\nper_frame_t: true\ncond_probs: {none: 1.0}\nsizes: [[64, 64]]\n")
    cfg = resolve("tiny-test", y, ["steps=70", "model.dit.num_layers=3", "fps=none", "ema_decay=0"], out="RUN")
    assert cfg.lr == pytest.approx(3e-4) and isinstance(cfg.lr, float)  # YAML's "3e-4" string becomes a float
    assert cfg.steps == 70 and cfg.per_frame_t is True and cfg.cond_probs == {"none": 1.0}
    assert cfg.sizes == [[64, 64]] and cfg.fps is None and cfg.out == "RUN" and cfg.ema_decay == 0.0
    assert cfg.model_config().dit.num_layers == 3
    # the resolved config round-trips through config.json
    assert from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("sets, match", [
    (["learning_rate=1"], "unknown training option 'learning_rate'"),
    (["steps=ten"], "steps: cannot use 'ten'"),
    (["per_frame_t=maybe"], "per_frame_t"),
    (["strategy=horovod"], "strategy must be one of"),
    (["frames=[1, 8]"], "1 \\+ 4k"),
    (["cond_probs={sideways: 1}"], "cond_probs"),
    (["lr"], "key=value"),
    (["vae_crop=30"], "multiple of the VAE's stride"),
])
def test_bad_overrides_are_clear(sets, match):
    with pytest.raises(ValueError, match=match):
        resolve("tiny-test", sets=sets)


def test_unknown_yaml_key_and_model_override(tmp_path):
    y = tmp_path / "bad.yaml"
    y.write_text("batch: 4\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown training option 'batch'"):
        resolve("tiny-test", y)
    with pytest.raises(ValueError, match="unknown key 'depth'"):
        resolve("tiny-test", sets=["model.dit.depth=4"]).model_config()
    with pytest.raises(ValueError, match="unknown training preset"):
        resolve("huge")


def test_parse_sets_keeps_equals_in_values():
    assert parse_sets(["sample_prompts=['a=b']"]) == {"sample_prompts": "['a=b']"}
    assert resolve("tiny-test", sets=["sample_prompts=['a=b']"]).sample_prompts == ["a=b"]
    assert TrainConfig().task == "dit"


def test_presets_are_train_configs_that_resolving_never_changes():
    assert all(isinstance(p, TrainConfig) for p in TRAIN_PRESETS.values())
    cfg = resolve("tiny-test", sets=["model.dit.num_layers=3"])
    cfg.sizes.append([64, 64])
    cfg.model_overrides["dit"]["num_heads"] = 1
    assert TRAIN_PRESETS["tiny-test"].sizes == [[32, 32]] and TRAIN_PRESETS["tiny-test"].model_overrides == {}
    assert resolve("tiny-test").sizes == [[32, 32]]


def test_vae_crop_is_checked_against_the_model_the_run_builds(tmp_path):
    from tenku.checkpoint import FORMAT_VERSION, save_json
    from tenku.config import preset

    # tiny's VAE has stride 8 and world-xs's 4: a 12-pixel crop fits world-xs only, however it is chosen
    assert resolve("tiny-test", sets=["model=world-xs", "vae_crop=12"]).vae_crop == 12
    with pytest.raises(ValueError, match="multiple of the VAE's stride 8"):
        resolve("tiny-test", sets=["model=world-xs", "vae_crop=12",
                                   "model_overrides={vae: {spatial_compression: 8, channel_mult: [1, 2, 4, 4]}}"])
    smaller = "model_overrides={vae: {spatial_compression: 4, channel_mult: [1, 2, 2]}}"
    assert resolve("tiny-test", sets=["vae_crop=12", smaller]).model_config().vae.spatial_compression == 4
    model_dir = tmp_path / "xs"
    model_dir.mkdir()
    save_json(model_dir / "config.json", {"format_version": FORMAT_VERSION, **preset("world-xs").to_dict()})
    assert resolve("tiny-test", sets=["vae_crop=12"], init_from=str(model_dir)).vae_crop == 12  # init_from's VAE
    with pytest.raises(ValueError, match="stride 8"):
        resolve("tiny-test", sets=["vae_crop=12"])


def test_command_line_flags_come_from_the_fields_and_read_like_set():
    import argparse
    import dataclasses

    from tenku.train.config import add_arguments, flags

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--batch-size", "3", "--per-frame-t", "--lr", "3e-4", "--vae", "V", "--init-from", "none",
                         "--sizes", "[[64, 64]]", "--fps", "none", "--progress", "false", "--steps", "7"])
    cfg = resolve("tiny-test", sets=["steps=5", "batch_size=9"], task="vae", **flags(args))  # flags win over --set
    assert (cfg.batch_size, cfg.per_frame_t, cfg.lr, cfg.vae_from, cfg.init_from) == (3, True, 3e-4, "V", None)
    assert cfg.sizes == [[64, 64]] and cfg.fps is None and cfg.progress is False and cfg.steps == 7
    assert cfg.task == "vae" and flags(p.parse_args([])) == {}  # a flag not given leaves the field alone
    assert flags(p.parse_args(["--lora", "8"])) == {"lora_rank": "8"}  # the short spelling of --lora-rank
    dests = {a.dest for a in p._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} - dests == {"task"}  # the positional
    with pytest.raises(ValueError, match="flag: batch_size: cannot use 'many' as int"):
        resolve("tiny-test", **flags(p.parse_args(["--batch-size", "many"])))
    # Lists are space-separated, as in `tenku world make --sizes 64x64 48x80` and `tenku cache --frames 1 17`.
    listed = resolve("tiny-test", task="vae", **flags(p.parse_args(["--sizes", "64x64", "48x80", "--frames", "1", "17"])))
    assert listed.sizes == [[64, 64], [48, 80]] and listed.frames == [1, 17]
    with pytest.raises(ValueError, match="size '0x5': height and width must be positive"):  # as cli_args.size says
        flags(p.parse_args(["--sizes", "0x5"]))


def test_bad_flag_through_the_command_exits_2_with_the_message(tmp_path, capsys):
    from tenku.cli import main

    assert main(["train", "dit", "--out", str(tmp_path / "run"), "--batch-size", "many"]) == 2
    assert "flag: batch_size: cannot use 'many' as int" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
