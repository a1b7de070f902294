"""The HTTP service on a tiny random pipeline: real photos in, PNG out; bad input -> typed JSON errors."""

from __future__ import annotations

import io

import PIL.Image
import pytest

from mvvton.pipelines import MVVTONPipeline
from tests.testing_utils import get_dummy_components

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from mvvton.serving.app import create_app

    folder = tmp_path_factory.mktemp("model")
    MVVTONPipeline(**{**get_dummy_components(), "default_height": 128, "default_width": 128}).save_pretrained(folder)
    return TestClient(create_app(folder, max_upload_bytes=2 * 1024 * 1024, max_steps=10))


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_try_on_with_real_photos(client, shared_dir):
    pytest.importorskip("mediapipe")
    samples = shared_dir / "samples"
    files = {
        "person": (samples / "person" / "pcdms_img6_back.jpg").read_bytes(),
        "garment_front": (samples / "garment" / "spree_jersey_front.jpg").read_bytes(),
        "garment_back": (samples / "garment" / "spree_jersey_back.jpg").read_bytes(),
    }
    response = client.post("/v1/try-on", files=files, data={"steps": "2", "seed": "1"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert PIL.Image.open(io.BytesIO(response.content)).size == (128, 128)
    assert response.headers["X-MVVTON-Person-View"] == "back"
    assert response.headers["X-MVVTON-Routed-Garment"] == "back"


def test_bad_inputs_are_typed_json_errors(client):
    corrupt = {"person": b"\xff\xd8\xff not an image", "garment_front": b"also not an image"}
    response = client.post("/v1/try-on", files=corrupt, data={"steps": "2"})
    assert response.status_code == 422 and response.json()["error"] == "InvalidImageError"
    assert "person" in response.json()["message"]
    assert client.post("/v1/try-on", files=corrupt, data={"steps": "999"}).json()["error"] == "InvalidParameter"
    huge = {"person": b"0" * (2 * 1024 * 1024 + 10), "garment_front": b"x"}
    assert client.post("/v1/try-on", files=huge, data={"steps": "2"}).status_code == 413
