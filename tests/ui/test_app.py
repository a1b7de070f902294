"""The page's runner and Blocks on a tiny random pipeline: real photos in, result + intermediates out; typed errors."""

from __future__ import annotations

import html

import numpy as np
import pytest

from mvvton.errors import InvalidArgumentError, InvalidImageError, MissingViewError, ModelLoadError
from mvvton.ui.app import TryOnRunner, load_pipeline
from mvvton.ui.intermediates import PANEL_LABELS
from tests.ui.conftest import TINY_HEIGHT, TINY_WIDTH


@pytest.mark.parametrize(
    "form",
    [
        {"view": "diagonal"},
        {"steps": 0},
        {"steps": 2.5},
        {"steps": 11},
        {"steps": "many"},
        {"seed": -1},
        {"seed": 2**63},
        {"seed": True},
        {"steps": float("inf")},
        {"guidance_scale": float("nan")},
        {"guidance_scale": 0.5},
        {"guidance_scale": 25},
    ],
)
def test_bad_form_values_are_typed_errors(tiny_pipe, form):
    values = {"view": "auto", "steps": 2, "seed": 1, "guidance_scale": 1.0, **form}
    with pytest.raises(InvalidArgumentError):
        TryOnRunner(tiny_pipe, max_steps=10).check_form(**values)


def test_good_form_values_are_typed(tiny_pipe):
    assert TryOnRunner(tiny_pipe).check_form("side", 3.0, "7", "2.5") == ("side", 3, 7, 2.5)
    assert TryOnRunner(tiny_pipe).check_form("auto", "4.0", 2**63 - 1, 1)[1:3] == (4, 2**63 - 1)  # big seeds exact


def test_guidance_needs_the_image_encoder(tiny_model_dir):
    from mvvton.pipelines import MVVTONPipeline

    pipe = MVVTONPipeline.from_pretrained(str(tiny_model_dir), image_encoder=None)
    with pytest.raises(InvalidArgumentError, match="no image encoder"):
        TryOnRunner(pipe).check_form("auto", 2, 1, 2.0)


def test_missing_model_folder_is_a_typed_error(tmp_path):
    with pytest.raises(ModelLoadError, match="model_index.json"):
        load_pipeline(tmp_path)


def test_missing_and_corrupt_uploads_are_typed_errors(tiny_pipe, example_photos, corrupt_photo):
    runner = TryOnRunner(tiny_pipe)
    with pytest.raises(InvalidArgumentError, match="person"):
        runner.run(None, str(example_photos["garment_front"]), None, steps=2)
    with pytest.raises(MissingViewError, match="front"):
        runner.run(str(example_photos["person"]), None, str(example_photos["garment_back"]), steps=2)
    with pytest.raises(InvalidImageError, match="person photo"):
        runner.run({"path": str(corrupt_photo)}, str(example_photos["garment_front"]), None, steps=2)


def test_run_renders_the_result_and_every_intermediate(tiny_pipe, example_photos):
    pytest.importorskip("mediapipe")
    calls = []
    outcome = TryOnRunner(tiny_pipe).run(
        {"path": str(example_photos["person"]), "orig_name": "person.jpg"},  # Gradio's upload payload
        {"path": str(example_photos["garment_front"])},
        str(example_photos["garment_back"]),
        view="auto",
        steps=3,
        seed=5,
        progress=lambda done, total, description: calls.append((done, total)),
    )
    assert outcome.image.size == (TINY_WIDTH, TINY_HEIGHT)
    assert [done for done, _ in calls] == [0, 0, 1, 2, 3] and {total for _, total in calls} == {3}
    assert list(outcome.panels) == list(PANEL_LABELS)
    for name, panel in outcome.panels.items():
        assert panel is not None and panel.dtype == np.uint8 and panel.shape[0] == TINY_HEIGHT, name
    assert "**Person view:** front (detected from the pose)" in outcome.summary


def _try_on_fn(demo):
    return next(fn for fn in demo.fns.values() if fn.api_name == "try_on").fn


def test_page_turns_typed_errors_into_readable_messages(tiny_pipe, example_photos, corrupt_photo):
    gr = pytest.importorskip("gradio")
    from mvvton.ui import build_demo

    try_on = _try_on_fn(build_demo(tiny_pipe))
    with pytest.raises(gr.Error) as caught:
        try_on({"path": str(corrupt_photo)}, {"path": str(example_photos["garment_front"])}, None, "auto", 2, 1, 1.0)
    assert caught.value.title == "InvalidImageError"
    assert "person photo" in caught.value.message and "Traceback" not in caught.value.message
    with pytest.raises(gr.Error) as caught:  # the message is HTML-escaped (Gradio renders it as HTML)
        try_on({"path": str(example_photos["person"])}, None, None, "<b>sideways</b>", 2, 1, 1.0)
    assert html.escape("'<b>sideways</b>'") in caught.value.message


def test_page_runs_a_try_on(tiny_pipe, example_photos):
    pytest.importorskip("gradio")
    pytest.importorskip("mediapipe")
    from mvvton.ui import build_demo

    outputs = _try_on_fn(build_demo(tiny_pipe))(
        {"path": str(example_photos["person"])}, {"path": str(example_photos["garment_front"])}, None,
        "back", 2, 1, 1.0,
    )  # fmt: skip
    image, summary, *panels = outputs
    assert image.size == (TINY_WIDTH, TINY_HEIGHT) and "back (set by you)" in summary
    assert "no back photo: the front photo stands in for the back" in summary  # in the page, not only in the log
    assert len(panels) == len(PANEL_LABELS) and all(panel is not None for panel in panels)


class _EmptyJobStore:
    def list_jobs(self, limit: int = 20, status: str | None = None) -> list:
        return []


def test_mount_ui_serves_the_page_on_the_service_app(tiny_pipe):
    pytest.importorskip("gradio")
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mvvton.ui import mount_ui

    app = mount_ui(fastapi.FastAPI(), pipe=tiny_pipe, job_store=_EmptyJobStore())
    with TestClient(app) as client:
        page = client.get("/ui/")
        assert page.status_code == 200 and "mvvton try-on" in page.text
        config = client.get("/ui/config").json()
        elem_ids = {component.get("props", {}).get("elem_id") for component in config["components"]}
        assert {"person", "garment-front", "garment-back", "result", "intermediates", "recent-jobs"} <= elem_ids
        assert config.get("analytics_enabled") is False


def test_ui_mounts_on_the_real_service_with_its_job_store(tiny_pipe, tmp_path):
    """`mvvton serve --ui`: the page on the service's own app, with the service's SQLite job store as the gallery."""
    pytest.importorskip("gradio")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mvvton.serving.app import ServiceConfig, create_app
    from mvvton.ui import mount_ui

    tiny_pipe.save_pretrained(tmp_path / "model")
    app = create_app(tmp_path / "model", config=ServiceConfig(store_dir=tmp_path / "store", api_key=None))
    mount_ui(app, pipe=tiny_pipe, job_store=app.state.store)
    client = TestClient(app)  # no lifespan: no worker threads needed to render the page
    page = client.get("/ui/")
    assert page.status_code == 200 and "mvvton try-on" in page.text
    assert client.get("/health").status_code == 200
