import importlib.util
from pathlib import Path

import pytest

from mvvton.training.components import build_components
from mvvton.training.config import ModelConfig

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str):
    """Import a training/ script (not a package) as a module."""
    path = REPO / "training" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"mvvton_training_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def train_script():
    return load_script("train_mvvton")


@pytest.fixture(scope="session")
def vae_script():
    return load_script("train_vae")


@pytest.fixture(scope="module")
def tiny_components(repo_root):
    """Random tiny components of configs/model/tiny (one set per test module: tests change `requires_grad`)."""
    return build_components(ModelConfig(component_configs=str(repo_root / "configs/model/tiny")), seed=0)


@pytest.fixture
def tiny_module_and_batch(tiny_components):
    """`MVVTONTrainingModule` over the module's tiny components and a collated 2-sample 64x64 synthetic batch."""
    from torch.utils.data import default_collate

    from mvvton.data.synthetic import SyntheticTryOnDataset
    from mvvton.training.objective import MVVTONTrainingModule

    c = tiny_components
    module = MVVTONTrainingModule(c["unet"], c["garment_encoder"], c["pose_encoder"], c["image_encoder"])
    dataset = SyntheticTryOnDataset(2, 64, 64)
    return module, default_collate([dataset[0], dataset[1]])
