import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mvvton.errors import ImageNotFoundError, InvalidImageError
from mvvton.preprocessing.io import load_image, load_image_and_alpha, save_image_atomic


def _gradient(h=64, w=48):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 5 % 256, y * 4 % 256, (x + y) % 256], axis=-1).astype(np.uint8)


def _png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims `width x height` but carries no pixel data (nothing big is allocated)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_roundtrip_path_bytes_pil_array(tmp_path):
    array = _gradient()
    path = tmp_path / "g.png"
    Image.fromarray(array).save(path)
    for src in (path, str(path), path.read_bytes(), Image.fromarray(array), array):
        image = load_image(src)
        assert image.mode == "RGB" and image.size == (48, 64)
        np.testing.assert_array_equal(np.asarray(image), array)


def test_corrupt_bytes_names_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(InvalidImageError, match="broken.jpg"):
        load_image(path)
    with pytest.raises(InvalidImageError, match="not a readable image"):
        load_image(b"\x00\x01garbage" * 20)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty.png.*0 bytes"):
        load_image(path)
    with pytest.raises(InvalidImageError, match="0 bytes"):
        load_image(b"")


def test_truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(_gradient(256, 256)).save(buffer, format="JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InvalidImageError, match="cut.jpg.*(corrupt|truncated)"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")
    assert issubclass(ImageNotFoundError, FileNotFoundError)


def test_absurd_header_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_with_header(100_000, 100_000))
    assert path.stat().st_size < 100
    with pytest.raises(InvalidImageError, match="bomb.png"):
        load_image(path)
    # Above our limit (40 MP) but below PIL's own bomb threshold: still refused from the header.
    with pytest.raises(InvalidImageError, match="8000x6000"):
        load_image(_png_with_header(8000, 6000))
    with pytest.raises(InvalidImageError, match="limit"):
        load_image(_png_with_header(8000, 6000), max_pixels=1000)


def test_tiny_image_refused():
    with pytest.raises(InvalidImageError, match="smaller than 32"):
        load_image(np.zeros((16, 64, 3), np.uint8))


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([0, 257, 32896, 65535], dtype=np.uint16)
    array = np.tile(np.repeat(values, 12), (40, 1))  # 40 x 48, four vertical bands
    path = tmp_path / "deep.png"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(load_image(path))
    assert out.shape == (40, 48, 3)
    np.testing.assert_array_equal(out[0, ::12, 0], [0, 1, 128, 255])
    assert (out[..., 0] == out[..., 2]).all()


def test_rgba_composited_on_white_and_alpha_kept(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :20, 3] = 255
    rgba[:, 20:, 3] = 0
    path = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    image, alpha = load_image_and_alpha(path)
    out = np.asarray(image)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[0, 30], [255, 255, 255])
    assert alpha is not None and alpha[0, 0] == 255 and alpha[0, 30] == 0
    half = rgba.copy()
    half[..., 3] = 128
    np.testing.assert_allclose(np.asarray(load_image(half))[0, 0], [255, 127, 127], atol=1)


def test_greyscale_palette_cmyk_float(tmp_path):
    gray = (np.arange(40 * 40).reshape(40, 40) % 256).astype(np.uint8)
    out = np.asarray(load_image(Image.fromarray(gray, mode="L")))
    assert out.shape == (40, 40, 3) and (out[..., 0] == gray).all() and (out[..., 1] == gray).all()
    palette = Image.fromarray(_gradient(40, 40)).convert("P")
    path = tmp_path / "p.png"
    palette.save(path, transparency=0)
    assert load_image(path).mode == "RGB"
    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # pure red in CMYK
    np.testing.assert_allclose(np.asarray(load_image(cmyk))[0, 0], [255, 0, 0], atol=2)
    unit = np.full((40, 40, 3), 0.5, np.float32)
    assert np.asarray(load_image(unit))[0, 0, 0] == 128
    assert np.asarray(load_image(Image.fromarray(np.full((40, 40), 0.25, np.float32), mode="F")))[0, 0, 0] == 64


def test_exif_rotation_applied(tmp_path):
    array = np.zeros((40, 80, 3), np.uint8)  # wide image, red block on the left
    array[:, :20] = (255, 0, 0)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.jpg"
    image.save(path, exif=exif, quality=95)
    out = np.asarray(load_image(path))
    assert out.shape == (80, 40, 3)  # displayed upright: tall
    assert out[5, 20, 0] > 200 and out[5, 20, 1] < 60  # the left block ends up on top
    assert out[75, 20, 0] < 60


def test_save_image_atomic(tmp_path):
    array = _gradient()
    target = tmp_path / "sub" / "out.png"
    assert save_image_atomic(array, target) == target
    np.testing.assert_array_equal(np.asarray(Image.open(target)), array)
    assert target.stat().st_mode & 0o044  # readable by others like a plainly created file (mkstemp would give 0600)
    save_image_atomic(Image.fromarray(array[::-1]), target)  # overwrite in place
    np.testing.assert_array_equal(np.asarray(Image.open(target)), array[::-1])
    save_image_atomic(Image.fromarray(array).convert("RGBA"), tmp_path / "out.jpg", quality=90)
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"
    with pytest.raises(ValueError, match="extension"):
        save_image_atomic(array, tmp_path / "out.unknown")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out.jpg", "out.png", "sub"]
