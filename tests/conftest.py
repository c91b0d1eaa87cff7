"""Fixtures shared by the test modules (one torch thread; tiny embedded ADE20K-layout data for the OASIS tests)."""
import pytest
import torch

from gan_core.data.embedded_ade import EmbeddedADEConfig, build


@pytest.fixture
def one_thread():
    """One torch thread: on a loaded 2-core machine OpenMP spinning makes 2 threads ~20x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _ade_root(factory, n_train):
    return build(factory.mktemp("ade"), EmbeddedADEConfig(n_train=n_train, n_val=2, height=32, width=32, seed=0))


@pytest.fixture(scope="module")
def ade_root(tmp_path_factory):
    """A tiny embedded ADE20K-layout dataset: 6 train / 2 val scenes of 32x32."""
    return _ade_root(tmp_path_factory, 6)


@pytest.fixture(scope="module")
def ade_root_small(tmp_path_factory):
    """4 train / 2 val scenes of 32x32 (the ablation and editing tests)."""
    return _ade_root(tmp_path_factory, 4)
