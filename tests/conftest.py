import os

import pytest
import torch

# Two cores are shared by the whole suite; one intra-op thread per test process keeps runs predictable.
torch.set_num_threads(max(1, int(os.environ.get("TENKU_TEST_THREADS", "1"))))


@pytest.fixture
def tiny_cfg():
    from tenku.config import preset

    return preset("tiny")
