"""The try-on web page (Gradio): `build_demo()` -> `gr.Blocks`, `mount_ui(app)` puts it on a FastAPI app at `/ui`.

    mvvton ui                         # the embedded default model, http://127.0.0.1:7860
    mvvton ui --model converted/mvg   # converted weights

The page never reaches the internet: analytics are off, there are no share links, server-side rendering (a Node
process) is off and the default theme's fonts are served by the app itself. Model work runs in Gradio's worker
threads, one call at a time (a diffusion pipeline is not re-entrant), never on the event loop.
"""

from __future__ import annotations

import html
import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mvvton.errors import InvalidArgumentError, InvalidArgumentTypeError, MissingViewError, MVVTONError
from mvvton.ui.examples import EXAMPLES_DIR, example_rows
from mvvton.ui.intermediates import PANEL_LABELS, render_panels, routing_summary

if TYPE_CHECKING:
    import gradio as gr
    from fastapi import FastAPI
    from PIL import Image

    from mvvton.pipelines import MVVTONPipeline
    from mvvton.ui.jobs import JobStoreLike

logger = logging.getLogger(__name__)

VIEW_CHOICES = ("auto", "front", "side", "back")
DEFAULT_STEPS = 50  # the released sampler: DDIM, 50 steps
DEFAULT_SEED = 23
MAX_STEPS = 200
MAX_SEED = 2**63 - 1
MAX_GUIDANCE_SCALE = 20.0
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # as the HTTP service
RECENT_JOBS = 20
UI_PATH = "/ui"
# working-size images (e.g. 128x96) are scaled up to fill their boxes instead of showing at their natural size
CSS = """
.mvvton-photo img { width: 100%; height: 100%; object-fit: contain; }
"""

ProgressFn = Callable[[int, int, str], None]  # (done, total, description)


