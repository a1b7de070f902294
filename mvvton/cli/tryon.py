"""`mvvton try-on`: one person photo + garment front/back photos -> try-on image (offline)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mvvton.cli import positive_int, seed_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("try-on", help="render a person wearing a garment (front + back product photos)")
    parser.add_argument("--person", required=True, help="person photo (front, side or back view)")
    parser.add_argument("--front", required=True, help="garment front product photo")
    parser.add_argument("--back", default=None, help="garment back product photo (default: reuse the front, warned)")
    parser.add_argument("--model", required=True, help="local mvvton pipeline folder (see `mvvton convert`)")
    parser.add_argument("--out", required=True, help="output image path (.png / .jpg / .webp); its folder must exist")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--mask", default=None, help="optional region to regenerate (white = regenerate)")
    parser.add_argument("--view", default="auto", choices=("auto", "front", "side", "back"))
    parser.add_argument("--steps", type=positive_int, default=50)
    parser.add_argument("--guidance-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=seed_argument, default=23)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--debug-dir", default=None, help="also write every intermediate (pose, masks, warp) here")
    parser.set_defaults(func=_try_on)


def _try_on(args: argparse.Namespace) -> int:
    import numpy as np
    import PIL.Image
    import torch

    from mvvton.pipelines import MVVTONPipeline
    from mvvton.pipelines.model_folder import check_pipeline_folder
    from mvvton.preprocessing.io import load_image, save_image_atomic
    from mvvton.utils.output_paths import check_output_image_path, check_writable_folder

    # every cheap check before any weight is read or any image decoded
    check_output_image_path(args.out, overwrite=args.overwrite)
    if args.debug_dir:
        check_writable_folder(Path(args.debug_dir).parent, what="the folder of --debug-dir")
    model = Path(args.model)
    check_pipeline_folder(model)
    person = load_image(args.person, name="person")
    front = load_image(args.front, name="garment front")
    back = load_image(args.back, name="garment back") if args.back else None
    mask = load_image(args.mask, name="mask").convert("L") if args.mask else None
    pipe = MVVTONPipeline.from_pretrained(str(model))
    result = pipe(
        person, front, back, mask_image=mask, view=args.view, num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale, height=args.height, width=args.width,
        generator=torch.Generator().manual_seed(args.seed), return_intermediates=args.debug_dir is not None,
    )  # fmt: skip
    save_image_atomic(result.images[0], args.out)
    print(f"wrote {args.out}")
    if args.debug_dir:
        debug = Path(args.debug_dir)
        info = {}
        for name, value in result.intermediates[0].items():
            if isinstance(value, PIL.Image.Image):
                save_image_atomic(value, debug / f"{name}.png")
            elif isinstance(value, np.ndarray) and value.ndim >= 2:
                save_image_atomic(value if value.dtype == np.uint8 else (np.clip(value, 0, 1) * 255).astype(np.uint8),
                                  debug / f"{name}.png")  # fmt: skip
            else:
                info[name] = value
        (debug / "routing.json").write_text(json.dumps(info, indent=2, default=str))
        print(f"wrote intermediates to {debug}")
    return 0
