"""HTTP try-on service (FastAPI): `POST /v1/try-on` with the person and garment photos, get a PNG back.

    mvvton serve --model converted/mvg --port 8000
    curl -F person=@person.jpg -F garment_front=@front.jpg -F garment_back=@back.jpg \
        -F steps=50 -F seed=23 http://127.0.0.1:8000/v1/try-on -o tryon.png

One pipeline per process, calls serialised by a lock (a diffusion pipeline is not re-entrant). Bad input returns a
JSON error `{"error": <type>, "message": <what to do>}` with status 422 (413 for oversized uploads), never a
traceback. The routing decision and the person view come back in the `X-MVVTON-*` response headers.
"""

# No `from __future__ import annotations`: FastAPI must see the real `UploadFile` types of the endpoint below.
import io
import threading
import time
from pathlib import Path
from typing import Annotated

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_STEPS = 200


def create_app(
    model_dir: str | Path,
    *,
    device: str = "cpu",
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_steps: int = MAX_STEPS,
):
    """Build the FastAPI app around a local mvvton pipeline folder (loaded once, at creation)."""
    try:
        from fastapi import FastAPI, File, Form, UploadFile
        from fastapi.responses import JSONResponse, Response
    except ImportError as error:
        from mvvton.errors import MissingDependencyError

        raise MissingDependencyError("the service needs FastAPI: pip install 'mvvton[serve]'") from error
    import torch

    import mvvton
    from mvvton.errors import MVVTONError
    from mvvton.pipelines import MVVTONPipeline
    from mvvton.preprocessing.io import load_image

    model_dir = Path(model_dir)
    pipe = MVVTONPipeline.from_pretrained(str(model_dir)).to(device)
    pipe.set_progress_bar_config(disable=True)
    lock = threading.Lock()
    app = FastAPI(title="mvvton", version=mvvton.__version__)

    def error(status: int, kind: str, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": kind, "message": message})

    async def read_upload(upload: UploadFile | None, name: str) -> bytes | None:
        if upload is None:
            return None
        data = await upload.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise _TooLarge(f"{name} is larger than {max_upload_bytes // (1024 * 1024)} MiB; send a smaller photo")
        return data

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": model_dir.name, "version": mvvton.__version__, "device": device}

    @app.post("/v1/try-on")
    async def try_on(
        person: Annotated[UploadFile, File(description="person photo (front, side or back view)")],
        garment_front: Annotated[UploadFile, File(description="garment front product photo")],
        garment_back: Annotated[UploadFile | None, File(description="garment back product photo (optional)")] = None,
        view: Annotated[str, Form()] = "auto",
        steps: Annotated[int, Form()] = 50,
        seed: Annotated[int, Form()] = 23,
        guidance_scale: Annotated[float, Form()] = 1.0,
    ):
        if not 1 <= steps <= max_steps:
            return error(422, "InvalidParameter", f"steps must be in 1..{max_steps}, got {steps}")
        if view not in ("auto", "front", "side", "back"):
            return error(422, "InvalidParameter", f"view must be auto, front, side or back, got {view!r}")
        try:
            photos = [await read_upload(f, n) for f, n in ((person, "person"), (garment_front, "garment_front"),
                                                           (garment_back, "garment_back"))]  # fmt: skip
            images = [None if data is None else load_image(data, name=name) for data, name in
                      zip(photos, ("person", "garment front", "garment back"))]  # fmt: skip
            start = time.perf_counter()
            with lock:
                result = pipe(
                    images[0], images[1], images[2], view=view, num_inference_steps=steps,
                    guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(seed),
                    return_intermediates=True,
                )  # fmt: skip
        except _TooLarge as too_large:
            return error(413, "UploadTooLarge", str(too_large))
        except (MVVTONError, ValueError) as failure:
            return error(422, type(failure).__name__, str(failure))
        buffer = io.BytesIO()
        result.images[0].save(buffer, format="PNG")
        info = result.intermediates[0]
        headers = {
            "X-MVVTON-Person-View": info["person_view"],
            "X-MVVTON-Routed-Garment": info["routed_garment"],
            "X-MVVTON-Seconds": f"{time.perf_counter() - start:.2f}",
        }
        return Response(content=buffer.getvalue(), media_type="image/png", headers=headers)

    return app


class _TooLarge(Exception):
    pass
