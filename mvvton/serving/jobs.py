"""What one try-on job is and how a worker runs it: parameters, the runner around a pipeline, its outputs.

The same `TryOnRunner` serves the embedded worker threads and the Redis worker processes. It reports each sampler
step and checks a cancel flag between steps through the pipeline's `callback_on_step_end`; a cancelled job raises
`JobCancelledError` from the callback, which stops the loop before the next step (and skips the VAE decode).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mvvton.errors import InvalidArgumentError, MVVTONError

VIEWS = ("auto", "front", "side", "back")
INPUT_NAMES = ("person", "garment_front", "garment_back")
MAX_STEPS = 200
MAX_IMAGE_PIXELS = 16_000_000  # per photo; the library's own limit (MAX_INPUT_PIXELS) is 40 M
MAX_GUIDANCE_SCALE = 50.0
DEFAULT_QUEUE_NAME = "mvvton"  # the RQ queue of `mvvton serve --queue` and `mvvton worker`
HEARTBEAT_SECONDS = 10.0  # a Redis worker's heartbeat key expires this long after its last refresh
DEAD_WORKER_GRACE_SECONDS = 15.0  # a started job without a heartbeat for this long is run again


class JobCancelledError(MVVTONError):
    """Raised between sampler steps when the job's cancel flag is set (or its worker is shutting down)."""


@dataclass(frozen=True)
class JobParameters:
    """Sampling parameters of a job (validated by `check`)."""

    view: str = "auto"
    steps: int = 50
    seed: int = 23
    guidance_scale: float = 1.0

    def check(self, max_steps: int = MAX_STEPS) -> JobParameters:
        """Raise `InvalidArgumentError` naming the bad field; returns self."""
        if self.view not in VIEWS:
            raise InvalidArgumentError(f"view must be one of {', '.join(VIEWS)}, got {self.view!r}")
        if not 1 <= self.steps <= max_steps:
            raise InvalidArgumentError(f"steps must be in 1..{max_steps}, got {self.steps}")
        if not 0 <= self.seed < 2**63:
            raise InvalidArgumentError(f"seed must be in 0..2**63-1, got {self.seed}")
        if not math.isfinite(self.guidance_scale) or not 0.0 <= self.guidance_scale <= MAX_GUIDANCE_SCALE:
            raise InvalidArgumentError(
                f"guidance_scale must be a finite number in 0..{MAX_GUIDANCE_SCALE:g}, got {self.guidance_scale}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> JobParameters:
        return cls(**{name: values[name] for name in ("view", "steps", "seed", "guidance_scale") if name in values})


@dataclass
class JobOutput:
    """What a finished job produced: the result PNG, the debug images (PNG bytes by name) and the routing."""

    result_png: bytes
    debug_pngs: dict[str, bytes]
    person_view: str | None
    routed_garment: str | None
    warnings: list[str] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)


def encode_png(image) -> bytes:
    """PIL image or array (`(H, W)` / `(H, W, C)`, uint8 or float in [0, 1]) -> PNG bytes."""
    import PIL.Image

    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            array = (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[..., 0]
        image = PIL.Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def check_photo(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Reject an upload that is not a readable image or has more than `max_pixels` pixels, from its header
    alone (nothing is decoded); raises `InvalidImageError`."""
    import PIL.Image

    from mvvton.errors import InvalidImageError

    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError) as error:
        reason = "unknown format" if isinstance(error, PIL.UnidentifiedImageError) else type(error).__name__
        raise InvalidImageError(
            f"{name} is not a readable image ({reason}); send a JPEG, PNG or WebP photo"
        ) from error
    if width * height > max_pixels:
        raise InvalidImageError(
            f"{name} is {width}x{height} = {width * height:,} pixels, above the service's limit of {max_pixels:,}; "
            "downscale the photo"
        )


class TryOnRunner:
    """Runs jobs on one pipeline (one runner per worker thread: a diffusion pipeline is not re-entrant).

    Args:
        pipe: an `MVVTONPipeline`.
        max_image_pixels: per-photo pixel limit, checked from the image header before decoding.
    """

    def __init__(self, pipe, *, max_image_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.pipe = pipe
        self.max_image_pixels = max_image_pixels
        pipe.set_progress_bar_config(disable=True)

    @classmethod
    def from_pretrained(
        cls, model_dir: str | Path | None = None, *, device: str = "cpu", max_image_pixels: int = MAX_IMAGE_PIXELS
    ) -> TryOnRunner:
        """Load a local pipeline folder (default: the embedded default model)."""
        from mvvton.cli.demo import DEFAULT_MODEL_DIR
        from mvvton.errors import ModelLoadError
        from mvvton.pipelines import MVVTONPipeline

        model_dir = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
        if not (model_dir / "model_index.json").is_file():
            raise ModelLoadError(f"no mvvton pipeline at {model_dir} (no model_index.json); pass --model DIR")
        return cls(MVVTONPipeline.from_pretrained(str(model_dir)).to(device), max_image_pixels=max_image_pixels)

    def decode_inputs(self, inputs: dict[str, bytes]) -> dict:
        """Uploaded bytes -> RGB PIL images; raises `InvalidImageError` (corrupt, too many pixels, too small)."""
        from mvvton.preprocessing.io import load_image

        missing = [name for name in INPUT_NAMES[:2] if not inputs.get(name)]
        if missing:
            raise InvalidArgumentError(f"missing photo(s): {', '.join(missing)}; send them as multipart files")
        return {name: load_image(data, name=name.replace("_", " "), max_pixels=self.max_image_pixels)
                for name, data in inputs.items() if data}  # fmt: skip

    def run(
        self,
        inputs: dict[str, bytes],
        params: JobParameters,
        *,
        on_step: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> JobOutput:
        """Run one try-on.

        Args:
            inputs: `{"person": bytes, "garment_front": bytes, "garment_back": bytes (optional)}`, encoded photos.
            params: sampling parameters.
            on_step: called after each sampler step with `(step, total)` (1-based step).
            should_cancel: polled after each step; True stops the job with `JobCancelledError`.
        """
        import torch

        images = self.decode_inputs(inputs)
        step_seconds: list[float] = []  # between consecutive step ends (the first step also holds preprocessing)
        last: float | None = None

        def step_end(pipe, index: int, timestep, callback_kwargs: dict) -> dict:
            nonlocal last
            now = time.perf_counter()
            if last is not None:
                step_seconds.append(now - last)
            last = now
            if on_step is not None:
                on_step(index + 1, pipe.num_timesteps)
            if should_cancel is not None and should_cancel():
                pipe._interrupt = True
                raise JobCancelledError("the job was cancelled")
            return {}

        result = self.pipe(
            images["person"],
            images["garment_front"],
            images.get("garment_back"),
            view=params.view,
            num_inference_steps=params.steps,
            guidance_scale=params.guidance_scale,
            generator=torch.Generator().manual_seed(params.seed),
            return_intermediates=True,
            callback_on_step_end=step_end,
        )
        info = result.intermediates[0]
        debug = {name: encode_png(value) for name, value in info.items() if _is_image(value)}
        return JobOutput(
            result_png=encode_png(result.images[0]),
            debug_pngs=debug,
            person_view=info.get("person_view"),
            routed_garment=info.get("routed_garment"),
            warnings=[str(note) for note in info.get("warnings", [])],
            step_seconds=step_seconds,
        )


def _is_image(value) -> bool:
    import PIL.Image

    return isinstance(value, PIL.Image.Image) or (isinstance(value, np.ndarray) and value.ndim in (2, 3))
