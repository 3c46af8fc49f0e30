"""bench/sampler_sweep.py: settings parse strictly and set exactly what they name on the pipeline."""

import importlib.util
from pathlib import Path

import pytest

from tenku.pipeline import init_model, load_pipeline

spec = importlib.util.spec_from_file_location("sampler_sweep", Path(__file__).parents[1] / "bench" / "sampler_sweep.py")
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)


def test_settings_parse_and_bad_ones_are_refused():
    assert sweep.parse_setting("base:") == ("base", {})
    assert sweep.parse_setting("m:g2=3,gt=0.1,s1=5") == ("m", {"g2": 3.0, "gt": 0.1, "s1": 5})
    with pytest.raises(ValueError, match="unknown key 'guidance'"):
        sweep.parse_setting("m:guidance=3")
    with pytest.raises(ValueError, match="no name"):
        sweep.parse_setting(":g2=3")


def test_apply_sets_each_stage_and_resets_between_settings(tmp_path, monkeypatch):
    pipe = load_pipeline(init_model(tmp_path / "tiny", "tiny", seed=0))
    defaults = {"g1": None, "g2": 4.0, "gt": 0.05, "s2": 10}
    seen = []
    monkeypatch.setattr(type(pipe), "_first_frame", lambda self, noise, text, mask, steps, guidance, sampler:
                        seen.append(steps))
    run = sweep.apply(pipe, {"g1": 6.0, "g2": 3.0, "gt": 0.1, "s1": 7, "s2": 20}, defaults)
    assert run == {"steps": 20, "guidance": 3.0}
    assert pipe.cfg.sample.image_guidance == 6.0 and pipe.cfg.flow.given_noise == pytest.approx(0.2)
    pipe._first_frame(None, None, None, 20, 3.0, "euler")
    run = sweep.apply(pipe, {}, defaults)  # the next setting starts from the model's own values
    assert run == {"steps": 10, "guidance": 4.0}
    assert pipe.cfg.sample.image_guidance is None and pipe.cfg.flow.given_noise == pytest.approx(0.1)
    pipe._first_frame(None, None, None, 10, 4.0, "euler")
    assert seen == [7, 10]  # the image stage got its own steps, then the request's again
