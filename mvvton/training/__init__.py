"""Training library code, one concern per module (the scripts in `training/` only wire it to `accelerate`):

- `config`: typed YAML configs on pydantic (`TrainConfig`, `VAETrainConfig`, `load_config`, `save_config`)
- `components`: building the components (scratch, converted folders, Paint-by-Example)
- `trainable`: trainable-parameter modes and AdamW parameter groups
- `conditioning`: garment-view selection, CLIP crop, classifier-free dropout
- `objective`: `MVVTONTrainingModule` and the MV-VTON loss
- `perceptual`: VGG19 features and perceptual loss
- `vae_loss`: the AutoencoderKL objective and latent-scale helpers
- `checkpoints`: crash-safe checkpoints and resume

Training datasets live with the other datasets: `mvvton.data.training` (`build_dataset`, sampler, cache) and
`mvvton.data.synthetic`. Nothing here imports the scripts.
"""
