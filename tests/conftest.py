import os

import pytest
import torch

# Two cores are shared by the whole suite; one intra-op thread per test process keeps runs predictable.
torch.set_num_threads(max(1, int(os.environ.get("TENKU_TEST_THREADS", "1"))))


@pytest.fixture
def tiny_cfg():
    from tenku.config import preset

    return preset("tiny")


@pytest.fixture(autouse=True, scope="session")
def _prompt_cache_in_a_temporary_folder(tmp_path_factory):
    """`tenku generate` keeps prompts' text states in the user's cache; the suite never writes to the home folder."""
    old = os.environ.get("TENKU_CACHE")
    os.environ["TENKU_CACHE"] = str(tmp_path_factory.mktemp("tenku-cache"))
    yield
    if old is None:
        os.environ.pop("TENKU_CACHE", None)
    else:
        os.environ["TENKU_CACHE"] = old
