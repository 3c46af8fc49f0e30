"""`tenku worldbench`: a clear failure when nothing can be scored, splits limited to the world's, progress bars."""

import json

import pytest

from tenku.cli import main
from tenku.world.make import make_dataset


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("wbcli") / "w", 2, "id", seed=3, workers=1, progress=False)


def test_score_with_the_wrong_videos_folder_exits_2_with_a_message(manifest, tmp_path, capsys):
    code = main(["worldbench", "score", "--manifest", str(manifest), "--videos", str(tmp_path),
                 "--out", str(tmp_path / "out"), "--floor-count", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing could be scored: 0 of 2 clips" in err and "--videos" in err
    assert json.loads((tmp_path / "out" / "report.json").read_text())["scored"] == 0


def test_score_shows_progress_and_chance_rows(manifest, tmp_path, capsys):
    assert main(["worldbench", "score", "--manifest", str(manifest), "--videos", str(manifest.parent),
                 "--out", str(tmp_path), "--floor-count", "2"]) == 0
    out = capsys.readouterr()
    assert "score: 100%" in out.err and "floor: 100%" in out.err
    assert "uniform noise" in out.out and "mirrored" in out.out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["chance"]["uniform noise"]["no_object"]["mean"] == 1.0


def test_run_accepts_only_the_worlds_splits(capsys):
    with pytest.raises(SystemExit) as e:
        main(["worldbench", "run", "--split", "validation"])
    assert e.value.code == 2 and "invalid choice: 'validation'" in capsys.readouterr().err


def test_run_takes_the_device_flag_every_command_takes(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["worldbench", "run", "--device", "gpu"])
    assert e.value.code == 2 and "argument --device: invalid choice: 'gpu'" in capsys.readouterr().err
    assert main(["worldbench", "run", "--model", str(tmp_path / "none"), "--device", "cpu"]) == 2
    assert "tenku: error: " in capsys.readouterr().err  # a missing model: one line, no traceback
