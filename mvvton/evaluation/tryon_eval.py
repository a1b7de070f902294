"""Garment-region quality of a try-on pipeline on a dataset with ground truth, per person view and per variant.

Region = the regenerated area (`inpaint_mask` > 0.5), where the garment is drawn. Variants:

- `agnostic`: the clothing-agnostic input itself (lower bound);
- `prewarp`: the geometric pre-warp composite the model starts from (baseline to beat);
- `model`: the pipeline with front + back garments;
- `front_as_back`: the same model given the front garment as both views;
- `no_hard_selection`: the global branch always sees the front garment;
- `no_soft_selection`: the garment encoder's pose-driven selection switched off (tokens used unmixed).

End to end, as `pipe(person, garment_front, garment_back)` runs without prepared inputs, the pre-warp is not the
dataset's but the library's TPS warp of the routed garment photo (`mvvton.preprocessing.warp`):

- `tps_prewarp`: that composite itself;
- `tps_model`: the model on it;
- `tps_front_as_back`: the front photo given as both views, so the back view's pre-warp is made from the front photo
  too (what a user without a back photo gets). `front_as_back` keeps the dataset's pre-warp, which was made from the
  true back garment: it only ablates the garment tokens.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mvvton.batch_inference import render_batch, sample_seed, to_unit
from mvvton.evaluation.metrics import detail_ratio, psnr, ssim
from mvvton.preprocessing.garment import garment_keypoints
from mvvton.preprocessing.warp import body_warp_garment, warped_composite

BASELINE_VARIANTS = ("agnostic", "prewarp")
MODEL_VARIANTS = ("model", "front_as_back", "no_hard_selection", "no_soft_selection")
END_TO_END_VARIANTS = ("tps_prewarp", "tps_model", "tps_front_as_back")


@contextmanager
def soft_selection_disabled(pipe):
    """Temporarily run the garment encoder without soft selection (its config switch; weights untouched)."""
    encoder = pipe.garment_encoder
    original = encoder.config.use_soft_selection
    encoder.register_to_config(use_soft_selection=False)
    try:
        yield
    finally:
        encoder.register_to_config(use_soft_selection=original)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """`(3, H, W)` in [-1, 1] -> `(H, W, 3)` uint8."""
    return np.round(to_unit(image).permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)


def tps_prewarp_batch(batch: dict, *, front_as_back: bool = False) -> torch.Tensor:
    """The library's pre-warp composite (`body_warp_garment`, as `TryOnPreprocessor` uses it) of each sample's routed
    garment (`garment_view`), as the pipeline builds it from photos: garment skeleton from the garment mask, warped
    onto `person_keypoints`, clipped to the inpaint mask, pasted into `agnostic`. With `front_as_back` the back slot
    holds the front photo (and its mask).

    Returns `(B, 3, H, W)` in [-1, 1].
    """
    composites = []
    for i, routed in enumerate(batch["garment_view"]):
        source = "front" if front_as_back else routed
        garment = _to_uint8(batch[f"garment_{source}"][i])
        garment_mask = (batch[f"garment_{source}_mask"][i, 0] > 0.5).float().cpu().numpy()
        inpaint_mask = batch["inpaint_mask"][i, 0].float().cpu().numpy()
        height, width = inpaint_mask.shape
        warped, warped_mask = body_warp_garment(
            garment, garment_mask, garment_keypoints(garment_mask, routed), batch["person_keypoints"][i].cpu().numpy(),
            (height, width), clip_mask=inpaint_mask,
        )  # fmt: skip
        composite = warped_composite(_to_uint8(batch["agnostic"][i]), warped, warped_mask)
        composites.append(torch.from_numpy(composite).permute(2, 0, 1).float() / 127.5 - 1.0)
    return torch.stack(composites)


def evaluate_tryon(
    pipe,
    dataset: Dataset,
    *,
    variants: tuple[str, ...] = BASELINE_VARIANTS + MODEL_VARIANTS + END_TO_END_VARIANTS,
    num_inference_steps: int = 50,
    seed: int = 23,
    batch_size: int = 4,
    guidance_scale: float = 1.0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean garment-region PSNR / SSIM / detail ratio: `{variant: {view: {"psnr", "ssim", "detail", "n"}}}` (view
    "all" included; `detail` is `metrics.detail_ratio`, the fine-detail energy kept relative to the ground truth).

    `guidance_scale` goes to every pipeline call (1.0: no classifier-free guidance, one UNet pass per step).
    """
    scores: dict[str, dict[str, list[tuple[float, float, float]]]] = defaultdict(lambda: defaultdict(list))
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        indices = list(range(len(batch["sample_id"])))
        seeds = [sample_seed(seed, sample_id) for sample_id in batch["sample_id"]]
        target, region = to_unit(batch["person"]), (batch["inpaint_mask"] > 0.5).float()
        outputs: dict[str, torch.Tensor] = {}
        if "agnostic" in variants:
            outputs["agnostic"] = to_unit(batch["agnostic"])
        if "prewarp" in variants:
            outputs["prewarp"] = to_unit(batch["inpaint_image"])
        common = dict(num_inference_steps=num_inference_steps, output_type="pt", guidance_scale=guidance_scale)
        if "model" in variants:
            outputs["model"] = render_batch(pipe, batch, indices, seeds, **common).images
        if "front_as_back" in variants:
            outputs["front_as_back"] = render_batch(pipe, batch, indices, seeds, front_as_back=True, **common).images
        if "no_hard_selection" in variants:
            outputs["no_hard_selection"] = render_batch(pipe, batch, indices, seeds, view="front", **common).images
        if "no_soft_selection" in variants and pipe.garment_encoder.config.use_soft_selection:
            with soft_selection_disabled(pipe):
                outputs["no_soft_selection"] = render_batch(pipe, batch, indices, seeds, **common).images
        if "tps_prewarp" in variants or "tps_model" in variants:
            tps_batch = {**batch, "inpaint_image": tps_prewarp_batch(batch)}
            if "tps_prewarp" in variants:
                outputs["tps_prewarp"] = to_unit(tps_batch["inpaint_image"])
            if "tps_model" in variants:
                outputs["tps_model"] = render_batch(pipe, tps_batch, indices, seeds, **common).images
        if "tps_front_as_back" in variants:
            tps_batch = {**batch, "inpaint_image": tps_prewarp_batch(batch, front_as_back=True)}
            outputs["tps_front_as_back"] = render_batch(pipe, tps_batch, indices, seeds, front_as_back=True,
                                                        **common).images  # fmt: skip
        for variant, images in outputs.items():
            images = images.float().cpu()
            values = zip(
                psnr(images, target, region).tolist(),
                ssim(images, target, region).tolist(),
                detail_ratio(images, target, region).tolist(),
            )
            for view, triple in zip(batch["view"], values):
                scores[variant][view].append(triple)
                scores[variant]["all"].append(triple)
    return {
        variant: {view: _mean_scores(per_sample) for view, per_sample in per_view.items()}
        for variant, per_view in scores.items()
    }


def _mean_scores(per_sample: list[tuple[float, float, float]]) -> dict[str, float]:
    columns = np.asarray(per_sample, dtype=np.float64).mean(axis=0)  # (3,): psnr, ssim, detail
    return {"psnr": float(columns[0]), "ssim": float(columns[1]), "detail": float(columns[2]), "n": len(per_sample)}


def format_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: one row per variant, PSNR / SSIM / detail ratio per view."""
    views = [view for view in ("front", "side", "back", "all") if any(view in r for r in results.values())]
    header = "| variant | " + " | ".join(f"{view} PSNR / SSIM / detail (n)" for view in views) + " |"
    lines = [header, "|" + "---|" * (len(views) + 1)]
    for variant, per_view in results.items():
        cells = []
        for view in views:
            score = per_view.get(view)
            cells.append(
                "—"
                if score is None
                else f"{score['psnr']:.2f} / {score['ssim']:.3f} / {score['detail']:.2f} ({score['n']})"
            )
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
