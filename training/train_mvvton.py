"""Train (or fine-tune) MV-VTON with accelerate.

    accelerate launch training/train_mvvton.py --config configs/train/tiny.yaml --set optim.learning_rate=1e-4
    accelerate launch training/train_mvvton.py --config configs/train/tiny.yaml --resume latest

Order follows diffusers' `train_text_to_image.py`: parse_args -> config -> main(cfg): accelerator, components, trainable
groups, optimizer, data, LR schedule, prepare, save/load hooks, resume, loop (accumulate / sync / EMA / checkpoint /
validation), final save. The config, objective and all helpers live in `mvvton.training` / `mvvton.data.training` (docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from diffusers import DDIMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file
from torch.utils.data import DataLoader, default_collate

from mvvton.batch_inference import render_batch
from mvvton.data.training import EpochSeededSampler, build_dataset
from mvvton.pipelines import MVVTONPipeline
from mvvton.preprocessing.io import save_image_atomic
from mvvton.training.checkpoints import LOSS_LOG, checkpoint_step, resume_training_state, save_checkpoint
from mvvton.training.components import TRAINED_COMPONENT_NAMES, build_components
from mvvton.training.config import TrainConfig, flat_config, load_config, save_config
from mvvton.training.objective import MVVTONTrainingModule, compute_training_loss, timestep_range
from mvvton.training.perceptual import load_vgg
from mvvton.training.trainable import GATE_PARAMETER_SUFFIX, optimizer_param_groups, select_trainable
from mvvton.utils.atomic import pause_point, write_folder_atomically

logger = get_logger(__name__)
CONFIG_NAME = "train_config.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train MV-VTON (multi-view virtual try-on) with accelerate.")
    parser.add_argument("--config", type=str, default=None, help="YAML training config (configs/train/*.yaml).")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override a config value, e.g. --set optim.learning_rate=1e-5 (repeatable).",
    )
    parser.add_argument("--resume", type=str, default=None, help="'latest' or a checkpoint-N folder to resume from.")
    parser.add_argument("--output_dir", type=str, default=None, help="Overrides output_dir of the config.")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = list(args.overrides)
    if args.output_dir is not None:
        overrides.append(f"output_dir={args.output_dir}")
    if args.resume is not None:
        overrides.append(f"resume_from_checkpoint={args.resume}")
    return load_config(args.config, overrides)


# ----------------------------------------------------------------------------------------------------------------------
# checkpoint helpers


def save_trained_components(module: MVVTONTrainingModule, folder: Path) -> None:
    for name in TRAINED_COMPONENT_NAMES:
        getattr(module, name).save_pretrained(folder / name)


def load_trained_components(module: MVVTONTrainingModule, folder: Path) -> None:
    for name in TRAINED_COMPONENT_NAMES:
        state = load_file(str(folder / name / "diffusion_pytorch_model.safetensors"))
        getattr(module, name).load_state_dict(state, strict=True)


def save_final_pipeline(
    module: MVVTONTrainingModule, vae: torch.nn.Module, noise_config: dict, cfg: TrainConfig, folder: Path
) -> None:
    """An `MVVTONPipeline` folder (model_index.json + components, DDIM scheduler, working size = training size);
    also loadable with `model.init=converted`. Written to `.final.partial` and swapped in atomically."""

    def write(staging: Path) -> None:
        MVVTONPipeline(
            vae=vae,
            unet=module.unet,
            garment_encoder=module.garment_encoder,
            scheduler=DDIMScheduler.from_config(noise_config),
            pose_encoder=module.pose_encoder,
            image_encoder=module.image_encoder,
            garment_timestep=cfg.model.garment_fixed_timestep,
            default_height=cfg.data.height,
            default_width=cfg.data.width,
        ).save_pretrained(staging)
        save_config(cfg, staging / CONFIG_NAME)

    write_folder_atomically(folder, write)


def step_generator(seed: int, process_index: int, micro_step: int) -> torch.Generator:
    """Every random draw of micro-batch `micro_step` on this process comes from here: resuming needs no RNG state."""
    return torch.Generator().manual_seed(seed * 1_000_003 + process_index * 7_919_993 + micro_step)


# ----------------------------------------------------------------------------------------------------------------------
# validation


def to_uint8_grid(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    """rows of `(3, H, W)` images in [-1, 1] -> one `(3, rows*H, cols*W)` uint8 grid."""
    return torch.cat([torch.cat(row, dim=2) for row in rows], dim=1).add(1).mul(127.5).clamp(0, 255).round().byte()


@torch.no_grad()
def pipeline_tryon(
    module: MVVTONTrainingModule,
    vae: torch.nn.Module,
    noise_config: dict,
    batch: dict[str, Any],
    num_inference_steps: int,
    seed: int,
) -> torch.Tensor:
    """Try-on with `MVVTONPipeline` built from the in-memory components (prepared inputs, per-sample seeds).

    Returns `(B, 3, H, W)` in [-1, 1].
    """
    height, width = batch["person"].shape[-2:]
    pipe = MVVTONPipeline(
        vae=vae,
        unet=module.unet,
        garment_encoder=module.garment_encoder,
        scheduler=DDIMScheduler.from_config(noise_config),
        pose_encoder=module.pose_encoder,
        image_encoder=module.image_encoder,
        default_height=height,
        default_width=width,
    )
    pipe.set_progress_bar_config(disable=True)
    indices = list(range(batch["person"].shape[0]))
    images = render_batch(
        pipe, batch, indices, [seed + index for index in indices], num_inference_steps=num_inference_steps,
        output_type="pt",
    ).images  # fmt: skip
    return images * 2 - 1


def log_validation(
    accelerator: Accelerator,
    module: MVVTONTrainingModule,
    vae: torch.nn.Module,
    noise_config: dict,
    samples: list[dict[str, Any]],
    cfg: TrainConfig,
    global_step: int,
) -> Path:
    """Try-on results for fixed validation samples -> `<output_dir>/validation/step-N.png` and tensorboard.

    Uses `MVVTONPipeline` on the in-memory components; main process only, with its own seeded generators so the
    training randomness is untouched. Rows: person, garment front, garment back,
    pre-warped composite, result.
    """
    was_training = module.training
    module.eval()
    batch = {
        key: value.to(accelerator.device) if torch.is_tensor(value) else value
        for key, value in default_collate(samples).items()
    }
    results = pipeline_tryon(
        module, vae, noise_config, batch, cfg.logging.validation_inference_steps, cfg.logging.validation_seed
    )
    rows = [
        [
            batch["person"][i],
            batch["garment_front"][i],
            batch["garment_back"][i],
            batch["inpaint_image"][i],
            results[i],
        ]
        for i in range(len(samples))
    ]
    grid = to_uint8_grid([[image.float().cpu() for image in row] for row in rows])
    folder = Path(cfg.output_dir) / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{global_step}.png"
    save_image_atomic(grid.permute(1, 2, 0).numpy(), path)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("validation", grid, global_step, dataformats="CHW")
    if was_training:
        module.train()
    return path


# ----------------------------------------------------------------------------------------------------------------------


def main(cfg: TrainConfig) -> dict[str, Any]:
    """Run training; returns `{"global_step", "losses": [(step, loss)], "output_dir"}`."""
    output_dir = Path(cfg.output_dir)
    report_to = None if cfg.logging.report_to in (None, "none") else cfg.logging.report_to
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.optim.gradient_accumulation_steps,
        mixed_precision=cfg.optim.mixed_precision,
        log_with=report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    set_seed(cfg.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, output_dir / CONFIG_NAME)

    # 1. components and trainable groups
    components = build_components(cfg.model, seed=cfg.seed)
    vae, noise_scheduler = components["vae"], components["scheduler"]
    timestep_range(cfg.loss, noise_scheduler.config.num_train_timesteps)  # a bad range fails before any step
    groups = select_trainable(components, cfg.model.trainable)
    for group, names in groups.items():
        logger.info(f"trainable group {group}: {len(names)} tensors")
    module = MVVTONTrainingModule(
        components["unet"], components["garment_encoder"], components["pose_encoder"], components["image_encoder"]
    )
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    vae.to(accelerator.device)
    if weight_dtype != torch.float32:  # frozen in every mode
        vae.to(dtype=weight_dtype)
        module.image_encoder.vision_model.to(dtype=weight_dtype)
    vgg = load_vgg(cfg.loss.vgg_weights_path, cfg.loss.vgg_input_style) if cfg.loss.vgg_weight > 0 else None
    if vgg is not None:
        vgg.to(accelerator.device, dtype=weight_dtype)
    if cfg.optim.gradient_checkpointing:
        module.unet.enable_gradient_checkpointing()
        module.garment_encoder.enable_gradient_checkpointing()
    trainable = [parameter for parameter in module.parameters() if parameter.requires_grad]
    gates = [parameter for name, parameter in module.named_parameters() if name.endswith(GATE_PARAMETER_SUFFIX)]
    ema = EMAModel(trainable, decay=cfg.optim.ema_decay) if cfg.optim.use_ema else None

    # 2. optimizer
    learning_rate = cfg.optim.learning_rate
    if cfg.optim.scale_lr:
        learning_rate *= cfg.optim.train_batch_size * cfg.optim.gradient_accumulation_steps * accelerator.num_processes
    optimizer = torch.optim.AdamW(
        optimizer_param_groups(module, learning_rate, cfg.optim.adam_weight_decay, cfg.optim.gate_lr_multiplier),
        lr=learning_rate,
        betas=(cfg.optim.adam_beta1, cfg.optim.adam_beta2),
        weight_decay=cfg.optim.adam_weight_decay,
        eps=cfg.optim.adam_epsilon,
    )

    # 3. data: a sampler whose order depends only on (seed, epoch), so resuming reproduces it
    data_kwargs = dict(
        paired=cfg.data.paired,
        num_synthetic_samples=cfg.data.num_synthetic_samples,
        max_samples=cfg.data.max_samples,
        cache_in_memory=cfg.data.cache_in_memory,
        seed=cfg.seed,
    )
    dataset = build_dataset(
        cfg.data.dataset, cfg.data.root, cfg.data.split, cfg.data.height, cfg.data.width, **data_kwargs
    )
    sampler = EpochSeededSampler(len(dataset), seed=cfg.seed)
    train_dataloader = DataLoader(
        dataset,
        batch_size=cfg.optim.train_batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=cfg.data.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    validation_samples: list[dict[str, Any]] = []
    if cfg.logging.validation_steps and accelerator.is_main_process:
        validation_split = cfg.data.validation_split or cfg.data.split
        validation_set = dataset
        if validation_split != cfg.data.split:
            validation_set = build_dataset(
                cfg.data.dataset, cfg.data.root, validation_split, cfg.data.height, cfg.data.width, **data_kwargs
            )
        count = min(cfg.logging.num_validation_samples, len(validation_set))
        validation_samples = [validation_set[index] for index in range(count)]

    # 4. schedule: the prepared scheduler steps once per process per optimizer step
    lr_scheduler = get_scheduler(
        cfg.schedule.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=cfg.schedule.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=cfg.schedule.max_train_steps * accelerator.num_processes,
    )
    module, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
        module, optimizer, train_dataloader, lr_scheduler
    )
    if ema is not None:
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    # 5. checkpoints hold diffusers-format component folders + the resolved config
    def save_model_hook(models: list, weights: list, folder: str) -> None:
        if accelerator.is_main_process:
            for model in models:
                save_trained_components(accelerator.unwrap_model(model), Path(folder))
                weights.pop()
            if cfg.checkpointing.save_frozen_components:
                vae.save_pretrained(Path(folder) / "vae")
                noise_scheduler.save_pretrained(Path(folder) / "scheduler")
            save_config(cfg, Path(folder) / CONFIG_NAME)
            pause_point("checkpoint.components", checkpoint_step(folder))  # optimizer, RNG states not written yet

    def load_model_hook(models: list, folder: str) -> None:
        while models:
            load_trained_components(accelerator.unwrap_model(models.pop()), Path(folder))

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)

    num_update_steps_per_epoch = math.ceil(len(train_dataloader) / cfg.optim.gradient_accumulation_steps)
    if num_update_steps_per_epoch == 0:
        raise ValueError("the dataset is smaller than one batch per process: lower optim.train_batch_size")
    num_epochs = math.ceil(cfg.schedule.max_train_steps / num_update_steps_per_epoch)

    # 6. resume from the newest complete checkpoint; append-only logs are cut back to its step
    global_step = resume_training_state(accelerator, output_dir, cfg.resume_from_checkpoint)
    if accelerator.is_main_process:
        # tensorboard hides the events of the replayed steps (> global_step) of an earlier, interrupted run
        tracker_kwargs = {"tensorboard": {"purge_step": global_step + 1}}
        accelerator.init_trackers("mvvton", config=flat_config(cfg), init_kwargs=tracker_kwargs)
    first_epoch = global_step // num_update_steps_per_epoch
    batches_to_skip = (global_step % num_update_steps_per_epoch) * cfg.optim.gradient_accumulation_steps

    total_batch = cfg.optim.train_batch_size * accelerator.num_processes * cfg.optim.gradient_accumulation_steps
    logger.info(
        f"***** training: {len(dataset)} samples, {num_epochs} epochs, {cfg.schedule.max_train_steps} steps, "
        f"batch {cfg.optim.train_batch_size}/process, total batch {total_batch}, from step {global_step} *****"
    )

    # 7. loop
    stop_at = min(cfg.schedule.max_train_steps, cfg.schedule.stop_after_steps or cfg.schedule.max_train_steps)
    clip_size = accelerator.unwrap_model(module).image_encoder.image_size
    losses: list[tuple[int, float]] = []
    accumulated = {"loss": 0.0}
    started = time.perf_counter()
    module.train()
    for epoch in range(first_epoch, num_epochs):
        if global_step >= stop_at:
            break
        active_dataloader = train_dataloader
        if epoch == first_epoch and batches_to_skip > 0:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, batches_to_skip)
        active_dataloader.set_epoch(epoch)
        sampler.set_epoch(epoch)
        micro_step = global_step * cfg.optim.gradient_accumulation_steps
        for batch in active_dataloader:
            generator = step_generator(cfg.seed, accelerator.process_index, micro_step)
            micro_step += 1
            with accelerator.accumulate(module):
                outputs = compute_training_loss(
                    module, vae, noise_scheduler, batch, cfg.loss, cfg.model, clip_size, vgg, generator, weight_dtype
                )
                accelerator.backward(outputs["loss"])
                if accelerator.sync_gradients and cfg.optim.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(trainable, cfg.optim.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            for key, value in outputs.items():
                gathered = accelerator.gather(value.detach().reshape(1)).mean().item()
                accumulated[key] = accumulated.get(key, 0.0) + gathered / cfg.optim.gradient_accumulation_steps
            if not accelerator.sync_gradients:
                continue

            if ema is not None:
                ema.step(trainable)
            global_step += 1
            logs = {f"train/{key}": value for key, value in accumulated.items()}
            logs["train/lr"] = lr_scheduler.get_last_lr()[0]
            if gates:  # how loud the local garment branch is (0 at init: silent)
                logs["train/gate_abs_mean"] = (
                    torch.cat([gate.detach().abs().flatten() for gate in gates]).mean().item()
                )
            accelerator.log(logs, step=global_step)
            losses.append((global_step, accumulated["loss"]))
            if accelerator.is_main_process:
                record = {"step": global_step, **accumulated, "lr": logs["train/lr"]}
                if gates:
                    record["gate_abs_mean"] = logs["train/gate_abs_mean"]
                with open(output_dir / LOSS_LOG, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                pause_point("log.appended", global_step)
                logger.info(f"step {global_step}: loss {accumulated['loss']:.6f}")
            accumulated = {"loss": 0.0}

            if global_step % cfg.checkpointing.checkpointing_steps == 0 or global_step == stop_at:
                save_checkpoint(accelerator, output_dir, global_step, cfg.checkpointing.checkpoints_total_limit)
            validation_due = cfg.logging.validation_steps and (
                global_step % cfg.logging.validation_steps == 0 or global_step == stop_at
            )
            if validation_due and accelerator.is_main_process:
                if ema is not None:
                    ema.store(trainable)
                    ema.copy_to(trainable)
                path = log_validation(
                    accelerator,
                    accelerator.unwrap_model(module),
                    vae,
                    dict(noise_scheduler.config),
                    validation_samples,
                    cfg,
                    global_step,
                )
                logger.info(f"validation images: {path}")
                if ema is not None:
                    ema.restore(trainable)
            if global_step >= stop_at:
                break

    # 8. final save: a component folder per model (EMA weights when enabled), loadable with model.init=converted
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and global_step >= cfg.schedule.max_train_steps:
        final = output_dir / "final"
        unwrapped = accelerator.unwrap_model(module)
        if ema is not None:
            ema.copy_to(trainable)
        if weight_dtype != torch.float32:
            vae.to(torch.float32)
        save_final_pipeline(unwrapped, vae, dict(noise_scheduler.config), cfg, final)
        logger.info(f"saved trained components to {final}")
    elapsed = time.perf_counter() - started
    logger.info(f"done: step {global_step}, {elapsed:.1f} s")
    accelerator.end_training()
    return {"global_step": global_step, "losses": losses, "output_dir": str(output_dir), "seconds": elapsed}


if __name__ == "__main__":
    main(config_from_args(parse_args()))
