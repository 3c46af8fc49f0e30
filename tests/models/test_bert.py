import json

import pytest
import torch

from tenku.models import bert
from tenku.models.text import minilm_path, quiet_loading

PROMPTS = ["a red ball bounces to the right", "two balls", "", "Ünïcödé café — naïve 🎈 <b>tags</b> &amp; tabs\t!",
           "a much longer prompt about a green triangle that drifts slowly " * 6, "   ", "\x00", "日本語のプロンプト"]


@pytest.fixture(scope="module")
def reference():
    from transformers import AutoTokenizer, BertModel

    with quiet_loading():
        tok = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
        model = BertModel.from_pretrained(minilm_path(), local_files_only=True).eval()
    return tok, model


def test_token_ids_and_every_hidden_state_match_transformers(reference):
    tok, model = reference
    ours = bert.BertEncoder(minilm_path(), minilm_path())
    ids, mask = ours.tokenize(PROMPTS, max_length=48)
    batch = tok(PROMPTS, padding=True, truncation=True, max_length=48, return_tensors="pt")
    assert torch.equal(ids, batch["input_ids"]) and torch.equal(mask, batch["attention_mask"].bool())
    assert ids.shape == (8, 48) and mask.sum(1)[2] == mask.sum(1)[5] == 2  # truncated; "" and "   ": [CLS] [SEP]
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states
    got = ours.hidden_states(ids, mask)
    assert len(got) == len(ref) == 7
    for g, r in zip(got, ref):
        torch.testing.assert_close(g[mask], r[mask], rtol=0, atol=2e-5)  # real tokens; padding is never read


def test_supports_only_the_bert_folders_it_reproduces(tmp_path):
    assert bert.supports(minilm_path(), minilm_path())
    assert not bert.supports(minilm_path(), tmp_path)  # no tokenizer.json
    config = json.loads((minilm_path() / "config.json").read_text())
    for change in ({"model_type": "t5"}, {"hidden_act": "gelu_new"}, {"position_embedding_type": "relative_key"}):
        (tmp_path / "config.json").write_text(json.dumps(config | change))
        (tmp_path / "model.safetensors").write_bytes(b"")
        assert not bert.supports(tmp_path, minilm_path()), change
    assert not bert.supports(tmp_path / "missing", minilm_path())
