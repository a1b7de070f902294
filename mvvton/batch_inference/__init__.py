"""Batch inference over a dataset or a list of photo triples: sharded over processes, resumable, byte-reproducible."""

from mvvton.batch_inference.runner import (
    BatchInferenceConfig,
    clean_stale_temporaries,
    output_path,
    plan_batches,
    render_batch,
    run_batch_inference,
    sample_seed,
    shard_batches,
    to_unit,
    weights_hash,
)

__all__ = [
    "BatchInferenceConfig",
    "clean_stale_temporaries",
    "output_path",
    "plan_batches",
    "render_batch",
    "run_batch_inference",
    "sample_seed",
    "shard_batches",
    "to_unit",
    "weights_hash",
]
