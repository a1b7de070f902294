"""mvvton.training.config: YAML round trip, strict keys, --set overrides, type coercion, typed errors, CLI --help."""

import importlib
import sys
import warnings
from pathlib import Path

import pytest

from mvvton.errors import InvalidConfigError
from mvvton.training.config import (
    LossConfig,
    ModelConfig,
    TrainConfig,
    VAETrainConfig,
    flat_config,
    load_config,
    save_config,
)

DATA = Path(__file__).parent / "data"
# `key: default` lines of TrainConfig fields added after 0.1.0 (all in the loss section)
ADDED_SINCE_0_1_0 = (
    "min_timestep: 0",
    "max_timestep: null",
    "pixel_lowpass_sigma: 0.0",
    "detail_weight: 0.0",
    "detail_highpass_sigma: 1.0",
    "detail_window_sigma: 2.0",
    "detail_skip_prewarp_holes: false",
)


def test_round_trip(tmp_path, repo_root):
    config = load_config(repo_root / "configs/train/tiny.yaml", ["optim.learning_rate=3e-5", "loss.vgg_weight=0"])
    path = tmp_path / "resolved.yaml"
    save_config(config, path)
    assert load_config(path) == config
    assert isinstance(config.optim.learning_rate, float) and config.optim.learning_rate == 3e-5


def test_defaults_without_file():
    assert load_config(None) == TrainConfig()


@pytest.mark.parametrize("name", ["tiny.yaml", "synthmvg.yaml", "mvg_finetune.yaml"])
def test_shipped_configs_load(repo_root, name):
    path = repo_root / "configs/train" / name
    if not path.is_file():
        pytest.skip(f"{name} not written yet")
    assert isinstance(load_config(path), TrainConfig)


def test_unknown_keys_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  learning_rat: 1.0e-4\n")
    with pytest.raises(ValueError, match="learning_rat"):
        load_config(path)
    path.write_text("optimizer:\n  learning_rate: 1.0e-4\n")
    with pytest.raises(ValueError, match="optimizer"):
        load_config(path)
    with pytest.raises(ValueError, match="nope"):
        load_config(None, ["schedule.nope=3"])


def test_overrides_and_coercion():
    config = load_config(
        None,
        [
            "optim.learning_rate=1e-5",  # YAML 1.1 reads this as a string: must still become a float
            "schedule.max_train_steps=20",
            "optim.use_ema=true",
            "optim.max_grad_norm=null",
            "checkpointing.checkpoints_total_limit=3",
            "data.root=/some/where",
            "model.trainable=released",
        ],
    )
    assert config.optim.learning_rate == 1e-5
    assert config.schedule.max_train_steps == 20 and isinstance(config.schedule.max_train_steps, int)
    assert config.optim.use_ema is True
    assert config.optim.max_grad_norm is None
    assert config.checkpointing.checkpoints_total_limit == 3
    assert config.data.root == "/some/where"
    assert config.model.trainable == "released"
    # later overrides win
    assert load_config(None, ["seed=1", "seed=2"]).seed == 2


@pytest.mark.parametrize(
    "override",
    [
        "schedule.max_train_steps=2.5",
        "optim.use_ema=maybe",
        "optim.learning_rate=fast",
        "model.trainable=everything",
        "loss.cfg_dropout_prob=1.5",
        "loss.prewarp_dropout_prob=-0.1",
        "optim.gate_lr_multiplier=0",
        "data.height=null",
        "optim=3",
    ],
)
def test_bad_values_rejected(override):
    with pytest.raises(ValueError):
        load_config(None, [override])


def test_vae_config_list_field():
    config = load_config(None, ["data.image_keys=person,garment_front", "kl_weight=1e-6"], cls=VAETrainConfig)
    assert config.data.image_keys == ["person", "garment_front"]
    assert config.kl_weight == 1e-6


def test_cli_help_and_args(train_script, repo_root):
    with pytest.raises(SystemExit) as exit_info:
        train_script.parse_args(["--help"])
    assert exit_info.value.code == 0
    args = train_script.parse_args(
        [
            "--config",
            str(repo_root / "configs/train/tiny.yaml"),
            "--set",
            "seed=5",
            "--set",
            "optim.learning_rate=2e-4",
            "--resume",
            "latest",
            "--output_dir",
            "/tmp/x",
        ]
    )
    config = train_script.config_from_args(args)
    assert (config.seed, config.optim.learning_rate) == (5, 2e-4)
    assert config.resume_from_checkpoint == "latest" and config.output_dir == "/tmp/x"


def config_class(path: Path) -> type:
    return VAETrainConfig if path.name.startswith("vae_") else TrainConfig


def test_every_shipped_config_loads(repo_root):
    paths = sorted((repo_root / "configs/train").glob("*.yaml"))
    assert len(paths) >= 9
    for path in paths:
        config = load_config(path, cls=config_class(path))
        assert isinstance(config, config_class(path)), path


@pytest.mark.parametrize("name", ["train_config_saved_by_0.1.0.yaml", "vae_train_config_saved_by_0.1.0.yaml"])
def test_configs_saved_by_the_previous_release_load_and_save_byte_identical(tmp_path, name):
    """The files in tests/training/data were written by the dataclass-based `save_config` of mvvton 0.1.0 (main
    25b1a2f), from configs/train/synthmvg_taef2.yaml and vae_synthmvg_decoder.yaml, like the train_config.yaml of a
    running training: they must load, and saving them again must give the same bytes."""
    saved = DATA / name
    config = load_config(saved, cls=config_class(saved))
    save_config(config, tmp_path / name)
    resaved = (tmp_path / name).read_text().splitlines(keepends=True)
    # keys added after 0.1.0 are written at their defaults; apart from those lines the bytes are the same
    added = [line for line in resaved if line.strip() in ADDED_SINCE_0_1_0]
    assert [line for line in resaved if line not in added] == saved.read_text().splitlines(keepends=True)
    if name.startswith("train_config"):
        assert sorted(line.strip() for line in added) == sorted(ADDED_SINCE_0_1_0)


