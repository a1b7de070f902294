"""Batch try-on over a dataset folder, a manifest or a list of raw photos; shards over processes with accelerate.

    python inference/infer_batch.py --pretrained_model_name_or_path converted/mvg \
        --dataset mvg --data_root MVG --split test --output_dir outputs/mvg_test [--unpaired]

    # N processes: disjoint shards, byte-identical to a 1-process run (on a CPU-only machine `--multi_gpu` selects
    # the torchrun launcher and the processes join a gloo group; on GPUs accelerate picks it by itself)
    accelerate launch --multi_gpu --num_processes 2 inference/infer_batch.py ... (same arguments)

    # raw photos: a CSV / JSONL with person, garment_front[, garment_back, id, view] columns
    python inference/infer_batch.py --dataset photos --data_root photos.csv --num_workers 4 ...

Outputs are `<output_dir>/<sample_id>.png`; rerunning the same command resumes (existing outputs are kept).
See `mvvton.batch_inference` for the reproducibility and resume rules.
"""

from __future__ import annotations

import argparse

import torch

from mvvton.batch_inference.datasets import DATASET_KINDS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained_model_name_or_path", required=True, help="local mvvton pipeline folder")
    parser.add_argument("--dataset", choices=DATASET_KINDS, required=True)
    parser.add_argument("--data_root", required=True, help="dataset root, the manifest JSONL, or the photo CSV/JSONL")
    parser.add_argument("--split", default="test")
    parser.add_argument("--unpaired", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--batch_size", type=int, default=2, help="part of the result: keep it when resuming")
    parser.add_argument("--num_inference_steps", type=int, default=50)
    parser.add_argument("--guidance_scale", type=float, default=1.0)
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers (loading / preprocessing)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--num_threads", type=int, default=None, help="torch threads per process (CPU)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def _accelerator_available() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    from accelerate import PartialState

    from mvvton.batch_inference import BatchInferenceConfig, run_batch_inference
    from mvvton.batch_inference.datasets import build_dataset, describe_dataset
    from mvvton.pipelines import MVVTONPipeline

    args = parse_args(argv)
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    # on a machine without accelerator, processes started by `accelerate launch --multi_gpu` join a gloo group
    state = PartialState(cpu=not _accelerator_available())
    pipe = MVVTONPipeline.from_pretrained(args.pretrained_model_name_or_path, torch_dtype=getattr(torch, args.dtype))
    pipe.to(state.device)
    pipe.set_progress_bar_config(disable=True)  # one bar per process, over samples (not per denoising loop)
    description = describe_dataset(
        args.dataset, args.data_root, split=args.split, paired=not args.unpaired,
        height=args.height or pipe.config.default_height, width=args.width or pipe.config.default_width,
    )  # fmt: skip
    config = BatchInferenceConfig(
        output_dir=args.output_dir, seed=args.seed, batch_size=args.batch_size,
        num_inference_steps=args.num_inference_steps, guidance_scale=args.guidance_scale,
        num_workers=args.num_workers, dataset=description,
    )  # fmt: skip
    counts = run_batch_inference(
        pipe, build_dataset(description), config, state=state, show_progress=not args.no_progress
    )
    print(
        f"process {state.process_index}/{state.num_processes}: rendered {counts['done']}, "
        f"skipped {counts['skipped']} already present -> {args.output_dir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
