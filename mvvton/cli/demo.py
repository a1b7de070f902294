"""`mvvton demo`: the embedded SynthMVG model on held-out synthetic people (front, side, back), offline."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mvvton.cli import positive_int, seed_argument

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "default_model"
DEMO_SEED = 20261121  # identities generated with this seed never appear in the training data (other seed)
COLUMNS = ("agnostic input", "garment front", "garment back", "routed to CLIP", "pre-warp", "result", "ground truth")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the embedded default model on held-out SynthMVG samples")
    parser.add_argument("--model", default=None, help=f"pipeline folder (default: the embedded {DEFAULT_MODEL_DIR})")
    parser.add_argument("--output", default="mvvton_demo.png", help="grid image to write")
    parser.add_argument("--identities", type=positive_int, default=2, help="held-out identities (3 views each)")
    parser.add_argument("--steps", type=positive_int, default=50)
    parser.add_argument("--seed", type=seed_argument, default=23)
    parser.add_argument("--data-seed", type=seed_argument, default=DEMO_SEED)
    parser.set_defaults(func=_demo)


def _label(text: str, width: int, height: int = 18):
    import cv2
    import numpy as np

    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    scale = 0.35
    (text_width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.putText(canvas, text, (max(1, (width - text_width) // 2), height - 6), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    return canvas


def build_grid(rows: list[list], row_labels: list[str]):
    """Rows of equally sized uint8 RGB tiles -> one grid with column headers and row labels."""
    import numpy as np

    tile_height, tile_width = rows[0][0].shape[:2]
    gap = 2
    header = np.concatenate([_label(name, tile_width) for name in COLUMNS], axis=1)
    lines = [np.pad(header, ((0, 0), (0, gap * (len(COLUMNS) - 1)), (0, 0)), constant_values=255)]
    for tiles, label in zip(rows, row_labels):
        padded = [np.pad(tile, ((0, 0), (0, gap if i < len(tiles) - 1 else 0), (0, 0)), constant_values=255)
                  for i, tile in enumerate(tiles)]  # fmt: skip
        lines.append(np.concatenate(padded, axis=1))
        lines.append(_label(label, lines[-1].shape[1]))
    return np.concatenate(lines, axis=0)


def _demo(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from torch.utils.data import default_collate

    from mvvton.batch_inference import render_batch, sample_seed
    from mvvton.data import MVGDataset
    from mvvton.data.synth import SynthConfig, generate_synthmvg
    from mvvton.evaluation import detail_ratio, psnr, ssim
    from mvvton.pipelines import MVVTONPipeline
    from mvvton.pipelines.model_folder import check_pipeline_folder
    from mvvton.preprocessing.io import save_image_atomic
    from mvvton.utils.output_paths import check_output_image_path

    torch.set_num_threads(min(2, torch.get_num_threads()))
    start = time.perf_counter()
    model_dir = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    check_output_image_path(args.output, overwrite=True)  # the demo grid is regenerated on every run
    check_pipeline_folder(model_dir)
    pipe = MVVTONPipeline.from_pretrained(str(model_dir))
    pipe.set_progress_bar_config(disable=True)
    height, width = pipe.config.default_height, pipe.config.default_width

    with tempfile.TemporaryDirectory(prefix="mvvton-demo-") as tmp:
        synth = SynthConfig(identities=max(2, args.identities + 1), height=height, width=width, seed=args.data_seed,
                            test_fraction=0.5)  # fmt: skip
        generate_synthmvg(tmp, synth, workers=1)
        dataset = MVGDataset(tmp, split="test", paired=True, height=height, width=width)
        samples = [dataset[i] for i in range(min(len(dataset), 3 * args.identities))]
    batch = default_collate(samples)
    indices = list(range(len(samples)))
    seeds = [sample_seed(args.seed, sample_id) for sample_id in batch["sample_id"]]
    output = render_batch(
        pipe, batch, indices, seeds, num_inference_steps=args.steps, output_type="pt", return_intermediates=True
    )
    results, routed = output.images, [info["routed_garment"] for info in output.intermediates]

    def unit(images: torch.Tensor) -> torch.Tensor:
        return (images.clamp(-1, 1) + 1) / 2

    def tile(image: torch.Tensor) -> np.ndarray:
        return (image.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)

    target, region = unit(batch["person"]), (batch["inpaint_mask"] > 0.5).float()
    model_psnr, model_ssim = psnr(results, target, region), ssim(results, target, region)
    warp_psnr = psnr(unit(batch["inpaint_image"]), target, region)
    model_detail = detail_ratio(results, target, region)
    warp_detail = detail_ratio(unit(batch["inpaint_image"]), target, region)
    rows, labels = [], []
    for i in indices:
        routed_garment = batch["garment_front"][i] if routed[i] == "front" else batch["garment_back"][i]
        rows.append([tile(unit(batch["agnostic"][i])), tile(unit(batch["garment_front"][i])),
                     tile(unit(batch["garment_back"][i])), tile(unit(routed_garment)), tile(unit(batch["inpaint_image"][i])),
                     tile(results[i]), tile(target[i])])  # fmt: skip
        labels.append(f"{batch['sample_id'][i]}: {batch['view'][i]} view -> {routed[i]} garment; "
                      f"garment-region PSNR {model_psnr[i]:.1f} dB (pre-warp {warp_psnr[i]:.1f})")  # fmt: skip
    save_image_atomic(build_grid(rows, labels), args.output)
    print(f"wrote {args.output} ({len(indices)} held-out samples, {args.steps} DDIM steps)")
    print(
        f"metrics: garment-region PSNR {model_psnr.mean():.2f} dB (pre-warp {warp_psnr.mean():.2f} dB), "
        f"SSIM {model_ssim.mean():.3f}, detail ratio {model_detail.mean():.2f} (pre-warp {warp_detail.mean():.2f}); "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0
