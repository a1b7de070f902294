"""TrainConfig loading: YAML round trip, strict keys, --set overrides, type coercion, CLI --help."""

import pytest

from mvvton.training_utils import TrainConfig, VAETrainConfig, load_config, save_config


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
