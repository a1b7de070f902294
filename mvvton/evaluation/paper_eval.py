"""The paper metrics of a set of try-on results: SSIM, PSNR, LPIPS (paired, whole image and garment region), FID
and KID (generated vs ground-truth images), overall and per person view.

Paired runs (the try-on garment is the one the person wears) get every metric; unpaired runs only FID / KID, since
no ground truth exists for them — the protocol of VITON-HD, DressCode, LaDI-VTON and MV-VTON.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from mvvton.evaluation.distribution import frechet_distance, inception_features, kernel_inception_distance
from mvvton.evaluation.metrics import psnr
from mvvton.evaluation.networks.inception import FIDInceptionV3
from mvvton.evaluation.networks.lpips import LPIPS
from mvvton.evaluation.protocol import VIEWS, EvalProtocol

ALL = "all"


@dataclass
class FeatureNetworks:
    """The networks of the learned metrics and how their weights were obtained (reported with the numbers).

    `inception` None skips FID / KID; `lpips` maps a net name ("alex", "vgg") to its network. `weights` says, per
    network, "published: <file>" or "random-init (seed s): NOT comparable with papers".
    """

    inception: FIDInceptionV3 | None = None
    lpips: dict[str, LPIPS] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)


@dataclass
class EvalReport:
    """Results: `groups[group][metric]` with group "all" and each view present; `samples` per-sample values."""

    protocol: dict
    paired: bool
    networks: dict[str, str]
    groups: dict[str, dict[str, float | int | None]]
    samples: list[dict]
    notes: list[str]
    source: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "source": self.source, "paired": self.paired, "protocol": self.protocol, "networks": self.networks,
            "groups": self.groups, "notes": self.notes, "samples": self.samples,
        }  # fmt: skip


def _collate(items: list[dict]) -> list[dict]:
    return items


def ssim_values(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-sample SSIM `(B,)` with torchmetrics' implementation (11x11 Gaussian, sigma 1.5, data range 1), as
    LaDI-VTON's `StructuralSimilarityIndexMeasure(data_range=1.0)`; with `mask`, the SSIM map averaged in the mask."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    if mask is None:
        return structural_similarity_index_measure(prediction, target, data_range=1.0, reduction="none")
    _, ssim_map = structural_similarity_index_measure(
        prediction, target, data_range=1.0, reduction="none", return_full_image=True
    )
    ssim_map = ssim_map.mean(dim=1, keepdim=True)  # (B, 1, H, W), channel mean
    if ssim_map.shape[-2:] != mask.shape[-2:]:
        ssim_map = F.interpolate(ssim_map, size=mask.shape[-2:], mode="nearest")
    return (ssim_map * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp_min(1.0)


def _fit(item: dict, size: tuple[int, int] | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generated, reference and mask at the evaluation size (generated's own size when `size` is None)."""
    generated, reference, mask = item["generated"], item["reference"], item["mask"]
    target = tuple(size) if size is not None else tuple(generated.shape[-2:])

    def image(tensor: torch.Tensor) -> torch.Tensor:
        if tuple(tensor.shape[-2:]) == target:
            return tensor
        return F.interpolate(tensor[None], size=target, mode="bilinear", align_corners=False, antialias=True)[0].clamp(
            0, 1
        )

    if tuple(mask.shape[-2:]) != target:
        mask = F.interpolate(mask[None], size=target, mode="nearest")[0]
    return image(generated), image(reference), mask


