"""FID / KID: torchmetrics statistics agree with an independent scipy / numpy computation; properties with a
random-initialised Inception."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from mvvton.evaluation.distribution import (
    frechet_distance,
    inception_features,
    kernel_inception_distance,
    resize_for_inception,
)
from mvvton.evaluation.networks import FIDInceptionV3, random_init_


def scipy_frechet(real: np.ndarray, fake: np.ndarray) -> float:
    mu1, mu2 = real.mean(0), fake.mean(0)
    sigma1, sigma2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * root.real))


def numpy_unbiased_mmd(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018)."""
    d, m = real.shape[1], real.shape[0]

    def kernel(a, b):
        return (a @ b.T / d + 1) ** 3

    k_xx, k_yy, k_xy = kernel(real, real), kernel(fake, fake), kernel(real, fake)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def test_fid_matches_scipy():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 12))
    fake = rng.normal(size=(400, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 0.3
    ours = frechet_distance(torch.from_numpy(real), torch.from_numpy(fake))
    assert ours == pytest.approx(scipy_frechet(real, fake), rel=1e-6)


def test_kid_matches_numpy_on_the_full_set():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(60, 10)), rng.normal(size=(60, 10)) + 0.2
    mean, std, size = kernel_inception_distance(
        torch.from_numpy(real), torch.from_numpy(fake), subsets=3, subset_size=60
    )
    assert size == 60 and std == pytest.approx(0.0, abs=1e-9)  # every subset is the whole (permuted) set
    assert mean == pytest.approx(numpy_unbiased_mmd(real, fake), rel=1e-6)


def test_kid_subsets_are_seeded():
    rng = np.random.default_rng(2)
    real, fake = torch.from_numpy(rng.normal(size=(50, 6))), torch.from_numpy(rng.normal(size=(40, 6)))
    first = kernel_inception_distance(real, fake, subsets=5, subset_size=1000, seed=7)
    assert first[2] == 40  # capped at the smaller set
    assert first == kernel_inception_distance(real, fake, subsets=5, subset_size=1000, seed=7)


def smooth_images(count: int, seed: int, size: int = 80) -> torch.Tensor:
    """A simple image distribution: low-frequency random colour fields, `(count, 3, size, size)` in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="module")
def inception():
    return random_init_(FIDInceptionV3(resize_input=False), seed=0)


def test_fid_properties_with_random_init_inception(inception):
    base = smooth_images(16, seed=0)
    noise = torch.randn(base.shape, generator=torch.Generator().manual_seed(5))
    levels = (0.05, 0.15, 0.4)
    with torch.no_grad():  # one forward pass: (1 + levels) x 16 images
        features = inception(torch.cat([base] + [(base + level * noise).clamp(0, 1) for level in levels])).double()
    real, noisy = features[:16], features[16:].split(16)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-5 * float(real.var(0).sum()))
    scores = [frechet_distance(real, fake) for fake in noisy]
    assert all(a < b for a, b in zip(scores, scores[1:])), scores


def test_kid_near_zero_for_one_distribution(inception):
    with torch.no_grad():
        images = torch.cat(
            [smooth_images(24, seed=1), smooth_images(24, seed=2), smooth_images(24, seed=3) * 0.5 + 0.5]
        )
        first, second, shifted = inception(images).double().split(24)
    same, same_std, _ = kernel_inception_distance(first, second, subsets=20, subset_size=12)
    different, _, _ = kernel_inception_distance(first, shifted, subsets=20, subset_size=12)
    assert abs(same) < 3 * same_std + 1e-12
    assert abs(same) < 0.1 * different


def test_resize_modes():
    images = smooth_images(2, seed=4, size=64)
    for mode in ("clean", "bilinear"):
        resized = resize_for_inception(images, mode)
        assert resized.shape == (2, 3, 299, 299) and resized.min() >= 0 and resized.max() <= 1 + 1e-6
    model = random_init_(FIDInceptionV3(), seed=0)
    features = inception_features(model, images, "bilinear")
    assert features.dtype == torch.float64 and features.shape == (2, 2048)
    assert model.resize_input  # restored
