"""Batch try-on over a dataset folder or manifest (thin wiring around `mvvton.batch_inference`).

    python inference/infer_batch.py --pretrained_model_name_or_path converted/mvg \
        --dataset mvg --data_root MVG --split test --output_dir outputs/mvg_test [--unpaired]
"""

from __future__ import annotations

import argparse

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained_model_name_or_path", required=True, help="local mvvton pipeline folder")
    parser.add_argument("--dataset", choices=("mvg", "vitonhd", "dresscode", "manifest"), required=True)
    parser.add_argument("--data_root", required=True, help="dataset root, or the JSONL file for --dataset manifest")
    parser.add_argument("--split", default="test")
    parser.add_argument("--unpaired", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--num_inference_steps", type=int, default=50)
    parser.add_argument("--guidance_scale", type=float, default=1.0)
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def build_dataset(args: argparse.Namespace, height: int, width: int):
    from mvvton import data

    size = dict(height=height, width=width)
    if args.dataset == "mvg":
        return data.MVGDataset(args.data_root, split=args.split, paired=not args.unpaired, **size)
    if args.dataset == "vitonhd":
        from mvvton.data.vitonhd import VitonHDDataset

        return VitonHDDataset(args.data_root, split=args.split, paired=not args.unpaired, **size)
    if args.dataset == "dresscode":
        from mvvton.data.dresscode import DressCodeDataset

        return DressCodeDataset(args.data_root, split=args.split, paired=not args.unpaired, **size)
    from mvvton.data.manifest import ManifestDataset

    return ManifestDataset(args.data_root, **size)


def main(argv: list[str] | None = None) -> int:
    from mvvton.batch_inference import BatchInferenceConfig, run_batch_inference
    from mvvton.pipelines import MVVTONPipeline

    args = parse_args(argv)
    pipe = MVVTONPipeline.from_pretrained(args.pretrained_model_name_or_path, torch_dtype=getattr(torch, args.dtype))
    pipe.to(args.device)
    height = args.height or pipe.config.default_height
    width = args.width or pipe.config.default_width
    dataset = build_dataset(args, height, width)
    config = BatchInferenceConfig(
        output_dir=args.output_dir, seed=args.seed, batch_size=args.batch_size,
        num_inference_steps=args.num_inference_steps, guidance_scale=args.guidance_scale,
    )  # fmt: skip
    counts = run_batch_inference(pipe, dataset, config)
    print(f"rendered {counts['done']}, skipped {counts['skipped']} already present -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
