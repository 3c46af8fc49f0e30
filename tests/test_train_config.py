"""TrainConfig: presets, YAML and --set overrides, clear errors."""

import json

import pytest

from tenku.train_config import TRAIN_PRESETS, TrainConfig, from_dict, parse_sets, resolve


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
