"""Train a small AutoencoderKL for a domain without a pretrained VAE (e.g. SynthMVG).

    python training/train_vae.py --config configs/train/vae_synthmvg.yaml --set max_train_steps=2000

Objective: L1 (or MSE) reconstruction + a small KL weight (`mvvton.training.vae_loss.vae_training_loss`). The images
are every `data.image_keys` entry of every sample (person, pre-warped composite, garments). The final folder is an
`AutoencoderKL.save_pretrained` whose `scaling_factor` is set to 1/std of the training latents, so that MV-VTON
training (`model.vae_path`) sees unit-variance latents.

Crash-safe like `train_mvvton.py`: `checkpoint-N` folders every `checkpointing_steps` (sealed, then renamed into place),
`--resume latest` continues bit-identically (the crop generator's state is checkpointed), `loss_log.jsonl` is cut back
to the resumed step, and the final VAE files are moved into `output_dir` with `config.json` last.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from diffusers import AutoencoderKL
from diffusers.optimization import get_scheduler

from mvvton.data.training import build_dataset
from mvvton.training.checkpoints import LOSS_LOG, resume_training_state, save_checkpoint
from mvvton.training.config import VAETrainConfig, load_config, save_config
from mvvton.training.vae_loss import init_posterior_logvar, latent_scaling_factor, vae_training_loss
from mvvton.utils.atomic import partial_path, pause_point, publish_files, remove_leftovers

logger = get_logger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a small AutoencoderKL (VAE) for MV-VTON.")
    parser.add_argument("--config", type=str, default=None, help="YAML config (VAETrainConfig fields).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output_dir", type=str, default=None)
    parser.add_argument("--resume", type=str, default=None, help="'latest' or a checkpoint-N folder to resume from.")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> VAETrainConfig:
    overrides = list(args.overrides) + ([f"output_dir={args.output_dir}"] if args.output_dir else [])
    overrides += [f"resume_from_checkpoint={args.resume}"] if args.resume else []
    return load_config(args.config, overrides, cls=VAETrainConfig)


class CheckpointedGenerator:
    """A `torch.Generator` that `accelerator.save_state` / `load_state` carry along (`register_for_checkpointing`)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["state"])


