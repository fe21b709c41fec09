"""Decoder acceptance tests: every fixture is generated in tmp_path, nothing binary is committed."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from aestheticnet.data.images import (
    DecompressionBombError,
    ImageDecodeError,
    PathOutsideRootError,
    image_size,
    load_image,
    to_rgb,
)
from aestheticnet.data.preprocess import Preprocess


def _noise_jpeg(path, size=(96, 64), quality=95):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=quality)
    return path


def test_plain_rgb_jpeg(tmp_path):
    img = load_image(_noise_jpeg(tmp_path / "a.jpg"))
    assert img.mode == "RGB" and img.size == (96, 64)


@pytest.mark.parametrize(
    "payload, expected",
    [(b"", "empty file"), (b"this is not an image, just text\n" * 20, "not a recognised image format")],
    ids=["zero-byte", "text-as-jpg"],
)
def test_unreadable_files_raise_one_error_naming_the_file(tmp_path, payload, expected):
    path = tmp_path / "bad.jpg"
    path.write_bytes(payload)
    with pytest.raises(ImageDecodeError, match=expected) as info:
        load_image(path)
    assert "bad.jpg" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_truncated_jpeg(tmp_path):
    path = _noise_jpeg(tmp_path / "cut.jpg", size=(256, 256))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="cut.jpg"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(path, quality=100)  # pure red in CMYK
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (16, 8)
    r, g, b = img.getpixel((8, 4))
    assert r > 240 and g < 15 and b < 15


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)  # 257 * k -> k
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")
    out = np.asarray(load_image(path))
    assert out.shape == (1, 4, 3)
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])  # grey stays grey


def test_mode_I_from_16bit_values():
    img = Image.fromarray(np.array([[0, 65535, 4369]], dtype=np.int32), mode="I")
    np.testing.assert_array_equal(np.asarray(to_rgb(img))[0, :, 1], [0, 255, 17])


def test_palette_png_with_transparency_composites_on_white(tmp_path):
    img = Image.new("P", (4, 2), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 0 black (transparent), index 1 red
    img.putpixel((3, 1), 1)
    path = tmp_path / "pal.png"
    img.save(path, transparency=0)
    out = load_image(path)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((3, 1)) == (255, 0, 0)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_composites_on_white(tmp_path, mode):
    img = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    img.putpixel((1, 0), (0, 0, 0, 255))
    img = img.convert(mode)
    path = tmp_path / f"alpha_{mode}.png"
    img.save(path)
    out = load_image(path)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((1, 0)) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["L", "1", "P"])
def test_other_modes(tmp_path, mode):
    path = tmp_path / f"m_{mode}.png"
    Image.new("RGB", (5, 3), (255, 255, 255)).convert(mode).save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (5, 3) and out.getpixel((0, 0)) == (255, 255, 255)


def _rotated_jpeg(path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(path, exif=exif, quality=100)
    return path


def test_exif_orientation_applied(tmp_path):
    path = _rotated_jpeg(tmp_path / "rot.jpg")
    img = load_image(path)
    assert img.size == (20, 40)
    assert image_size(path) == (20, 40)  # header-only size agrees with the decoded one
    top, bottom = img.getpixel((10, 5)), img.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the left (red) half ends up on top after a clockwise turn
    assert bottom[2] > 200 and bottom[0] < 60


def test_one_pixel_image(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path)
    img = load_image(path)
    assert img.size == (1, 1) and img.getpixel((0, 0)) == (10, 20, 30)
    for policy in ("fixed", "aspect"):
        x = Preprocess(policy=policy).apply(img)
        assert x.shape == (3, 224, 224) and np.isfinite(x.numpy()).all()


def test_panorama(tmp_path):
    path = _noise_jpeg(tmp_path / "pano.jpg", size=(4000, 40), quality=80)
    img = load_image(path)
    assert img.size == (4000, 40)
    pre = Preprocess(policy="aspect")
    w, h = pre.output_size(*img.size)
    assert w % 32 == 0 and h % 32 == 0 and 32 <= h <= w <= pre.max_side
    assert pre.apply(img).shape == (3, h, w)


def test_draft_decodes_smaller_but_never_below_min_size(tmp_path):
    path = _noise_jpeg(tmp_path / "big.jpg", size=(1600, 1200))
    img = load_image(path, min_size=(300, 224))
    assert img.size[0] >= 300 and img.size[1] >= 224
    assert img.size[0] < 1600  # reduced-scale decode actually happened
    # EXIF-rotated: the requested size is in displayed orientation
    rot = _rotated_jpeg(tmp_path / "rot.jpg")
    assert load_image(rot, min_size=(20, 40)).size == (20, 40)


def test_decompression_bomb_limit_is_our_error_without_warnings(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (64, 64)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DecompressionBombError, match="wide.png.*exceeds the limit of 1000"):
            load_image(path, max_pixels=1000)
        with pytest.raises(ImageDecodeError):
            image_size(path, max_pixels=1000)
    assert load_image(path, max_pixels=64 * 64).size == (64, 64)


def test_symlink_escaping_root_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    secret = _noise_jpeg(outside / "secret.jpg")
    link = root / "link.jpg"
    try:
        os.symlink(secret, link)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")
    with pytest.raises(PathOutsideRootError, match="outside the dataset root") as info:
        load_image("link.jpg", root=root)
    assert "link.jpg" in str(info.value) and str(root.resolve()) in str(info.value)
    with pytest.raises(PathOutsideRootError):
        load_image("../outside/secret.jpg", root=root)
    with pytest.raises(PathOutsideRootError):
        load_image(secret, root=root)  # absolute path outside
    inside = _noise_jpeg(root / "ok.jpg")
    assert load_image("ok.jpg", root=root).size == (96, 64)
    assert load_image(inside, root=root).size == (96, 64)


def test_rgb_png_with_colour_key_transparency(tmp_path):
    img = Image.new("RGB", (2, 1), (0, 0, 0))
    img.putpixel((1, 0), (10, 200, 30))
    path = tmp_path / "key.png"
    img.save(path, transparency=(0, 0, 0))
    out = load_image(path)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((1, 0)) == (10, 200, 30)