def import_gradio():
    """Import gradio with analytics forced off (it reads `GRADIO_ANALYTICS_ENABLED` at import and at launch)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError as error:
        from mvvton.errors import MissingDependencyError

        raise MissingDependencyError("the web page needs gradio: pip install 'mvvton[ui]'") from error
    return gradio


def default_model_dir() -> Path:
    from mvvton.cli.demo import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR


def load_pipeline(model_path: str | os.PathLike | None = None, device: str = "cpu") -> MVVTONPipeline:
    """A local mvvton pipeline folder (default: the embedded SynthMVG model) on `device`, progress bars off."""
    from mvvton.errors import ModelLoadError
    from mvvton.pipelines import MVVTONPipeline

    folder = Path(model_path) if model_path is not None else default_model_dir()
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(
            f"{folder} is not an mvvton pipeline folder (no model_index.json); pass a folder made by "
            "`mvvton convert` or by training (docs/training.md), or no --model for the embedded default"
        )
    pipe = MVVTONPipeline.from_pretrained(str(folder)).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------------------------------ the runner
@dataclass
class TryOnOutcome:
    """One finished try-on: the result, the routing text and the intermediates panels (`PANEL_LABELS` order)."""

    image: Image.Image
    summary: str
    panels: dict[str, np.ndarray | None]


def upload_path(value: Any) -> str | None:
    """An image input as the page sends it (Gradio's file payload `{"path": ...}`) or a plain path -> path or None."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("path")
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise InvalidArgumentTypeError(f"an image input must be an uploaded file or a path, got {type(value).__name__}")


def _as_int(value: Any, name: str, low: int, high: int) -> int:
    """A whole number from the form (int, integral float, or their text) within `low..high`; exact for big seeds."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, (float, str)):
        try:
            number = int(value) if isinstance(value, str) else None
        except ValueError:
            pass
        if number is None:
            try:
                as_float = float(value)
            except ValueError:
                as_float = math.nan
            number = int(as_float) if as_float.is_integer() else None
    if number is None or not low <= number <= high:
        raise InvalidArgumentError(f"{name} must be a whole number in {low}..{high}, got {value!r}")
    return number


class TryOnRunner:
    """Runs the pipeline for the page: checks the form, loads the uploads, serialises calls, reports step progress.

    Args:
        pipe: a loaded `MVVTONPipeline`.
        max_steps: upper bound of the steps slider (and of what the API accepts).
        lock: the lock that serialises pipeline calls; pass the service's lock when the page shares its pipeline.
    """

    def __init__(self, pipe: MVVTONPipeline, *, max_steps: int = MAX_STEPS, lock: threading.Lock | None = None):
        if max_steps < 1:
            raise InvalidArgumentError(f"max_steps must be >= 1, got {max_steps}")
        self.pipe = pipe
        self.max_steps = max_steps
        self.lock = lock or threading.Lock()

    @property
    def supports_guidance(self) -> bool:
        """Classifier-free guidance needs the image encoder's unconditional vector."""
        return getattr(self.pipe, "image_encoder", None) is not None

    def check_form(self, view: Any, steps: Any, seed: Any, guidance_scale: Any) -> tuple[str, int, int, float]:
        """Validate the form values (the API can send anything the sliders would not); returns them typed."""
        if view not in VIEW_CHOICES:
            raise InvalidArgumentError(f"view must be one of {', '.join(VIEW_CHOICES)}, got {view!r}")
        steps = _as_int(steps, "steps", 1, self.max_steps)
        seed = _as_int(seed, "seed", 0, MAX_SEED)
        try:
            guidance = float(guidance_scale)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"guidance scale must be a number, got {guidance_scale!r}") from None
        if not math.isfinite(guidance) or not 1.0 <= guidance <= MAX_GUIDANCE_SCALE:
            raise InvalidArgumentError(f"guidance scale must be in 1..{MAX_GUIDANCE_SCALE:g}, got {guidance_scale!r}")
        if guidance > 1.0 and not self.supports_guidance:
            raise InvalidArgumentError(
                "this model has no image encoder, so classifier-free guidance is not available: set guidance to 1"
            )
        return view, steps, seed, guidance

    def run(
        self,
        person: Any,
        garment_front: Any,
        garment_back: Any,
        view: Any = "auto",
        steps: Any = DEFAULT_STEPS,
        seed: Any = DEFAULT_SEED,
        guidance_scale: Any = 1.0,
        progress: ProgressFn | None = None,
    ) -> TryOnOutcome:
        """Render the person wearing the garment. Raises `MVVTONError` subclasses for anything the user can fix.

        Images are file payloads or paths (person and garment front required, garment back optional).
        """
        import torch

        from mvvton.preprocessing.io import load_image

        view, steps, seed, guidance = self.check_form(view, steps, seed, guidance_scale)
        paths = [upload_path(person), upload_path(garment_front), upload_path(garment_back)]
        if paths[0] is None:
            raise InvalidArgumentError("upload a photo of the person (front, side or back view)")
        if paths[1] is None:
            raise MissingViewError("upload the garment's front product photo (the back photo is optional)")
        images = [
            None if path is None else load_image(path, name=f"the {name} photo")
            for path, name in zip(paths, ("person", "garment front", "garment back"))
        ]

        def report(done: int, description: str, total: int = steps) -> None:
            if progress is not None:
                progress(done, total, description)

        def on_step_end(pipe: MVVTONPipeline, step: int, timestep: Any, tensors: dict) -> dict:
            total = pipe.num_timesteps  # the scheduler's count (equals `steps` for DDIM)
            report(step + 1, f"denoising, step {step + 1} of {total}", total)
            return {}

        report(0, "waiting for the model" if self.lock.locked() else "preprocessing")
        with self.lock:
            report(0, "preprocessing: pose, masks, view, pre-warp")
            output = self.pipe(
                images[0], images[1], images[2], view=view, num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator().manual_seed(seed), return_intermediates=True,
                callback_on_step_end=on_step_end,
            )  # fmt: skip
        info = output.intermediates[0]
        notes = []
        if images[2] is None and self.pipe.num_garment_views > 1:  # the pipeline only warns in the server log
            notes.append(
                "no back photo: the front photo stands in for the back, so back and side views show its print"
            )
        return TryOnOutcome(output.images[0], routing_summary(info, view, notes), render_panels(info))


