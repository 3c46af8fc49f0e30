"""The one rank record (DistInfo) and device choice; multi-process runs are covered in test_train.py."""

import pytest
import torch

from tenku.train import distributed
from tenku.train.distributed import DistInfo, pick_device
from tenku.train.state import load_checkpoint, save_checkpoint


def test_a_plain_process_is_the_default_record(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    info = distributed.init("cpu", strategy="fsdp")
    assert info == DistInfo() and info.main and not info.sharded  # nothing to shard over alone
    assert info.agree(True) and not info.agree(False)
    info.barrier()  # a no-op alone


def test_the_record_is_what_checkpoints_take(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gens = {"noise": torch.Generator().manual_seed(1)}
    path = save_checkpoint(tmp_path, 4, {"model": model}, {"model": opt}, gens, {"k": 1}, info=DistInfo())
    other = torch.nn.Linear(3, 2)
    out = load_checkpoint(path, {"model": other}, {"model": torch.optim.SGD(other.parameters(), lr=0.1)},
                          {"noise": torch.Generator()}, info=DistInfo())
    assert out["step"] == 4 and torch.equal(other.weight, model.weight)


def test_pick_device():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'cuda', got 'gpu'"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