def test_saved_config_round_trips(tmp_path, repo_root):
    overrides = ["optim.learning_rate=1e-5", "loss.snr_gamma=5", "model.prediction_type=v_prediction", "seed=3"]
    config = load_config(repo_root / "configs/train/tiny.yaml", overrides)
    save_config(config, tmp_path / "train_config.yaml")
    reloaded = load_config(tmp_path / "train_config.yaml")
    assert reloaded == config and reloaded.loss.snr_gamma == 5.0 and reloaded.model.prediction_type == "v_prediction"
    save_config(reloaded, tmp_path / "again.yaml")
    assert (tmp_path / "again.yaml").read_text() == (tmp_path / "train_config.yaml").read_text()


@pytest.mark.parametrize(
    "overrides, cls, message",
    [
        (
            ["optim.learning_rat=1e-4"],
            TrainConfig,
            r"'optim\.learning_rat' in section 'optim'\. Did you mean 'learning_rate'",
        ),
        (["optimizer.learning_rate=1e-4"], TrainConfig, r"'optimizer' in the top level\. Did you mean 'optim'"),
        (["schedule.max_train_steps=2.5"], TrainConfig, r"schedule\.max_train_steps: expected an integer, got 2\.5"),
        (["optim.max_grad_norm=high"], TrainConfig, r"optim\.max_grad_norm: expected a number or null, got 'high'"),
        (["model.trainable=everything"], TrainConfig, r"model\.trainable: expected one of 'paper', 'released'"),
        (["data.image_keys=[person, [1]]"], VAETrainConfig, r"data\.image_keys\[1\]: expected a string"),
        (["optim.adam_beta1=x", "loss.nope=1"], TrainConfig, r"optim\.adam_beta1: .*; .*loss\.nope"),  # all at once
    ],
)
def test_errors_name_the_key_the_expected_type_and_a_close_match(overrides, cls, message):
    with pytest.raises(InvalidConfigError, match=message):
        load_config(None, overrides, cls=cls)


@pytest.mark.parametrize(
    "text, message",
    [("- a list\n", "mapping of sections"), ("optim: {learning_rate: [1\n", "not valid YAML")],
)
def test_malformed_yaml_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidConfigError, match=message):
        load_config(path)


def test_sections_built_in_code_raise_typed_errors():
    with pytest.raises(InvalidConfigError, match="cfg_dropout_prob: expected a number, got 1.5"):
        LossConfig(cfg_dropout_prob=1.5)
    with pytest.raises(InvalidConfigError, match="needs pretrained_path"):
        ModelConfig(init="converted")
    with pytest.raises(InvalidConfigError, match=r"optim\.learning_rate"):  # nested: the full key, one message
        TrainConfig(optim={"learning_rate": "fast"})


def test_overrides_are_typed_from_the_schema():
    config = load_config(
        None,
        [
            "optim.mixed_precision=no",  # YAML would read false: a string field keeps the text
            "data.split=on",
            "data.root=2024",
            "model.vae_path=null",
            "logging.report_to=none",  # none / null / ~ mean None where None is allowed
            "optim.gradient_checkpointing=yes",
            "loss.snr_gamma=5",
            "schedule.max_train_steps=2e4",  # YAML 1.1 text; an integer all the same
        ],
    )
    assert config.optim.mixed_precision == "no" and config.data.split == "on" and config.data.root == "2024"
    assert config.model.vae_path is None and config.logging.report_to is None
    assert config.optim.gradient_checkpointing is True
    assert config.loss.snr_gamma == 5.0 and isinstance(config.loss.snr_gamma, float)
    assert config.schedule.max_train_steps == 20000 and isinstance(config.schedule.max_train_steps, int)
    vae = load_config(None, ["data.image_keys=[person, garment_back]"], cls=VAETrainConfig)
    assert vae.data.image_keys == ["person", "garment_back"]
    with pytest.raises(InvalidConfigError, match="expected an integer, got the boolean True"):
        load_config(None, ["optim.train_batch_size=true"])  # lax parsing would make it 1
    with pytest.raises(InvalidConfigError, match="not of the form"):
        load_config(None, ["optim.learning_rate"])
    with pytest.raises(InvalidConfigError, match="is not a section"):
        load_config(None, ["seed=1", "seed.value=2"])


def test_flat_config_for_tensorboard():
    flat = flat_config(TrainConfig())
    assert flat["optim.learning_rate"] == 1e-5 and flat["data.dataset"] == "synthetic"
    assert flat["model.prediction_type"] == "None"  # scalars only


def test_deprecated_training_utils_reexports_the_new_places():
    sys.modules.pop("mvvton.training_utils", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        legacy = importlib.import_module("mvvton.training_utils")
    assert any(issubclass(w.category, DeprecationWarning) and "mvvton.training" in str(w.message) for w in caught)
    new_homes = [
        "mvvton.training.config",
        "mvvton.training.components",
        "mvvton.training.trainable",
        "mvvton.training.conditioning",
        "mvvton.training.objective",
        "mvvton.training.perceptual",
        "mvvton.training.vae_loss",
        "mvvton.data.training",
        "mvvton.data.synthetic",
        "mvvton.models.image_encoder",
    ]
    modules = [importlib.import_module(name) for name in new_homes]
    for name in legacy.__all__:
        assert any(getattr(module, name, None) is getattr(legacy, name) for module in modules), name
