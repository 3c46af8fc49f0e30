import os

import pytest
import torch

from tenku.models.text import load_text_encoder, pad_tokens


@pytest.fixture(scope="module")
def enc():
    return load_text_encoder("minilm", 48)


def test_minilm_token_states_and_mask(enc):
    states, mask = enc.encode(["a red ball bounces to the right", "two balls"])
    assert states.shape[0] == 2 and states.shape[2] == enc.dim == 384
    assert mask[0].all() and mask[1].sum() < mask[0].sum()
    assert (states[1][~mask[1]] == 0).all()


def test_cache_and_batch_independence(enc):
    a, ma = enc.encode(["a blue square falls"])
    b, mb = enc.encode(["a much longer prompt about a green triangle that drifts slowly", "a blue square falls"])
    n = ma[0].sum()
    assert torch.allclose(a[0, :n], b[1, :n], atol=1e-5)
    assert "a blue square falls" in enc._cache


def test_colour_words_change_the_states(enc):
    red, _ = enc.encode(["a red ball"])
    green, _ = enc.encode(["a green ball"])
    assert not torch.allclose(red, green, atol=1e-3)


def test_missing_encoder_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_text_encoder(str(tmp_path / "t5"))


def test_pad_tokens():
    s, m = pad_tokens([torch.ones(2, 3), torch.ones(4, 3)])
    assert s.shape == (2, 4, 3) and m.sum().item() == 6


def test_pad_tokens_to_a_length():
    s, m = pad_tokens([torch.ones(2, 3), torch.ones(4, 3)], length=6)
    assert s.shape == (2, 6, 3) and m.sum(1).tolist() == [2, 4] and (s[0, 2:] == 0).all()


def test_loading_leaves_the_process_hugging_face_settings_alone(monkeypatch):
    from tenku.models.text import TextEncoder, minilm_path

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    enc = TextEncoder(minilm_path(), 8)  # local files only, without the environment variable
    assert enc.encode(["a red ball"])[0].shape[2] == 384
    assert "HF_HUB_OFFLINE" not in os.environ


@pytest.fixture(scope="module")
def library_enc():
    from tenku.models.text import TextEncoder, minilm_path

    return TextEncoder(minilm_path(), 48, backend="transformers")


def test_minilm_loads_through_its_own_class_exactly_as_auto_model_does(library_enc):
    from transformers import AutoModel

    from tenku.models.text import minilm_path, quiet_loading

    assert type(library_enc.model).__name__ == "BertModel"
    with quiet_loading():
        ref = AutoModel.from_pretrained(minilm_path(), local_files_only=True).eval()
    batch = library_enc.tokenizer(["a red ball bounces to the right", "two balls"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(library_enc.model(**batch).last_hidden_state, ref(**batch).last_hidden_state)


def test_default_backend_encodes_as_transformers_does(enc, library_enc):
    from tenku.models import bert
    from tenku.models.text import TextEncoder, minilm_path

    prompts = ["a red ball bounces to the right", "two balls", "a ruby orb sails skyward " * 12]
    states, mask = enc.encode(prompts)
    ref, ref_mask = library_enc.encode(prompts)
    assert isinstance(enc.model, bert.BertEncoder) and enc.tokenizer is None
    assert torch.equal(mask, ref_mask) and mask.shape[1] == 48
    torch.testing.assert_close(states, ref, rtol=0, atol=2e-5)
    mid = TextEncoder(minilm_path(), 48, layers=(3, 6)).encode(prompts)[0]
    torch.testing.assert_close(mid, TextEncoder(minilm_path(), 48, layers=(3, 6), backend="transformers").encode(prompts)[0],
                               rtol=0, atol=2e-5)
    with pytest.raises(ValueError, match="backend"):
        TextEncoder(minilm_path(), 48, backend="onnx")


def test_text_layers_average_the_chosen_hidden_states(enc, library_enc):
    from tenku.models.text import TextEncoder, minilm_path

    prompts = ["a ruby orb sails skyward", "a red ball"]
    last, mask = enc.encode(prompts)
    same, _ = load_text_encoder("minilm", 48, layers=(-1,)).encode(prompts)
    torch.testing.assert_close(same, last)  # the last layer alone is the default
    mid, mid_mask = load_text_encoder("minilm", 48, layers=(3, 6)).encode(prompts)
    assert torch.equal(mid_mask, mask) and not torch.allclose(mid, last, atol=1e-2)
    batch = library_enc.tokenizer(prompts[:1], return_tensors="pt")
    hs = library_enc.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           output_hidden_states=True).hidden_states
    torch.testing.assert_close(mid[0, : mask[0].sum()], (hs[3][0] + hs[6][0]) / 2, rtol=0, atol=2e-5)
    with pytest.raises(ValueError, match="out of range"):
        TextEncoder(minilm_path(), 8, layers=(7,))  # MiniLM has hidden states 0..6


def test_model_config_text_layers_round_trip_and_reject_repeats():
    from tenku.config import ModelConfig

    cfg = ModelConfig(text_layers=[3, 6])
    assert ModelConfig.from_dict(cfg.to_dict()).text_layers == [3, 6]
    assert ModelConfig.from_dict({}).text_layers == []  # configs written before the field read the last layer
    with pytest.raises(ValueError, match="repeat"):
        ModelConfig(text_layers=[3, 3])
