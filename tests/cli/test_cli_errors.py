"""CLI error contract: typed errors print one `error: ...` line (exit 2), anything else `internal error: ...` (exit 3);
output paths and model folders are checked before any weight is loaded."""

from __future__ import annotations

import os

import pytest

from mvvton.cli import main as cli_main
from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import get_dummy_components, synthetic_image


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name, seed in (("person", 0), ("front", 1), ("back", 2)):
        synthetic_image(seed, size=(96, 64)).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def broken_weights_model(tmp_path_factory):
    """A folder that passes the structural check but whose weights cannot load: loading it at all fails loudly."""
    folder = tmp_path_factory.mktemp("broken") / "model"
    MVVTONPipeline(**get_dummy_components()).save_pretrained(folder)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    return folder


def _try_on(photos, model, out, *extra):
    return cli_main(["try-on", "--person", str(photos / "person.png"), "--front", str(photos / "front.png"),
                     "--back", str(photos / "back.png"), "--model", str(model), "--out", str(out), *extra])  # fmt: skip


@pytest.mark.parametrize(
    ("out_name", "match"),
    [("result.gif2", "suffix"), ("missing/dir/result.png", "does not exist"), ("", "is a directory"),
     ("noext", "suffix")],  # fmt: skip
)
def test_bad_output_path_is_rejected_before_the_model_loads(photos, broken_weights_model, tmp_path, capsys,
                                                            out_name, match):  # fmt: skip
    assert _try_on(photos, broken_weights_model, tmp_path / out_name) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and "Traceback" not in err
    # the same call with a good output path does reach the (broken) weights: the order is proven
    assert _try_on(photos, broken_weights_model, tmp_path / "ok.png") == 2
    assert "could not load the pipeline" in capsys.readouterr().err


def test_existing_output_needs_overwrite(photos, broken_weights_model, tmp_path, capsys):
    out = tmp_path / "exists.png"
    out.write_bytes(b"keep me")
    assert _try_on(photos, broken_weights_model, out) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert _try_on(photos, broken_weights_model, out, "--overwrite") == 2  # passes the path check, fails at load
    assert "could not load the pipeline" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_folder_is_rejected(photos, broken_weights_model, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    assert _try_on(photos, broken_weights_model, folder / "out.png") == 2
    assert "not writable" in capsys.readouterr().err


def test_corrupt_model_index_is_one_error_line(photos, broken_weights_model, tmp_path, capsys):
    model = tmp_path / "model"
    MVVTONPipeline(**get_dummy_components()).save_pretrained(model)
    (model / "model_index.json").write_text("{ truncated")
    assert _try_on(photos, model, tmp_path / "out.png") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model_index.json" in err and "Traceback" not in err


def test_seed_out_of_range_is_a_usage_error(photos, tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        _try_on(photos, tmp_path, tmp_path / "out.png", "--seed", str(2**70))
    assert raised.value.code == 2 and "--seed" in capsys.readouterr().err


def test_internal_error_is_one_line_with_a_hint_and_verbose_shows_the_traceback(monkeypatch, capsys):
    import mvvton.cli.smoke as smoke

    def broken(args):
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(smoke, "_smoke", broken)
    assert cli_main(["smoke"]) == 3
    err = capsys.readouterr().err
    assert err == "internal error: RuntimeError: something unexpected (re-run with --verbose for the traceback)\n"
    assert cli_main(["--verbose", "smoke"]) == 3
    assert "Traceback" in capsys.readouterr().err
