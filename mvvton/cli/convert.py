"""`mvvton convert`: official checkpoints / Paint-by-Example folders -> mvvton pipeline folders."""

from __future__ import annotations

import argparse
import sys


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.lower().partition("x")
    return int(height), int(width)


RELEASED_UNET_HEADS = 8  # SD-1.x UNet of the released MV-VTON checkpoints (model_channels 320)
RELEASED_UNET_CHANNELS = 320
RELEASED_CLIP_WIDTH = 1024  # ViT-L/14: 16 heads of 64


def head_count_guesses(configs: dict, num_heads: int | None, clip_heads: int | None) -> list[str]:
    """Warnings for head counts that were not given and had to be guessed (they are not stored in the weights)."""
    warnings = []
    unet = configs.get("unet", {})
    channels = (unet.get("block_out_channels") or (RELEASED_UNET_CHANNELS,))[0]
    if num_heads is None and channels != RELEASED_UNET_CHANNELS:
        warnings.append(
            f"--num-heads not given: used {RELEASED_UNET_HEADS} (the released checkpoints' value), but this UNet has "
            f"{channels} base channels, not {RELEASED_UNET_CHANNELS}, so it is a guess; pass the value from the "
            "checkpoint's training config (a wrong value converts without error and gives wrong outputs)"
        )
    vision = configs.get("image_encoder", {}).get("vision_config", {})
    if clip_heads is None and vision and vision.get("hidden_size") != RELEASED_CLIP_WIDTH:
        warnings.append(
            f"--clip-heads not given: used hidden/64 = {vision.get('num_attention_heads')} for a CLIP of width "
            f"{vision.get('hidden_size')}, a guess; pass the value from the checkpoint's config"
        )
    return warnings


def register(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser("convert", help="convert checkpoints into diffusers-format mvvton folders")
    kinds = convert.add_subparsers(dest="kind", required=True)

    ldm = kinds.add_parser("ldm", help="official MV-VTON Lightning .ckpt (mvg.ckpt / vitonhd.ckpt) or .safetensors")
    ldm.add_argument("checkpoint", help="path to the .ckpt (read with weights_only=True) or .safetensors state dict")
    ldm.add_argument("output_dir")
    ldm.add_argument(
        "--num-heads", type=int, default=None,
        help="UNet attention heads; head counts cannot be read from tensor shapes. The released mvg.ckpt and "
        "vitonhd.ckpt need 8 (the default, used with a warning when the UNet is not the released 320-channel one)",
    )  # fmt: skip
    ldm.add_argument(
        "--clip-heads", type=int, default=None,
        help="CLIP vision heads; the released checkpoints (ViT-L/14, width 1024) need 16 (the default there); for "
        "other widths the default hidden/64 is a guess and is warned about",
    )  # fmt: skip
    ldm.add_argument("--pose-sample-size", type=_size, default=(512, 512),
                     help="skeleton size the pose encoder resizes to (the released model saw 512x512)")
    ldm.add_argument("--size", type=_size, default=(512, 384), help="default working size HxW of the pipeline")
    ldm.add_argument("--overwrite", action="store_true")
    ldm.set_defaults(func=_convert_ldm)

    pbe = kinds.add_parser("paint-by-example", help="a local Paint-by-Example diffusers folder -> fresh MV-VTON")
    pbe.add_argument("folder")
    pbe.add_argument("output_dir")
    pbe.add_argument("--frontal", action="store_true", help="single-garment (frontal) variant")
    pbe.add_argument("--injection", choices=("cumulative", "per_level"), default="cumulative")
    pbe.add_argument("--size", type=_size, default=(512, 384))
    pbe.add_argument("--overwrite", action="store_true")
    pbe.set_defaults(func=_convert_pbe)


def _convert_ldm(args: argparse.Namespace) -> int:
    from mvvton.conversion import build_components, convert_ldm_state_dict, load_ldm_state_dict, save_pipeline_folder

    state_dict = load_ldm_state_dict(args.checkpoint)
    num_heads = RELEASED_UNET_HEADS if args.num_heads is None else args.num_heads
    result = convert_ldm_state_dict(state_dict, num_attention_heads=num_heads, clip_num_heads=args.clip_heads)
    for warning in head_count_guesses(result.configs, args.num_heads, args.clip_heads):
        print(f"warning: {warning}", file=sys.stderr)
    if "pose_encoder" in result.configs:
        result.configs["pose_encoder"]["sample_size"] = args.pose_sample_size
    print(f"variant: {result.variant}")
    for group, count in sorted(result.unused_groups.items()):
        print(f"dropped (unused by the original): {group}: {count} keys")
    if result.absent_components:
        from mvvton.cli import CLIError

        raise CLIError(f"the checkpoint has no {', '.join(result.absent_components)} weights; cannot build a pipeline")
    components = build_components(result)
    out = save_pipeline_folder(
        components, args.output_dir, default_height=args.size[0], default_width=args.size[1], overwrite=args.overwrite
    )
    print(f"wrote {out}")
    return 0


def _convert_pbe(args: argparse.Namespace) -> int:
    from mvvton.conversion import init_from_paint_by_example, save_pipeline_folder

    components = init_from_paint_by_example(
        args.folder, num_views=1 if args.frontal else 2, local_token_injection=args.injection
    )
    out = save_pipeline_folder(
        components, args.output_dir, default_height=args.size[0], default_width=args.size[1], overwrite=args.overwrite
    )
    print(f"wrote {out} (new layers freshly initialised, joint-attention gates at 0)")
    return 0
