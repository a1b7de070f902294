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