# ------------------------------------------------------------------------------------------------------- the page
def _model_name(pipe: MVVTONPipeline, model_path: str | os.PathLike | None) -> str:
    source = model_path if model_path is not None else getattr(pipe, "name_or_path", None)
    if not source:
        return type(pipe).__name__
    folder = Path(source).resolve()
    return "embedded SynthMVG default" if folder == default_model_dir() else folder.name


def _header(pipe: MVVTONPipeline, model_name: str) -> str:
    height, width = pipe.config.default_height, pipe.config.default_width
    return (
        "# mvvton: multi-view virtual try-on\n"
        f"Model **{html.escape(model_name)}**, working size {height}×{width}. Upload a person photo (front, side "
        "or back view) and the garment's front and back product photos; the result keeps the person's pixels "
        "outside the regenerated region. Everything runs on this machine."
    )


def build_demo(
    pipe: MVVTONPipeline | None = None,
    model_path: str | os.PathLike | None = None,
    job_store: JobStoreLike | None = None,
    *,
    device: str = "cpu",
    max_steps: int = MAX_STEPS,
    lock: threading.Lock | None = None,
) -> gr.Blocks:
    """Build the try-on page.

    Args:
        pipe: a loaded `MVVTONPipeline`; if None, `model_path` is loaded (default: the embedded SynthMVG model).
        model_path: local pipeline folder, used when `pipe` is None.
        job_store: the service's job store (`mvvton.serving.store.JobStore` or anything with the same
            `list_jobs(limit, status)`); when given, the page shows a gallery of recent jobs.
        device: where to load `model_path`.
        max_steps: the steps slider's maximum.
        lock: serialises pipeline calls; pass the service's lock when sharing its pipeline.
    Returns:
        The `gr.Blocks` page; run it with `demo.launch(**launch_kwargs())` or `mount_ui`.
    """
    gr = import_gradio()
    if pipe is None:
        pipe = load_pipeline(model_path, device=device)
    model_name = _model_name(pipe, model_path)
    runner = TryOnRunner(pipe, max_steps=max_steps, lock=lock)

    tracker = gr.Progress()  # Gradio binds it to each request (it is found as the default of `progress`)

    def try_on(person, garment_front, garment_back, view, steps, seed, guidance_scale, progress=tracker):
        def follow(done: int, total: int, description: str) -> None:
            progress((done, total), desc=description, unit="steps")

        try:
            outcome = runner.run(person, garment_front, garment_back, view, steps, seed, guidance_scale, follow)
        except (MVVTONError, ValueError) as error:  # the user can fix these: show the message, no traceback
            raise gr.Error(html.escape(str(error)), title=type(error).__name__, print_exception=False) from None
        except Exception as error:
            logger.exception("try-on failed")
            raise gr.Error(
                f"The try-on failed unexpectedly ({type(error).__name__}); the server log has the details.",
                title="Internal error",
            ) from None
        return (outcome.image, outcome.summary, *outcome.panels.values())

    def photo(label: str, elem_id: str, **kwargs: Any) -> gr.Image:
        return gr.Image(label=label, elem_id=elem_id, elem_classes=["mvvton-photo"], **kwargs)

    def upload(label: str, elem_id: str) -> gr.Image:
        return photo(label, elem_id, type="filepath", sources=["upload"], height=300)

    with gr.Blocks(title="mvvton try-on", analytics_enabled=False) as demo:
        gr.Markdown(_header(pipe, model_name))
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                with gr.Row():
                    person = upload("Person", "person")
                    garment_front = upload("Garment front", "garment-front")
                    garment_back = upload("Garment back (optional)", "garment-back")
                view = gr.Radio(list(VIEW_CHOICES), value="auto", label="Person view (auto = detect from the pose)",
                                elem_id="view")  # fmt: skip
                with gr.Row():
                    steps = gr.Slider(1, max_steps, value=min(DEFAULT_STEPS, max_steps), step=1, label="Steps",
                                      elem_id="steps")  # fmt: skip
                    seed = gr.Number(value=DEFAULT_SEED, precision=0, minimum=0, label="Seed", elem_id="seed")
                    guidance_scale = gr.Slider(1.0, MAX_GUIDANCE_SCALE, value=1.0, step=0.5,
                                               label="Guidance scale (1 = off, as released)",
                                               interactive=runner.supports_guidance, elem_id="guidance")  # fmt: skip
                run = gr.Button("Try on", variant="primary", elem_id="run")
            with gr.Column(scale=2):
                result = photo("Result", "result", type="pil", format="png", interactive=False, height=420)
                summary = gr.Markdown(elem_id="routing")
        with gr.Accordion("Intermediates: pose, masks, pre-warp", open=False, elem_id="intermediates"):
            with gr.Row():
                panels = [
                    photo(label, f"panel-{name.replace('_', '-')}", interactive=False, height=240)
                    for name, label in PANEL_LABELS.items()
                ]
        inputs = [person, garment_front, garment_back, view, steps, seed, guidance_scale]
        rows = example_rows()
        if rows:
            gr.Examples(rows, inputs=inputs, label="Examples (shipped with mvvton, offline)", cache_examples=False)
        # preprocess=False: the uploads reach `runner.run` as files, so a corrupt one raises mvvton's own
        # InvalidImageError (with a readable message) instead of failing inside Gradio's image decoding.
        run.click(try_on, inputs=inputs, outputs=[result, summary, *panels], preprocess=False,
                  concurrency_limit=1, show_progress="full", api_name="try_on")  # fmt: skip
        if job_store is not None:
            _recent_jobs_panel(gr, demo, job_store)
    return demo


