"""The try-on page in a real browser: headless Chromium (the OS package) driven by Playwright's Python API.

`mvvton ui --model <tiny model>` runs in a subprocess on a free port. The browser uploads three photos, clicks
"Try on", waits for the result, downloads it and decodes it; then a corrupt upload must show mvvton's message, and
the first shipped example must fill the form.
Every request the page makes must stay on the local server (the page has to work offline).

To check another model and keep a screenshot of the finished page (docs/images/ui_screenshot.png is made so):
    MVVTON_UI_MODEL=mvvton/assets/default_model MVVTON_UI_SCREENSHOT=docs/images/ui_screenshot.png \
        .venv/bin/python -m pytest -q tests/ui/test_browser.py --runslow
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
SERVER_START_TIMEOUT = 600  # importing gradio + torch on a loaded 2-core machine can take minutes
RESULT_TIMEOUT = 600


def _chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"`mvvton ui` exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"`mvvton ui` did not serve {url} within {SERVER_START_TIMEOUT} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def page_server(tmp_path_factory, tiny_model_dir):
    """`mvvton ui` in a subprocess (the real command line), offline; yields `(url, model_dir)`."""
    model_dir = Path(os.environ.get("MVVTON_UI_MODEL", tiny_model_dir))
    port = _free_port()
    log = tmp_path_factory.mktemp("ui_server") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "NO_PROXY": "127.0.0.1,localhost"}
    command = [sys.executable, "-c", "import sys; from mvvton.cli import main; sys.exit(main())", "ui",
               "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with open(log, "wb") as log_file:
        server = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url, server, log)
        yield url, model_dir
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser_page():
    """A headless Chromium page and the list of every request it sends anywhere but 127.0.0.1."""
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium executable (install the OS package: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        external_requests: list[str] = []

        def record(request) -> None:
            if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
                external_requests.append(request.url)

        page.on("request", record)
        try:
            yield page, external_requests
        finally:
            browser.close()


def _working_size(model_dir: Path) -> tuple[int, int]:
    config = json.loads((model_dir / "model_index.json").read_text())
    return config["default_width"], config["default_height"]


@pytest.mark.slow
def test_try_on_in_the_browser(page_server, browser_page, example_photos, corrupt_photo):
    pytest.importorskip("mediapipe")
    url, model_dir = page_server
    page, external_requests = browser_page
    page.goto(url)
    page.wait_for_selector("#run", timeout=120_000)
    page.locator("#person input[type=file]").set_input_files(str(example_photos["person"]))
    page.locator("#garment-front input[type=file]").set_input_files(str(example_photos["garment_front"]))
    page.locator("#garment-back input[type=file]").set_input_files(str(example_photos["garment_back"]))
    for box in ("#person", "#garment-front", "#garment-back"):  # uploaded and previewed
        page.wait_for_selector(f"{box} img", timeout=60_000)
    page.click("#run")
    result = page.wait_for_selector("#result img", timeout=RESULT_TIMEOUT * 1000)

    # the result is a real image at the model's working size, served by the page
    response = page.request.get(result.get_attribute("src"))
    assert response.ok
    image = PIL.Image.open(io.BytesIO(response.body()))
    assert image.format == "PNG" and image.size == _working_size(model_dir)
    assert np.asarray(image.convert("RGB")).std() > 1.0  # not a blank canvas
    routing = page.locator("#routing").inner_text()
    assert "Person view: front (detected from the pose)" in routing and "Routed garment" in routing

    page.click("#intermediates >> text=Intermediates")
    for name in ("pose-overlay", "inpaint-mask", "garment-masks", "prewarp"):
        page.wait_for_selector(f"#panel-{name} img", timeout=60_000)
    screenshot = os.environ.get("MVVTON_UI_SCREENSHOT")
    if screenshot:
        page.wait_for_timeout(1000)  # let the accordion finish opening
        box = page.locator("#intermediates").bounding_box()  # the page down to the intermediates panel
        page.screenshot(path=screenshot, full_page=True, clip={"x": 0, "y": 0, "width": 1400,
                                                               "height": box["y"] + box["height"] + 16})  # fmt: skip

    # a corrupt upload: mvvton's own message in the page, no traceback, no result
    page.goto(url)
    page.wait_for_selector("#run", timeout=120_000)
    page.locator("#person input[type=file]").set_input_files(str(corrupt_photo))
    page.locator("#garment-front input[type=file]").set_input_files(str(example_photos["garment_front"]))
    page.wait_for_selector("#garment-front img", timeout=60_000)
    page.click("#run")
    toast = page.wait_for_selector(".toast-body", timeout=RESULT_TIMEOUT * 1000)
    message = toast.inner_text()
    assert "the person photo: not a readable image" in message and "check that it is not corrupt" in message
    assert "Traceback" not in page.locator("body").inner_text()
    assert page.locator("#result img").count() == 0

    # the shipped examples fill the form: their photos are served from the package folder and decode
    page.goto(url)
    page.wait_for_selector("#run", timeout=120_000)
    page.locator("tr.tr-body").first.click()
    for box in ("#person", "#garment-front", "#garment-back"):
        page.wait_for_function(
            f"() => {{ const img = document.querySelector('{box} img'); return img && img.complete && img.naturalWidth > 0; }}",
            timeout=60_000,
        )

    assert external_requests == [], f"the page reached outside the local server: {external_requests}"
