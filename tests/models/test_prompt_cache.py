import os

import pytest
import torch

from tenku.models.prompt_cache import PromptCache, default_dir
from tenku.models.text import TextEncoder, minilm_path

PROMPTS = ["a red ball bounces to the right", "a blue square falls"]


def test_a_second_encoder_reads_the_states_from_disk_without_loading_its_model(tmp_path):
    first = TextEncoder(minilm_path(), 48, disk_cache=tmp_path)
    states = first.encode_tokens(PROMPTS)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    second = TextEncoder(minilm_path(), 48, disk_cache=tmp_path)  # as in a fresh process
    again = second.encode_tokens(PROMPTS)
    assert second._model is None  # transformers' model was never built
    assert all(torch.equal(a, b) for a, b in zip(states, again))


def test_another_reading_of_the_text_does_not_share_files(tmp_path):
    last = TextEncoder(minilm_path(), 48, disk_cache=tmp_path).encode_tokens(PROMPTS[:1])[0]
    middle_enc = TextEncoder(minilm_path(), 48, layers=(3, 4), disk_cache=tmp_path)
    middle = middle_enc.encode_tokens(PROMPTS[:1])[0]
    assert middle_enc._model is not None and not torch.allclose(last, middle, atol=1e-3)
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    library = TextEncoder(minilm_path(), 48, disk_cache=tmp_path, backend="transformers")
    torch.testing.assert_close(library.encode_tokens(PROMPTS[:1])[0], last, rtol=0, atol=2e-5)
    assert library._model is not None and len(list(tmp_path.glob("*.safetensors"))) == 3  # computed by other code


def test_a_damaged_file_is_encoded_again_and_rewritten(tmp_path):
    enc = TextEncoder(minilm_path(), 48, disk_cache=tmp_path)
    want = enc.encode_tokens(PROMPTS[:1])[0]
    (path,) = tmp_path.glob("*.safetensors")
    path.write_bytes(path.read_bytes()[:50])  # truncated
    fresh = TextEncoder(minilm_path(), 48, disk_cache=tmp_path)
    assert torch.equal(fresh.encode_tokens(PROMPTS[:1])[0], want) and fresh._model is not None
    assert torch.equal(PromptCache(tmp_path, fresh.reading(), 384).get(PROMPTS[0]), want)  # rewritten whole


def test_a_file_for_another_prompt_or_width_is_not_trusted(tmp_path):
    cache = PromptCache(tmp_path, "r", 4)
    cache.put("a", torch.ones(3, 4))
    cache.path("b").write_bytes(cache.path("a").read_bytes())  # a file under the wrong name
    assert cache.get("b") is None and torch.equal(cache.get("a"), torch.ones(3, 4))
    assert PromptCache(tmp_path, "r", 8).get("a") is None  # states of another width


def test_the_folder_is_pruned_to_the_newest_files(tmp_path):
    cache = PromptCache(tmp_path, "r", 4, keep=4)
    for i in range(5):
        cache.put(str(i), torch.zeros(1, 4))
        os.utime(cache.path(str(i)), ns=(10**9 * (i + 1),) * 2)  # old, in order
    cache.put("newest", torch.zeros(1, 4))  # 6 files > 4 * 5 / 4: pruned to 4
    kept = {cache.get(p) is not None for p in ("0", "1")}, [cache.get(p) is not None for p in ("2", "3", "4", "newest")]
    assert kept == ({False}, [True] * 4)


def test_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TENKU_CACHE", "off")
    assert default_dir() is None
    monkeypatch.setenv("TENKU_CACHE", str(tmp_path))
    assert default_dir() == tmp_path / "prompts"
    monkeypatch.delenv("TENKU_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_dir() == tmp_path / "xdg" / "tenku" / "prompts"


def test_an_unwritable_cache_is_skipped(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    cache = PromptCache(tmp_path / "file" / "prompts", "r", 4)
    cache.put("a", torch.ones(1, 4))  # no error: the states are simply not kept
    assert cache.get("a") is None


def test_bad_layers_are_refused_before_any_loading():
    with pytest.raises(ValueError, match="hidden states 0..6"):
        TextEncoder(minilm_path(), 8, layers=(7,))