def _recent_jobs_panel(gr, demo: gr.Blocks, job_store: JobStoreLike) -> None:
    from mvvton.ui.jobs import JOB_COLUMNS, recent_jobs

    def refresh():
        try:
            rows, gallery = recent_jobs(job_store, limit=RECENT_JOBS)
        except MVVTONError as error:
            raise gr.Error(html.escape(str(error)), title=type(error).__name__, print_exception=False) from None
        return gallery, rows

    with gr.Accordion("Recent jobs (the service's job store)", open=True, elem_id="recent-jobs"):
        gallery = gr.Gallery(label="Results", columns=6, height=260, elem_id="jobs-gallery")
        table = gr.Dataframe(headers=list(JOB_COLUMNS), interactive=False, wrap=True, elem_id="jobs-table")
        refresh_button = gr.Button("Refresh", size="sm", elem_id="jobs-refresh")
    refresh_button.click(refresh, outputs=[gallery, table], api_name=False)
    demo.load(refresh, outputs=[gallery, table], api_name=False)


def launch_kwargs() -> dict[str, Any]:
    """Settings shared by `demo.launch` and `mount_ui`: offline (no SSR node server), examples servable, upload cap."""
    return {
        "ssr_mode": False,
        "allowed_paths": [str(EXAMPLES_DIR)],
        "max_file_size": MAX_UPLOAD_BYTES,
        "css": CSS,
    }


def mount_ui(
    app: FastAPI,
    pipe: MVVTONPipeline | None = None,
    model_path: str | os.PathLike | None = None,
    job_store: JobStoreLike | None = None,
    *,
    path: str = UI_PATH,
    lock: threading.Lock | None = None,
    **build_kwargs: Any,
) -> FastAPI:
    """Mount the page on a FastAPI app (the HTTP service) at `path`; returns the app.

    Pass the service's pipeline and lock so both share one model and never run it concurrently.
    """
    gr = import_gradio()
    demo = build_demo(pipe, model_path, job_store, lock=lock, **build_kwargs)
    return gr.mount_gradio_app(app, demo, path=path, **launch_kwargs())
