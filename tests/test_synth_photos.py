"""`aestheticnet data synth --photos DIR`: the synthetic dataset from a folder of the user's own photos."""

from __future__ import annotations

import csv
import functools
import io
import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image

from aestheticnet.cli import main
from aestheticnet.data import synthetic, user_photos
from aestheticnet.data.ava import AVA
from aestheticnet.data.options import DatasetOptions
from aestheticnet.data.synthetic import build_from_photos
from aestheticnet.data.user_photos import TooFewPhotosError

# Small crops, 2 distortion types (one colour-only) x 2 levels: 5 images per colour photo, 3 per grey one.
FAST = dict(n_crops_per_photo=1, size=(64, 48), levels=2, distortions=("blur", "saturation"))
SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins")  # the last two are grey
SIZES = ((96, 72), (64, 48), (120, 90), (80, 80), (70, 100), (150, 84))


def make_photos(folder: Path, n: int) -> list[str]:
    """``n`` distinct photos (JPEG and PNG, colour and grey, landscape and portrait) cut from skimage's images."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        src = getattr(skimage.data, SOURCES[i % len(SOURCES)])()
        w, h = SIZES[i % len(SIZES)]
        # Another window of the source for every file, so no two photos are alike.
        img = Image.fromarray(src[7 * i :, 11 * i :]).resize((w, h))
        name = f"photo{i:02d}.{'jpg' if i % 2 else 'png'}"
        img.save(folder / name, **({"quality": 90} if i % 2 else {}))
        names.append(name)
    return names


def break_two(folder: Path) -> list[str]:
    """A truncated JPEG and a text file named .jpg."""
    jpeg = io.BytesIO()
    Image.fromarray(skimage.data.coffee()[::4, ::4]).save(jpeg, format="JPEG")
    (folder / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (folder / "notes.jpg").write_text("not a photo\n")
    return ["notes.jpg", "truncated.jpg"]


def fast_cli(monkeypatch):
    """The CLI with the small build settings, so a CLI test takes seconds."""
    monkeypatch.setattr(synthetic, "build_from_photos", functools.partial(build_from_photos, **FAST))
    return CliRunner()


def groups(root: Path) -> list[dict]:
    with open(root / "groups.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_twenty_photos_two_broken_builds_from_eighteen_and_names_the_two(tmp_path, monkeypatch):
    photos = make_photos(tmp_path / "mine", 18)
    broken = break_two(tmp_path / "mine")
    out = tmp_path / "data"
    result = fast_cli(monkeypatch).invoke(
        main, ["data", "synth", str(out), "--photos", str(tmp_path / "mine"), "--quiet", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["photos"] == 18 and report["builtin_photos"] == 0 and not report["reused"]
    assert sorted(s["file"] for s in report["skipped"]) == broken
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert "truncated" in reasons["truncated.jpg"] and "not a recognised image format" in reasons["notes.jpg"]
    for name in broken:
        assert f"skipped {tmp_path / 'mine' / name}: " in result.stderr
    rows = groups(out)
    assert sorted({r["photo"] for r in rows}) == photos
    assert {line.split()[14] for line in (out / "AVA.txt").read_text().splitlines()} == {str(k) for k in range(1, 19)}
    # Split by source photo (the challenge column): both sides hold photos, none holds one photo's crops twice.
    train, val = (AVA(out, DatasetOptions(split=s, val_fraction=0.2), group_by="challenge") for s in ("train", "val"))
    assert len(train) and len(val)
    photo_of = {r["image_id"]: r["photo"] for r in rows}
    assert not {photo_of[r.id] for r in train.records} & {photo_of[r.id] for r in val.records}


@pytest.mark.parametrize("explicit_out", [True, False])
def test_one_usable_photo_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch, explicit_out):
    make_photos(tmp_path / "mine", 1)
    break_two(tmp_path / "mine")
    monkeypatch.setenv("AESTHETICNET_CACHE", str(tmp_path / "cache"))
    out = [str(tmp_path / "data")] if explicit_out else []
    result = fast_cli(monkeypatch).invoke(main, ["data", "synth", *out, "--photos", str(tmp_path / "mine"), "--quiet"])
    assert result.exit_code == 2
    message = result.stderr
    assert f"--photos {tmp_path / 'mine'}: 1 usable photo;" in message and "at least 2" in message
    assert "skipped truncated.jpg" in message and "skipped notes.jpg" in message and "Nothing was written" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_builtin_photos_join_the_users_and_zero_usable_is_refused(tmp_path):
    make_photos(tmp_path / "mine", 1)
    built = build_from_photos(
        tmp_path / "mine",
        tmp_path / "data",
        with_builtin=True,
        workers=1,
        progress=False,
        **{**FAST, "distortions": ("blur",), "levels": 1},
    )
    rows = groups(tmp_path / "data")
    assert len(built.info.config.photos) == 13 and {r["photo"] for r in rows} >= {"camera", "photo00.png"}
    readme = (tmp_path / "data" / "README.txt").read_text()
    assert "CC0" in readme and "photo00.png" in readme
    (tmp_path / "mine" / "photo00.png").write_bytes(b"")
    with pytest.raises(TooFewPhotosError, match="0 usable photos; it needs at least 1 of its own"):
        build_from_photos(tmp_path / "mine", tmp_path / "other", with_builtin=True, progress=False, **FAST)
    assert not (tmp_path / "other").exists()


def test_formats_grey_photos_and_the_readme(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    Image.fromarray(skimage.data.camera()[::4, ::4]).save(folder / "grey.png")  # mode L
    grey_rgb = np.repeat(skimage.data.coins()[::2, ::2, None], 3, axis=2)
    Image.fromarray(grey_rgb).save(folder / "grey_rgb.jpg", quality=85)  # grey pixels in a colour JPEG
    Image.fromarray(skimage.data.chelsea()[::3, ::3]).convert("RGBA").save(folder / "colour.png")
    (folder / "trip").mkdir()
    Image.fromarray(skimage.data.coffee()[::3, ::3]).save(folder / "trip" / "with, comma.bmp")  # a name for csv
    built = build_from_photos(folder, tmp_path / "data", workers=1, progress=False, **FAST)
    kinds = {p.name: p.grey for p in built.info.config.user_photos}
    assert kinds == {"colour.png": False, "grey.png": True, "grey_rgb.jpg": True, "trip/with, comma.bmp": False}
    rows = groups(tmp_path / "data")
    assert {r["photo"] for r in rows if r["distortion"] == "saturation"} == {"colour.png", "trip/with, comma.bmp"}
    readme = (tmp_path / "data" / "README.txt").read_text()
    assert "CC0" not in readme and "scikit-image wheel" not in readme
    assert "belong to the user" in readme and "grey_rgb.jpg" in readme


def test_too_small_duplicate_and_hidden_files(tmp_path):
    names = make_photos(tmp_path / "mine", 3)
    Image.new("RGB", (60, 60)).save(tmp_path / "mine" / "tiny.png")  # 60 px wide: no 64x48 crop without upsampling
    (tmp_path / "mine" / "zz_copy.png").write_bytes((tmp_path / "mine" / names[0]).read_bytes())
    (tmp_path / "mine" / ".hidden.jpg").write_text("editor junk")
    (tmp_path / "mine" / "readme.txt").write_text("not an image suffix")
    scan = user_photos.scan_photos(tmp_path / "mine", synthetic.SynthConfig(**FAST))
    assert [p.source.name for p in scan.photos] == names
    assert {s.name: s.reason for s in scan.skipped} == {
        "zz_copy.png": f"same file as {names[0]}",
        "tiny.png": "too small: 60x60; a crop needs a 64:48 area of at least 64x48 pixels",
    }


def test_cache_key_follows_the_photo_files(tmp_path, monkeypatch):
    make_photos(tmp_path / "mine", 3)
    monkeypatch.setenv("AESTHETICNET_CACHE", str(tmp_path / "cache"))
    first = build_from_photos(tmp_path / "mine", workers=1, progress=False, **FAST)
    assert first.info.path.parent.name.startswith("photos-") and first.info.path.name == "seed0"
    again = build_from_photos(tmp_path / "mine", workers=1, progress=False, **FAST)
    assert again.info.reused and again.info.digest == first.info.digest
    # Same names, another picture in one file: not served the cached dataset.
    Image.fromarray(skimage.data.coffee()[:90, :120]).save(tmp_path / "mine" / "photo00.png")
    changed = build_from_photos(tmp_path / "mine", workers=1, progress=False, **FAST)
    assert not changed.info.reused and changed.info.digest != first.info.digest
    assert changed.info.path != first.info.path and first.info.path.is_dir()  # the old build stays where it was
    # Into the same explicit folder: rebuilt as well, since the config's photo digests differ.
    fixed = build_from_photos(tmp_path / "mine", tmp_path / "fixed", workers=1, progress=False, **FAST)
    make_photos(tmp_path / "mine", 4)
    grown = build_from_photos(tmp_path / "mine", tmp_path / "fixed", workers=1, progress=False, **FAST)
    assert not grown.info.reused and len(grown.scan.photos) == 4 and grown.info.digest != fixed.info.digest
    assert synthetic.read_info(tmp_path / "fixed").config.user_photos == grown.info.config.user_photos


def test_same_photos_elsewhere_give_the_same_dataset(tmp_path):
    make_photos(tmp_path / "a", 2)
    make_photos(tmp_path / "b" / "deeper", 2)
    one = build_from_photos(tmp_path / "a", tmp_path / "one", workers=2, progress=False, **FAST)
    two = build_from_photos(tmp_path / "b" / "deeper", tmp_path / "two", workers=1, progress=False, **FAST)
    assert one.info.digest == two.info.digest and one.info.config_hash == two.info.config_hash
    # An output folder inside the photo folder is not read back as photos on the next build.
    inner = build_from_photos(tmp_path / "a", tmp_path / "a" / "synth", workers=1, progress=False, **FAST)
    forced = build_from_photos(tmp_path / "a", tmp_path / "a" / "synth", workers=1, progress=False, force=True, **FAST)
    assert len(forced.scan.photos) == 2 and not forced.scan.skipped and forced.info.digest == inner.info.digest


def test_flat_and_near_blank_photos_are_refused_by_name(tmp_path, monkeypatch):
    photos = make_photos(tmp_path / "mine", 3)
    h, w = 90, 120
    gradient = np.linspace(20, 230, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    Image.fromarray(gradient.astype(np.uint8)).save(tmp_path / "mine" / "gradient.png")
    flat = np.full((h, w, 3), (40, 90, 160), np.uint8)
    flat[40:44, 60:64] = (230, 200, 60)  # a plain colour with a speck: near-blank
    Image.fromarray(flat).save(tmp_path / "mine" / "shapes.png")
    result = fast_cli(monkeypatch).invoke(
        main, ["data", "synth", str(tmp_path / "data"), "--photos", str(tmp_path / "mine"), "--quiet", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["photos"] == len(photos)
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert sorted(reasons) == ["gradient.png", "shapes.png"]
    assert all("flat or near-blank" in r for r in reasons.values())
    assert f"skipped {tmp_path / 'mine' / 'gradient.png'}: flat or near-blank" in result.stderr
    assert sorted({r["photo"] for r in groups(tmp_path / "data")}) == photos


def test_texture_fraction_separates_a_photo_from_a_smooth_gradient():
    photo = skimage.data.astronaut()[:192, :256]
    gradient = np.repeat(np.linspace(0, 255, 256, dtype=np.float32)[None, :], 192, axis=0)
    assert user_photos.texture_fraction(photo) > 0.5
    assert user_photos.texture_fraction(gradient.astype(np.uint8)[..., None]) < user_photos.MIN_TEXTURE / 10