@torch.no_grad()
def evaluate(
    source: Dataset,
    networks: FeatureNetworks,
    protocol: EvalProtocol | None = None,
    *,
    paired: bool = True,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
) -> EvalReport:
    """Compute the metrics of every item of `source` (see `mvvton.evaluation.sources`) and aggregate them.

    Per-sample metrics (paired only): `ssim`, `psnr`, `lpips_<net>`, and with a garment mask `*_garment` variants.
    Set metrics per group: `fid`, `kid` (x `protocol.kid_scale`), `kid_std`, `kid_subset_size`; a group with fewer
    than 2 images gets None and a note.
    """
    protocol = protocol or EvalProtocol()
    device = torch.device(device)
    lpips_nets = {net: model.to(device) for net, model in networks.lpips.items() if net in protocol.lpips_nets}
    inception = networks.inception.to(device) if networks.inception is not None else None
    samples: list[dict] = []
    fake_features: list[torch.Tensor] = []
    real_features: list[torch.Tensor] = []
    loader = DataLoader(source, batch_size=batch_size, num_workers=num_workers, collate_fn=_collate)
    for items in loader:
        fitted = [_fit(item, protocol.size) for item in items]
        sizes = {tuple(generated.shape) for generated, _, _ in fitted}
        groups = [[i for i, (g, _, _) in enumerate(fitted) if tuple(g.shape) == s] for s in sorted(sizes)]
        rows = [{"sample_id": item["sample_id"], "view": item["view"]} for item in items]
        for indices in groups:  # one tensor batch per image size
            generated = torch.stack([fitted[i][0] for i in indices]).to(device)
            reference = torch.stack([fitted[i][1] for i in indices]).to(device)
            mask = torch.stack([fitted[i][2] for i in indices]).to(device)
            has_mask = [bool(items[i]["has_mask"]) and float(fitted[i][2].sum()) > 0 for i in indices]
            if paired:
                values = {"ssim": ssim_values(generated, reference, None), "psnr": psnr(generated, reference)}
                garment = {
                    "ssim_garment": ssim_values(generated, reference, mask),
                    "psnr_garment": psnr(generated, reference, mask),
                }
                for net, model in lpips_nets.items():
                    values[f"lpips_{net}"] = model(generated, reference)
                    garment[f"lpips_{net}_garment"] = model(generated, reference, mask)
                for position, index in enumerate(indices):
                    rows[index].update({key: float(value[position]) for key, value in values.items()})
                    if has_mask[position]:
                        rows[index].update({key: float(value[position]) for key, value in garment.items()})
            if inception is not None:
                fake = inception_features(inception, generated, protocol.fid_resize)
                real = inception_features(inception, reference, protocol.fid_resize)
                for position, index in enumerate(indices):
                    rows[index]["_features"] = (fake[position], real[position])
        for row in rows:
            features = row.pop("_features", None)
            if features is not None:
                fake_features.append(features[0])
                real_features.append(features[1])
            samples.append(row)
    return _aggregate(samples, fake_features, real_features, networks, protocol, paired)


def _aggregate(
    samples: list[dict],
    fake_features: list[torch.Tensor],
    real_features: list[torch.Tensor],
    networks: FeatureNetworks,
    protocol: EvalProtocol,
    paired: bool,
) -> EvalReport:
    members: dict[str, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        members[ALL].append(index)
        members[sample["view"]].append(index)
    other = [label for label in sorted(set(members) - {ALL, *VIEWS}) if members[label] != members[ALL]]
    order = [ALL] + [view for view in VIEWS if view in members] + other  # an unlabelled set is just "all"
    notes: list[str] = []
    if not paired:
        notes.append("unpaired run: no ground truth for the generated garment, so only FID / KID are reported")
    groups: dict[str, dict[str, float | int | None]] = {}
    per_sample_keys = sorted({key for sample in samples for key in sample if key not in ("sample_id", "view")})
    for group in order:
        indices = members[group]
        result: dict[str, float | int | None] = {"n": len(indices)}
        for key in per_sample_keys:
            values = [samples[i][key] for i in indices if key in samples[i]]
            result[key] = sum(values) / len(values) if values else None
            if values and key.endswith("_garment"):
                result[f"n_{key}"] = len(values)
        if fake_features:
            fake = torch.stack([fake_features[i] for i in indices])
            real = torch.stack([real_features[i] for i in indices])
            if len(indices) >= 2:
                result["fid"] = frechet_distance(real, fake)
                mean, std, size = kernel_inception_distance(
                    real, fake, subsets=protocol.kid_subsets, subset_size=protocol.kid_subset_size, seed=protocol.seed
                )
                result.update(kid=mean * protocol.kid_scale, kid_std=std * protocol.kid_scale, kid_subset_size=size)
                if size == len(indices) and protocol.kid_subsets > 1:
                    notes.append(f"{group}: every KID subset is the whole set of {size} images, so its std is 0")
                if len(indices) < 2048:
                    notes.append(
                        f"{group}: FID from {len(indices)} images (< 2048, the feature dimension): the covariance is "
                        "rank-deficient and FID is biased upwards; compare only runs of the same size"
                    )
            else:
                result.update(fid=None, kid=None, kid_std=None, kid_subset_size=None)
                notes.append(f"{group}: {len(indices)} image(s), FID / KID need at least 2")
        groups[group] = {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
                         for key, value in result.items()}  # fmt: skip
    if networks.inception is None:
        notes.append("FID / KID not computed: pass --fid-weights (or --random-init-networks for an unlabelled check)")
    missing_lpips = [net for net in protocol.lpips_nets if net not in networks.lpips]
    if missing_lpips and paired:
        notes.append(f"LPIPS-{'/'.join(missing_lpips)} not computed: pass --lpips-weights")
    return EvalReport(
        protocol=protocol.to_dict(), paired=paired, networks=dict(networks.weights), groups=groups, samples=samples,
        notes=notes,
    )  # fmt: skip
