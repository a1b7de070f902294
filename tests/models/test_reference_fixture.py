"""Our modules, loaded from the original checkpoint layout, reproduce the original MV-VTON code's outputs.

Fixture: ../shared/reference/tiny (original code run on CPU in fp32, random tiny weights); see its README.md.
Criterion per output: max|ours - ref| <= 1e-3 * max(1, max|ref|).
"""

from __future__ import annotations

import pytest

from mvvton.conversion.reference_check import (
    compute_reference_outputs,
    group_errors,
    load_reference_components,
    relative_error,
)


@pytest.fixture(scope="module")
def fixture(shared_dir):
    components, inputs, references = load_reference_components(shared_dir / "reference" / "tiny")
    return components, references, compute_reference_outputs(components, inputs)


def test_converter_reports_unused_groups(fixture):
    result = fixture[0]["_conversion"]
    assert result.variant == "multiview"
    assert result.absent_components == ["vae"]  # the fixture ships no VAE
    assert result.unused_groups["diffusion schedule buffers (recomputed by the scheduler)"] == 12
    assert result.unused_groups["garment-encoder middle block (computed and discarded by the original)"] > 0


def test_all_78_reference_outputs_reproduced(fixture):
    _, references, computed = fixture
    assert len(references) == 78
    errors = {name: relative_error(computed[name], references[name]) for name in references}
    failing = {name: error for name, error in errors.items() if error > 1e-3}
    assert not failing, f"outputs outside tolerance: {failing}"
    assert sum(count for _, count, _ in group_errors(computed, references)) == 78  # every output in a group


def test_local_tokens_actually_matter(fixture):
    """Guard against a vacuous pass: the local branch moves ε far beyond the tolerance."""
    _, references, computed = fixture
    assert relative_error(computed["eps_cond_nolocal"], references["eps_cond_local"]) > 0.05


def test_guidance_bug_reproduced_only_behind_switch(fixture):
    _, references, computed = fixture
    assert relative_error(computed["ddim_cfg3_index49_x_prev"], references["ddim_cfg3_index49_x_prev"]) <= 1e-3
    # our default guidance keeps the local tokens, so it must NOT match the buggy reference
    assert relative_error(computed["fixed_cfg3_index49_x_prev"], references["ddim_cfg3_index49_x_prev"]) > 1e-2
