"""End-to-end runs of training/train_mvvton.py on the tiny config (in-process and under accelerate launch)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from mvvton.training.components import build_components
from mvvton.training.config import load_config


def tiny_config(repo_root, output_dir, *overrides):
    base = [
        f"output_dir={output_dir}",
        f"model.component_configs={repo_root / 'configs/model/tiny'}",
        "logging.report_to=none",
        "optim.adam_weight_decay=0",  # a weight only moves if it receives a gradient
    ]
    return load_config(repo_root / "configs/train/tiny.yaml", base + list(overrides))


def read_losses(output_dir):
    with open(output_dir / "loss_log.jsonl") as handle:
        return {record["step"]: record["loss"] for record in map(json.loads, handle)}


def test_resume_latest_continues_exactly(tmp_path, repo_root, train_script):
    straight = tmp_path / "straight"
    result = train_script.main(
        tiny_config(
            repo_root,
            straight,
            "schedule.max_train_steps=4",
            "schedule.lr_scheduler=cosine",
            "schedule.lr_warmup_steps=1",
        )
    )
    assert result["global_step"] == 4
    assert (straight / "checkpoint-4" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (straight / "checkpoint-4" / "train_config.yaml").is_file()
    assert (straight / "final" / "vae" / "config.json").is_file()
    assert (straight / "final" / "model_index.json").is_file()  # an MVVTONPipeline folder

    interrupted = tmp_path / "interrupted"
    common = ["schedule.max_train_steps=4", "schedule.lr_scheduler=cosine", "schedule.lr_warmup_steps=1"]
    first = train_script.main(tiny_config(repo_root, interrupted, *common, "schedule.stop_after_steps=2"))
    assert first["global_step"] == 2 and not (interrupted / "final").exists()
    resumed = train_script.main(tiny_config(repo_root, interrupted, *common, "resume_from_checkpoint=latest"))
    assert resumed["global_step"] == 4

    expected, got = read_losses(straight), read_losses(interrupted)
    assert sorted(got) == [1, 2, 3, 4]
    for step in (1, 2, 3, 4):
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step
    # the losses genuinely vary from step to step (the comparison above is not trivially satisfied)
    assert len({round(value, 6) for value in expected.values()}) == 4
    # and the final weights agree
    for name in ("unet", "garment_encoder"):
        a = load_file(str(straight / "final" / name / "diffusion_pytorch_model.safetensors"))
        b = load_file(str(interrupted / "final" / name / "diffusion_pytorch_model.safetensors"))
        assert all(torch.allclose(a[key], b[key], atol=1e-6) for key in a), name


def test_checkpoint_rotation(tmp_path, repo_root, train_script):
    output_dir = tmp_path / "rot"
    train_script.main(
        tiny_config(
            repo_root,
            output_dir,
            "schedule.max_train_steps=3",
            "checkpointing.checkpointing_steps=1",
            "checkpointing.checkpoints_total_limit=2",
            "loss.pixel_weight=0",
        )
    )
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]


def changed(before, after, prefix):
    keys = [key for key in before if key.startswith(prefix)]
    assert keys, prefix
    return any(not torch.equal(before[key], after[key]) for key in keys)


@pytest.mark.parametrize("mode", ["paper", "released"])
def test_trainable_groups_update(tmp_path, repo_root, train_script, mode):
    config = tiny_config(
        repo_root,
        tmp_path / mode,
        "schedule.max_train_steps=3",
        f"model.trainable={mode}",
        "loss.pixel_weight=0",
        "optim.learning_rate=1e-3",
        "checkpointing.checkpointing_steps=100",
    )
    initial = build_components(config.model, seed=config.seed)
    train_script.main(config)
    final = tmp_path / mode / "final"

    def weights(name):
        return (
            {key: value.clone() for key, value in initial[name].state_dict().items()},
            load_file(str(final / name / "diffusion_pytorch_model.safetensors")),
        )

    garment_before, garment_after = weights("garment_encoder")
    pose_before, pose_after = weights("pose_encoder")
    unet_before, unet_after = weights("unet")
    encoder_parts = ("garment_embedding.", "down_blocks.0.", "token_projections.0.")
    selection_parts = ("person_pose_projections.0.", "garment_pose_projections.0.")
    expect_local = mode == "paper"
    for prefix in encoder_parts + selection_parts:
        assert changed(garment_before, garment_after, prefix) is expect_local, (mode, prefix)
    assert changed(pose_before, pose_after, "") is expect_local
    # decoder joint attention trains in both modes; the frozen UNet encoder never does
    assert changed(unet_before, unet_after, "up_blocks.3.attentions.0.transformer_blocks.0.attn2.processor.ip_scale")
    assert changed(unet_before, unet_after, "up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor.to_k_ip")
    assert not changed(unet_before, unet_after, "down_blocks.")
    assert not changed(unet_before, unet_after, "conv_in.")


def test_accelerate_launch_two_cpu_processes(tmp_path, repo_root):
    """`accelerate launch --num_processes 2 --cpu` spawns ONE process in accelerate 1.x (the simple launcher needs
    mpirun for multi-CPU); two gloo processes come from the torchrun launcher with ACCELERATE_USE_CPU=true."""
    output_dir = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533",
        str(repo_root / "training" / "train_mvvton.py"), "--config", str(repo_root / "configs/train/tiny.yaml"),
        "--output_dir", str(output_dir), "--set", f"model.component_configs={repo_root / 'configs/model/tiny'}",
        "--set", "schedule.max_train_steps=2", "--set", "logging.report_to=none",
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "MULTI_CPU" in completed.stderr and "Num processes: 2" in completed.stderr
    checkpoint = output_dir / "checkpoint-2"
    assert (checkpoint / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (checkpoint / "random_states_1.pkl").is_file()  # the second process saved its state
    assert sorted(read_losses(output_dir)) == [1, 2]


def test_validation_images_from_the_pipeline(tmp_path, repo_root, train_script):
    output_dir = tmp_path / "val"
    train_script.main(tiny_config(repo_root, output_dir, "schedule.max_train_steps=1", "logging.validation_steps=1",
                                  "logging.validation_inference_steps=2", "loss.pixel_weight=0"))  # fmt: skip
    from PIL import Image

    image = Image.open(output_dir / "validation" / "step-1.png")
    assert image.size == (5 * 64, 2 * 64)  # 2 samples x (person, front, back, pre-warp, result)


def test_v_prediction_run_saves_a_v_prediction_pipeline(tmp_path, repo_root, train_script):
    output_dir = tmp_path / "v"
    train_script.main(tiny_config(repo_root, output_dir, "schedule.max_train_steps=1", "model.prediction_type=v_prediction",
                                  "loss.snr_gamma=5", "loss.pixel_weight=0"))  # fmt: skip
    with open(output_dir / "final" / "scheduler" / "scheduler_config.json") as handle:
        scheduler_config = json.load(handle)
    assert scheduler_config["prediction_type"] == "v_prediction"


def test_resume_with_accumulation_ema_and_checkpointing(tmp_path, repo_root, train_script):
    common = ["schedule.max_train_steps=2", "optim.gradient_accumulation_steps=2", "optim.use_ema=true",
              "optim.ema_decay=0.9", "optim.gradient_checkpointing=true", "loss.pixel_weight=0",
              "checkpointing.checkpointing_steps=1"]  # fmt: skip
    train_script.main(tiny_config(repo_root, tmp_path / "a", *common))
    train_script.main(tiny_config(repo_root, tmp_path / "b", *common, "schedule.stop_after_steps=1"))
    train_script.main(tiny_config(repo_root, tmp_path / "b", *common, "resume_from_checkpoint=latest"))
    assert read_losses(tmp_path / "a")[2] == pytest.approx(read_losses(tmp_path / "b")[2], abs=1e-6)
    a = load_file(str(tmp_path / "a" / "final" / "unet" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "final" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.allclose(a[key], b[key], atol=1e-6) for key in a)  # EMA weights restored and continued


def test_gate_lr_multiplier_speeds_up_only_the_gates(tmp_path, repo_root, train_script):
    finals, logged = {}, {}
    for multiplier in (1, 100):
        output_dir = tmp_path / f"gate{multiplier}"
        train_script.main(tiny_config(repo_root, output_dir, "schedule.max_train_steps=1", "loss.pixel_weight=0",
                                      "optim.learning_rate=1e-4", f"optim.gate_lr_multiplier={multiplier}",
                                      "schedule.lr_warmup_steps=0", "checkpointing.checkpointing_steps=100"))  # fmt: skip
        finals[multiplier] = load_file(str(output_dir / "final" / "unet" / "diffusion_pytorch_model.safetensors"))
        with open(output_dir / "loss_log.jsonl") as handle:
            logged[multiplier] = [json.loads(line)["gate_abs_mean"] for line in handle]
    gate_keys = [key for key in finals[1] if key.endswith("ip_scale")]
    assert gate_keys
    for key in finals[1]:
        if key not in gate_keys:  # one step from the same init and draws: the other weights move identically
            assert torch.equal(finals[1][key], finals[100][key]), key
    # zero-initialised gates: after one Adam step |gate| ~ lr, so the multiplier shows up as the ratio
    slow = torch.cat([finals[1][key].abs().flatten() for key in gate_keys]).mean().item()
    fast = torch.cat([finals[100][key].abs().flatten() for key in gate_keys]).mean().item()
    assert 50 < fast / slow < 150
    assert logged[100][-1] == pytest.approx(fast) and logged[1][-1] == pytest.approx(slow)
