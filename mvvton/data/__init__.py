"""Datasets (MVG, VITON-HD, DressCode, JSONL manifests), paired transforms, checks and the SynthMVG generator; the
trainers' dataset factory, cache and sampler (`training`) and procedural smoke samples (`synthetic`).

Never imports `mvvton.models` or `mvvton.pipelines`. Every dataset returns the sample dict of
:mod:`mvvton.data.sample`.
"""

from mvvton.data.base import TryOnDataset
from mvvton.data.mvg import MVGDataset
from mvvton.data.sample import SAMPLE_KEYS, RawSample
from mvvton.data.transforms import PairedTransform

__all__ = ["MVGDataset", "PairedTransform", "RawSample", "SAMPLE_KEYS", "TryOnDataset"]
