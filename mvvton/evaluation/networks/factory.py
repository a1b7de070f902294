"""Build the metric networks from local weight files, or random-initialised and labelled as such."""

from __future__ import annotations

import os
from pathlib import Path

from mvvton.errors import ModelLoadError
from mvvton.evaluation.networks.inception import FID_WEIGHTS_FILE, FIDInceptionV3, random_init_
from mvvton.evaluation.networks.lpips import LPIPS, TRUNKS, random_init_lpips_

# published file names looked up in an --lpips-weights folder: net -> (heads file, trunk file prefix)
LPIPS_FILES = {"alex": ("alex.pth", "alexnet"), "vgg": ("vgg.pth", "vgg16")}
RANDOM_LABEL = "random-init (seed {seed}): NOT comparable with published numbers"


def lpips_files(folder: str | os.PathLike, net: str) -> tuple[Path, Path]:
    """The (trunk, heads) files of LPIPS-`net` in `folder`: `alex.pth` + `alexnet*.pth`, or `vgg.pth` + `vgg16*.pth`."""
    folder = Path(folder)
    heads_name, trunk_prefix = LPIPS_FILES[net]
    spec = TRUNKS[net]
    if not folder.is_dir():
        raise ModelLoadError(
            f"--lpips-weights {folder} is not a folder: put {spec.heads_file} and {spec.trunk_file} in one folder"
        )
    heads = folder / heads_name
    trunks = sorted(path for path in folder.glob(f"{trunk_prefix}*") if path.suffix in (".pth", ".pt", ".safetensors"))
    if not heads.is_file() or not trunks:
        raise ModelLoadError(
            f"LPIPS-{net} needs two files in {folder}: {spec.heads_file} and {spec.trunk_file}; found "
            f"{sorted(p.name for p in folder.iterdir())}"
        )
    return trunks[0], heads


def build_feature_networks(
    *,
    fid_weights: str | os.PathLike | None = None,
    lpips_weights: str | os.PathLike | None = None,
    lpips_nets: tuple[str, ...] = ("alex", "vgg"),
    random_init_seed: int | None = None,
):
    """The `FeatureNetworks` for `mvvton.evaluation.paper_eval.evaluate`.

    Args:
        fid_weights: `pt_inception-2015-12-05-6726825d.pth`; None skips FID / KID unless `random_init_seed` is set.
        lpips_weights: a folder with the LPIPS heads and torchvision trunk files (see `lpips_files`); only the nets of
            `lpips_nets` must all be there (a missing file raises, naming it).
        random_init_seed: build the networks whose weights were not given with seeded random weights, labelled
            `random-init` in every report.
    """
    from mvvton.evaluation.paper_eval import FeatureNetworks

    networks = FeatureNetworks()
    if fid_weights is not None:
        networks.inception = FIDInceptionV3.from_file(fid_weights)
        networks.weights["inception"] = f"published: {Path(fid_weights).name}"
    elif random_init_seed is not None:
        networks.inception = random_init_(FIDInceptionV3(), random_init_seed)
        networks.weights["inception"] = (
            RANDOM_LABEL.format(seed=random_init_seed) + f" (expected {FID_WEIGHTS_FILE.split(' ')[0]})"
        )
    for net in lpips_nets:
        if lpips_weights is not None:
            trunk, heads = lpips_files(lpips_weights, net)
            networks.lpips[net] = LPIPS.from_files(net, trunk, heads)
            networks.weights[f"lpips_{net}"] = f"published: {trunk.name} + {heads.name}"
        elif random_init_seed is not None:
            networks.lpips[net] = random_init_lpips_(LPIPS(net), random_init_seed)
            networks.weights[f"lpips_{net}"] = RANDOM_LABEL.format(seed=random_init_seed)
    return networks
