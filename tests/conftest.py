import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("MVVTON_RUN_SLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED}: reference fixtures and sample photos unavailable")
    return SHARED


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A tiny SynthMVG dataset (2 identities at 128x96, one held out as `test`), generated once per session."""
    from mvvton.data.synth import SynthConfig, generate_synthmvg

    root = tmp_path_factory.mktemp("synth")
    generate_synthmvg(root, SynthConfig(identities=2, height=128, width=96, seed=3, test_fraction=0.5), workers=1)
    return root


# hypothesis: a quick default profile for local runs, >= 500 examples in CI (HYPOTHESIS_PROFILE=ci, set by .ci/run)
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )
    settings.register_profile(
        "ci", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
except ImportError:  # hypothesis is in the dev extra; the property tests importorskip it
    pass
