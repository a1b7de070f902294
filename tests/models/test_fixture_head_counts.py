"""Head counts are read from a fixture's config.json (they cannot be recovered from tensor shapes)."""

from __future__ import annotations

import json

import pytest

from mvvton.cli.convert import head_count_guesses
from mvvton.conversion.reference_check import fixture_head_counts
from mvvton.errors import CheckpointConversionError


def test_shared_fixture_head_counts(shared_dir):
    assert fixture_head_counts(shared_dir / "reference" / "tiny") == (4, 4)


def test_other_head_counts_are_followed_and_missing_config_is_typed(shared_dir, tmp_path):
    config = json.loads((shared_dir / "reference" / "tiny" / "config.json").read_text())
    unet_key = next(key for key in config if key.startswith("unet_config"))
    clip_key = next(key for key in config if key.startswith("clip_vision_config"))
    config[unet_key]["num_heads"], config[clip_key]["num_attention_heads"] = 2, 8
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert fixture_head_counts(tmp_path) == (2, 8)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointConversionError, match="config.json"):
        fixture_head_counts(empty)


def test_convert_warns_only_when_a_head_count_is_a_guess():
    released = {"unet": {"block_out_channels": (320, 640, 1280, 1280)},
                "image_encoder": {"vision_config": {"hidden_size": 1024, "num_attention_heads": 16}}}  # fmt: skip
    assert head_count_guesses(released, None, None) == []
    small = {"unet": {"block_out_channels": (32, 32)}, "image_encoder": {"vision_config": {"hidden_size": 32}}}
    warnings = head_count_guesses(small, None, None)
    assert len(warnings) == 2 and "guess" in warnings[0] and "guess" in warnings[1]
    assert head_count_guesses(small, 4, 4) == []