def random_crops(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random `size x size` crop per image: `(B, 3, H, W) -> (B, 3, size, size)`."""
    height, width = images.shape[-2:]
    tops = torch.randint(height - size + 1, (len(images),), generator=generator).tolist()
    lefts = torch.randint(width - size + 1, (len(images),), generator=generator).tolist()
    return torch.stack([image[:, t : t + size, s : s + size] for image, t, s in zip(images, tops, lefts)])


def main(cfg: VAETrainConfig) -> dict:
    """Train; returns `{"losses": [(step, loss)], "scaling_factor", "output_dir", "seconds"}`."""
    output_dir = Path(cfg.output_dir)
    accelerator = Accelerator(project_config=ProjectConfiguration(project_dir=str(output_dir)))
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(cfg.seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, output_dir / "vae_train_config.yaml")

    if cfg.pretrained_path is not None:
        vae = AutoencoderKL.from_pretrained(cfg.pretrained_path)
    else:
        if not cfg.train_encoder:
            raise ValueError("train_encoder=false keeps an existing latent space: set pretrained_path")
        with open(cfg.vae_config, encoding="utf-8") as handle:
            vae_config = {key: value for key, value in json.load(handle).items() if not key.startswith("_")}
        vae = AutoencoderKL.from_config(vae_config)
        if cfg.init_logvar is not None:
            init_posterior_logvar(vae, cfg.init_logvar)
    if not cfg.train_encoder:  # decoder-only fine-tuning: the encoder's latents stay bit-identical
        vae.encoder.requires_grad_(False)
        if vae.quant_conv is not None:
            vae.quant_conv.requires_grad_(False)
    dataset = build_dataset(
        cfg.data.dataset,
        cfg.data.root,
        cfg.data.split,
        cfg.data.height,
        cfg.data.width,
        num_synthetic_samples=cfg.data.num_synthetic_samples,
        max_samples=cfg.data.max_samples,
        cache_in_memory=cfg.data.cache_in_memory,
        seed=cfg.seed,
    )
    trainable = [parameter for parameter in vae.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=0.0)
    lr_scheduler = get_scheduler(
        "cosine",
        optimizer,
        num_warmup_steps=cfg.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=cfg.max_train_steps * accelerator.num_processes,
    )
    vae, optimizer, lr_scheduler = accelerator.prepare(vae, optimizer, lr_scheduler)

    # every (sample, key) pair is one training image; batches are drawn with a seeded generator per process
    pairs = [(index, key) for index in range(len(dataset)) for key in cfg.data.image_keys]
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + accelerator.process_index)
    accelerator.register_for_checkpointing(CheckpointedGenerator(generator))

    # resume from the newest complete checkpoint (model, optimizer, LR schedule, RNG states, crop generator)
    global_step = resume_training_state(accelerator, output_dir, cfg.resume_from_checkpoint)

    losses: list[tuple[int, float]] = []
    started = time.perf_counter()
    vae.train()
    for step in range(global_step + 1, cfg.max_train_steps + 1):
        picks = torch.randint(len(pairs), (cfg.train_batch_size,), generator=generator).tolist()
        images = torch.stack([dataset[pairs[i][0]][pairs[i][1]] for i in picks])  # (B, 3, H, W) in [-1, 1]
        if cfg.data.crop_size is not None:
            images = random_crops(images, cfg.data.crop_size, generator)
        images = images.to(accelerator.device)
        outputs = vae_training_loss(vae, images, cfg.reconstruction, cfg.kl_weight, generator=None)
        accelerator.backward(outputs["loss"])
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss = accelerator.gather(outputs["loss"].detach().reshape(1)).mean().item()
        losses.append((step, loss))
        if accelerator.is_main_process:
            record = {"step": step, "loss": loss, "reconstruction_loss": outputs["reconstruction_loss"].item(),
                      "kl_loss": outputs["kl_loss"].item()}  # fmt: skip
            with open(output_dir / LOSS_LOG, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            pause_point("log.appended", step)
            if step % cfg.log_every == 0 or step == cfg.max_train_steps:
                logger.info(
                    f"step {step}: loss {loss:.5f} reconstruction {record['reconstruction_loss']:.5f} "
                    f"kl {record['kl_loss']:.3f}"
                )
        if cfg.checkpointing_steps and (step % cfg.checkpointing_steps == 0 or step == cfg.max_train_steps):
            save_checkpoint(accelerator, output_dir, step, cfg.checkpoints_total_limit)

    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(vae).eval()
    scaling_factor = 1.0
    if accelerator.is_main_process:
        if cfg.train_encoder:
            probe = torch.stack(
                [dataset[i % len(dataset)][cfg.data.image_keys[0]] for i in range(min(64, len(dataset)))]
            )
            scaling_factor = latent_scaling_factor(unwrapped, probe.to(accelerator.device))
            unwrapped.register_to_config(scaling_factor=scaling_factor)
        else:
            scaling_factor = unwrapped.config.scaling_factor  # the latent space did not change
        # written beside the run's other files: staged, then moved in with config.json (what loaders open) last
        staging = partial_path(output_dir / "vae")
        remove_leftovers(output_dir, "vae")
        unwrapped.save_pretrained(staging)
        pause_point("vae.staged")
        publish_files(staging, output_dir, last="config.json")
        logger.info(f"saved VAE to {output_dir} (scaling_factor {scaling_factor:.5f})")
    elapsed = time.perf_counter() - started
    accelerator.end_training()
    return {"losses": losses, "scaling_factor": scaling_factor, "output_dir": str(output_dir), "seconds": elapsed}


if __name__ == "__main__":
    main(config_from_args(parse_args()))
