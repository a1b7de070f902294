"""Full-size MV-VTON speed and memory on CPU, with random weights (no download), per dtype setting.

    python benchmarks/full_size.py [--height 512 --width 384] [--threads 1] [--repeats 1] [--modes fp32 layerwise] [--op-probe]

Builds the released geometry (SD-1 UNet with 9 input channels and joint attention, ControlNet-style garment encoder
on 512x512 garments, pose encoder, CLIP ViT-L/14 + mapper, SD KL-f8 VAE) and a plain diffusers UNet of the same
geometry. Each dtype setting runs in a fresh subprocess (so its peak RSS is its own):

- `fp32`: everything float32;
- `layerwise`: weights stored in bfloat16, every Linear / Conv upcast to float32 for its forward (diffusers'
  `enable_layerwise_casting`), activations float32;
- `bf16`: weights and activations bfloat16, with the fp32 islands (normalisation, mapper and soft-selection softmax).
  Not in the default modes: on CPUs without native bf16 kernels it is many times slower (`--op-probe` shows why).

Components are built directly in their storage dtype, so the float32 construction of a bf16 model never shows in its
RSS. Per setting: one denoising step with and without local tokens, the pose / image / garment encoders, VAE encode
and decode (median of `--repeats` calls after `--warmup` untimed ones), peak RSS after those, optionally one full
1-step pipeline call (`--full-call`), then a plain diffusers UNet step after the pipeline is freed. Prints a table and
the ratios; the 50-step estimate is encoders + VAE + 50 steps with local tokens.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time

MODES = ("fp32", "layerwise", "bf16")
VAE_CONFIG = dict(
    block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2, sample_size=512,
    scaling_factor=0.18215,
)  # fmt: skip
UNET_CONFIG = dict(in_channels=9, out_channels=4, cross_attention_dim=768, attention_head_dim=8, sample_size=64)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where /proc does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
        return True
    except OSError:
        return False


def vm_hwm_gb() -> float:
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2  # kB
    return float("nan")


def current_rss_gb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**3


def timed(function, repeats: int, warmup: int = 0) -> float:
    """Median wall time of `repeats` calls after `warmup` untimed calls (0: first calls, setup costs included)."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_pipeline(mode: str):
    import torch
    from diffusers import AutoencoderKL

    from mvvton.conversion.save import released_scheduler
    from mvvton.models import (
        GarmentEncoderModel,
        GarmentImageEncoderModel,
        MVVTONUNet2DConditionModel,
        PoseEncoderModel,
    )
    from mvvton.pipelines import MVVTONPipeline

    storage = torch.float32 if mode == "fp32" else torch.bfloat16
    torch.set_default_dtype(storage)  # parameters are created in the storage dtype (no fp32 copy in memory)
    try:
        torch.manual_seed(0)
        components = dict(
            unet=MVVTONUNet2DConditionModel(**UNET_CONFIG),
            garment_encoder=GarmentEncoderModel(),
            pose_encoder=PoseEncoderModel(sample_size=(512, 512)),  # as `mvvton convert ldm` sets it
            image_encoder=GarmentImageEncoderModel(),
            vae=AutoencoderKL(**VAE_CONFIG),
        )
    finally:
        torch.set_default_dtype(torch.float32)
    with torch.no_grad():
        for processor in components["unet"].joint_attention_processors.values():
            processor.ip_scale.fill_(0.5)  # open the gates: the local branch must act
    pipe = MVVTONPipeline(scheduler=released_scheduler(), **components)
    if mode == "layerwise":
        pipe.enable_layerwise_casting(storage_dtype=torch.bfloat16, compute_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def worker(mode: str, height: int, width: int, repeats: int, warmup: int, full_call: bool, vae_tile: int = 0) -> dict:
    import torch

    from mvvton.models.attention_processor import GarmentTokens

    torch.set_grad_enabled(False)
    start = time.perf_counter()
    pipe = build_pipeline(mode)
    if vae_tile:
        # the VAE in overlapping tiles of `vae_tile` pixels (diffusers' AutoencoderKL tiling, blended seams)
        pipe.vae.enable_tiling()
        pipe.vae.tile_sample_min_size = vae_tile
        pipe.vae.tile_latent_min_size = vae_tile // 8
    result = {"mode": mode, "build_s": time.perf_counter() - start, "rss_after_build_gb": current_rss_gb()}
    result["weights_gb"] = sum(
        p.numel() * p.element_size() for module in pipe.components.values() if isinstance(module, torch.nn.Module)
        for p in module.parameters()
    ) / 1024**3  # fmt: skip

    dtype = pipe.unet.dtype  # compute dtype (float32 under layerwise casting)
    generator = torch.Generator().manual_seed(0)
    latent_h, latent_w = height // 8, width // 8
    sample = torch.randn(1, 9, latent_h, latent_w, generator=generator).to(dtype)
    timestep = torch.tensor([500])
    garments = (torch.rand(1, 2, 3, height, width, generator=generator) * 2 - 1).to(dtype)
    skeleton = (torch.rand(1, 3, height, width, generator=generator) * 2 - 1).to(dtype)
    clip_input = torch.randn(1, 3, 224, 224, generator=generator).to(dtype)
    image = (torch.rand(1, 3, height, width, generator=generator) * 2 - 1).to(dtype)
    latents = torch.randn(1, 4, latent_h, latent_w, generator=generator).to(dtype)

    person_pose = pipe.pose_encoder(skeleton)
    garment_pose = pipe.pose_encoder(torch.cat([skeleton, skeleton])).unflatten(0, (1, 2))
    tokens = pipe.garment_encoder(garments, 999, person_pose, garment_pose).garment_tokens
    context = pipe.image_encoder(clip_input)
    cached = GarmentTokens(list(tokens), cache_projections=True)  # as the pipeline: local K/V projected once
    items = {
        "step_local": lambda: pipe.unet(sample, timestep, context, garment_tokens=cached),
        "step_nolocal": lambda: pipe.unet(sample, timestep, context),
        "pose_encoder_3x": lambda: pipe.pose_encoder(torch.cat([skeleton] * 3)),
        "image_encoder": lambda: pipe.image_encoder(clip_input),
        "garment_encoder": lambda: pipe.garment_encoder(garments, 999, person_pose, garment_pose),
        "vae_encode": lambda: pipe.vae.encode(image),
        "vae_decode": lambda: pipe.vae.decode(latents),
    }
    for name, function in items.items():
        can_reset = reset_peak_rss()  # per-item peak: which part of the call sets the process's peak
        result[f"{name}_s"] = timed(function, repeats, warmup)
        result[f"{name}_peak_gb"] = vm_hwm_gb() if can_reset else float("nan")
    result["peak_rss_gb"] = peak_rss_gb()
    if full_call:
        start = time.perf_counter()
        pipe.warmup(height, width)  # one full 1-step call through the pipeline
        result["call_1step_s"] = time.perf_counter() - start
        result["peak_rss_call_gb"] = peak_rss_gb()

    return result


def measure_plain_unet(mode: str, height: int, width: int, repeats: int, warmup: int) -> float:
    """One step of a plain diffusers UNet of the same geometry (the lower bound), in the same dtype setting."""
    import torch
    from diffusers import UNet2DConditionModel

    from mvvton.models.precision import upcast_normalization_layers

    torch.set_grad_enabled(False)
    torch.set_default_dtype(torch.float32 if mode == "fp32" else torch.bfloat16)
    try:
        torch.manual_seed(0)
        plain = UNet2DConditionModel(**UNET_CONFIG).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    if mode == "layerwise":  # as `MVVTONPipeline.enable_layerwise_casting`: norms are fp32 islands, only they skip
        upcast_normalization_layers(plain)
        plain.enable_layerwise_casting(
            storage_dtype=torch.bfloat16, compute_dtype=torch.float32, skip_modules_pattern=("norm",)
        )
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 9, height // 8, width // 8, generator=generator).to(plain.dtype)
    context = torch.randn(1, 1, UNET_CONFIG["cross_attention_dim"], generator=generator).to(plain.dtype)
    return timed(lambda: plain(sample, torch.tensor([500]), context), repeats, warmup)


def op_speed_probe() -> list[str]:
    """CPU time of single ops at full-size shapes, float32 vs bfloat16 (NCHW and channels_last), 1 thread."""
    import torch

    torch.set_num_threads(1)
    lines = []
    with torch.no_grad():
        conv = torch.nn.Conv2d(320, 320, 3, padding=1)
        image = torch.randn(1, 320, 64, 48)
        linear = torch.nn.Linear(320, 320)
        tokens = torch.randn(3072, 320)
        heads = torch.randn(1, 8, 3072, 40)
        for dtype in (torch.float32, torch.bfloat16):
            cases = {
                "conv3x3 320->320 @64x48 NCHW": (copy.deepcopy(conv).to(dtype), image.to(dtype)),
                "conv3x3 channels_last": (
                    copy.deepcopy(conv).to(dtype).to(memory_format=torch.channels_last),
                    image.to(dtype).to(memory_format=torch.channels_last),
                ),
                "linear 3072x320x320": (copy.deepcopy(linear).to(dtype), tokens.to(dtype)),
                "SDPA 8 heads 3072x3072x40": (
                    lambda x: torch.nn.functional.scaled_dot_product_attention(x, x, x),
                    heads.to(dtype),
                ),
            }
            for label, (module, value) in cases.items():
                module(value)
                start = time.process_time()
                module(value)
                lines.append(f"| {label} | {str(dtype).removeprefix('torch.')} | {time.process_time() - start:.3f} |")
    return lines


def estimate_50_steps(r: dict) -> float:
    encoders = r["pose_encoder_3x_s"] + r["image_encoder_s"] + r["garment_encoder_s"]
    return encoders + r["vae_encode_s"] + r["vae_decode_s"] + 50 * r["step_local_s"]


def report(results: list[dict], args) -> None:
    import torch

    print(f"\nfull-size MV-VTON, random weights, {args.height}x{args.width} (latent {args.height // 8}x"
          f"{args.width // 8}), batch 1, {args.threads} thread(s), torch {torch.__version__}, median of "
          f"{args.repeats} call(s) after {args.warmup} warm-up call(s), VAE tiles "
          f"{args.vae_tile or 'off'}, malloc thresholds {args.malloc_threshold or 'glibc default'}")  # fmt: skip
    rows = [
        ("weights in memory (GB)", "weights_gb", "{:.2f}"),
        ("RSS after build (GB)", "rss_after_build_gb", "{:.2f}"),
        ("peak RSS after a 1-step call (GB)", "peak_rss_call_gb", "{:.2f}"),
        ("peak RSS after encoders, steps, VAE (GB)", "peak_rss_gb", "{:.2f}"),
        ("1-step call, first (s)", "call_1step_s", "{:.1f}"),
        ("UNet step with local tokens (s)", "step_local_s", "{:.2f}"),
        ("UNet step without local tokens (s)", "step_nolocal_s", "{:.2f}"),
        ("plain diffusers UNet step (s)", "plain_unet_step_s", "{:.2f}"),
        ("pose encoder, 3 skeletons (s)", "pose_encoder_3x_s", "{:.2f}"),
        ("image encoder (CLIP + mapper) (s)", "image_encoder_s", "{:.2f}"),
        ("garment encoder, 2 views (s)", "garment_encoder_s", "{:.2f}"),
        ("VAE encode (s)", "vae_encode_s", "{:.2f}"),
        ("VAE decode (s)", "vae_decode_s", "{:.2f}"),
        ("peak RSS during: step with local tokens (GB)", "step_local_peak_gb", "{:.2f}"),
        ("peak RSS during: step without local tokens (GB)", "step_nolocal_peak_gb", "{:.2f}"),
        ("peak RSS during: image encoder (GB)", "image_encoder_peak_gb", "{:.2f}"),
        ("peak RSS during: garment encoder (GB)", "garment_encoder_peak_gb", "{:.2f}"),
        ("peak RSS during: VAE encode (GB)", "vae_encode_peak_gb", "{:.2f}"),
        ("peak RSS during: VAE decode (GB)", "vae_decode_peak_gb", "{:.2f}"),
    ]
    print("| | " + " | ".join(r["mode"] for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for label, key, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(r[key]) if key in r else "—" for r in results) + " |")
    print("| 50-step call, estimated (s) | " + " | ".join(f"{estimate_50_steps(r):.0f}" for r in results) + " |")
    print("\nratios")
    for r in results:
        print(f"- {r['mode']}: step local / no local = {r['step_local_s'] / r['step_nolocal_s']:.2f}; "
              f"no local / plain UNet = {r['step_nolocal_s'] / r['plain_unet_step_s']:.2f}; "
              f"local / plain UNet = {r['step_local_s'] / r['plain_unet_step_s']:.2f}")  # fmt: skip
    reference = next((r for r in results if r["mode"] == "fp32"), None)
    if reference is not None:
        for r in results:
            if r is not reference:
                print(f"- {r['mode']} / fp32: step {r['step_local_s'] / reference['step_local_s']:.2f}, "
                      f"50-step estimate {estimate_50_steps(r) / estimate_50_steps(reference):.2f}, "
                      f"peak RSS {r['peak_rss_gb'] / reference['peak_rss_gb']:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0, help="untimed calls before each timing (0: first calls)")
    parser.add_argument("--full-call", action="store_true", help="also run one full 1-step pipeline call")
    parser.add_argument("--vae-tile", type=int, default=0, help="VAE tiling with tiles of this many pixels (0: off)")
    parser.add_argument(
        "--malloc-threshold", type=int, default=0,
        help="bytes: sets glibc's MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ in the workers, so freed "
        "activations go back to the OS instead of staying in the heap (0: glibc's dynamic defaults)",
    )  # fmt: skip
    parser.add_argument("--modes", nargs="*", choices=MODES, default=["fp32", "layerwise"])
    parser.add_argument("--op-probe", action="store_true", help="also time single ops in fp32 vs bf16")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        result = worker(args.worker, args.height, args.width, args.repeats, args.warmup, args.full_call, args.vae_tile)
        # the pipeline was freed on return
        result["plain_unet_step_s"] = measure_plain_unet(
            args.worker, args.height, args.width, args.repeats, args.warmup
        )
        print(json.dumps(result), flush=True)
        return
    results = []
    for mode in args.modes:
        command = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--height", str(args.height),
                   "--width", str(args.width), "--threads", str(args.threads), "--repeats", str(args.repeats),
                   "--warmup", str(args.warmup), "--vae-tile", str(args.vae_tile)]  # fmt: skip
        command += ["--full-call"] if args.full_call else []
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
        if args.malloc_threshold:
            env.update(
                MALLOC_MMAP_THRESHOLD_=str(args.malloc_threshold), MALLOC_TRIM_THRESHOLD_=str(args.malloc_threshold)
            )
        start = time.perf_counter()
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            print(f"{mode}: worker failed ({completed.returncode}):\n{completed.stderr[-3000:]}", file=sys.stderr)
            continue
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        print(f"{mode}: done in {time.perf_counter() - start:.0f} s", flush=True)
    if results:
        report(results, args)
    if args.op_probe:
        print("\n| op (1 thread, CPU time of one call) | dtype | s |\n|---|---|---|")
        print("\n".join(op_speed_probe()))


if __name__ == "__main__":
    main()
