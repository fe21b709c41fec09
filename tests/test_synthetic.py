"""Synthetic default dataset: determinism, monotone labels, file formats, caching, atomicity."""

from __future__ import annotations

import csv
import hashlib
import json
import socket
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aestheticnet.data import distortions, raters, synthetic, synthetic_render, synthetic_tables
from aestheticnet.data.synthetic import SynthConfig, build_synthetic

# 2 photos (one grey) x 1 crop x 3 types x 5 levels: 16 + 11 = 27 images, ~2 s.
SMALL = dict(n_crops_per_photo=1, photos=("chelsea", "camera"), distortions=("blur", "gaussian_noise", "saturation"))


def small(out, seed=0, workers=1, **kw):
    return build_synthetic(out, seed=seed, workers=workers, progress=False, **{**SMALL, **kw})


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != synthetic.MARKER
    }


def groups(root: Path) -> list[dict]:
    with open(root / "groups.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return small(tmp_path_factory.mktemp("synth") / "data")


def test_photos_ship_in_wheel_and_load_offline(monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name, (_, grey, _) in distortions.PHOTOS.items():
        img = distortions.load_photo(name)
        assert img.dtype == np.uint8 and img.shape[2] == (1 if grey else 3), name
        assert min(img.shape[:2]) >= 256, name


def test_layout_and_formats(built):
    root = built.path
    rows = groups(root)
    assert built.n_images == len(rows) == 16 + 11 and built.n_references == 2
    ava = [line.split() for line in (root / "AVA.txt").read_text().splitlines()]
    assert len(ava) == len(rows)
    for i, (cols, row) in enumerate(zip(ava, rows), 1):
        assert len(cols) == 15 and cols[0] == str(i) and cols[1] == row["image_id"]
        counts = list(map(int, cols[2:12]))
        assert 78 <= sum(counts) <= 549 and sum(counts) == int(row["n_votes"])
        assert cols[12:14] == ["0", "0"]
        # challenge column = source photo index, so group_by="challenge" splits by photo
        assert cols[14] == str(1 + list(SMALL["photos"]).index(row["photo"]))
        assert (root / "images" / f"{cols[1]}.jpg").is_file()
    mos = [line.split() for line in (root / "mos_with_names.txt").read_text().splitlines()]
    std = (root / "mos_std.txt").read_text().splitlines()
    assert len(mos) == len(std) == built.n_distorted == 25
    for value, name in mos:
        assert (root / "distorted_images" / name).is_file() and 0.0 <= float(value) <= 9.0
    assert sorted(p.name for p in (root / "reference_images").iterdir()) == ["I01.png", "I02.png"]
    assert "SYNTHETIC" in (root / "README.txt").read_text()
    assert json.loads((root / "synth_config.json").read_text())["seed"] == 0
    assert 1.0 <= built.mean_vote_std <= 1.8


def test_ava_jpeg_and_tid_png_hold_the_labelled_pixels(built):
    for row in groups(built.path):
        if row["distortion"] == "reference":
            continue
        jpg = np.asarray(Image.open(built.path / row["ava_file"]).convert("RGB"))
        png = Image.open(built.path / row["tid_file"])
        assert png.mode == "RGB" and np.array_equal(jpg, np.asarray(png))


def test_grey_reference_skips_saturation_and_stays_grey(built):
    rows = groups(built.path)
    grey = [r for r in rows if r["photo"] == "camera"]
    assert {r["distortion"] for r in grey} == {"reference", "blur", "gaussian_noise"}
    assert any(r["distortion"] == "saturation" for r in rows if r["photo"] == "chelsea")
    code = distortions.DISTORTIONS["saturation"].code
    assert not list((built.path / "distorted_images").glob(f"i02_{code:02d}_*"))
    px = np.asarray(Image.open(built.path / grey[3]["tid_file"]))
    assert px.shape[2] == 3 and np.array_equal(px[..., 0], px[..., 1]) and np.array_equal(px[..., 0], px[..., 2])


def test_scores_monotone_in_level(built):
    rows = [r for r in groups(built.path) if r["distortion"] != "reference"]
    by_ref, by_type = defaultdict(dict), defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_ref[(r["ref_id"], r["distortion"])][int(r["level"])] = float(r["fr_quality"])
        by_type[r["distortion"]][int(r["level"])].append(float(r["mean"]))
    for key, q in by_ref.items():
        assert np.all(np.diff([q[lv] for lv in sorted(q)]) < 0), key
    for name, levels in by_type.items():
        means = [np.mean(levels[lv]) for lv in sorted(levels)]
        assert np.all(np.diff(means) < 0), (name, means)
    ref_means = [float(r["mean"]) for r in groups(built.path) if r["distortion"] == "reference"]
    assert min(ref_means) > max(float(r["mean"]) for r in rows if r["level"] == "5")


def test_every_distortion_monotone_per_reference():
    cfg = SynthConfig(seed=3)
    for photo in ("astronaut", "gravel"):
        ref = synthetic_render.crop_of(cfg, photo, 0)
        ctx = distortions.NoiseContext.draw(ref.shape, np.random.default_rng(1))
        for name, d in distortions.DISTORTIONS.items():
            if d.colour_only and ref.shape[2] == 1:
                continue
            q = [raters.fr_quality(ref, distortions.apply(name, ref, lv, 5, ctx))[0] for lv in range(1, 6)]
            assert np.all(np.diff(q) < 0) and q[0] < 1.0, (photo, name, np.round(q, 4))


def test_deterministic_from_seed(built, tmp_path):
    again = small(tmp_path / "again", workers=2)  # exercises the process pool too
    assert again.digest == built.digest
    assert file_hashes(again.path) == file_hashes(built.path)
    other = small(tmp_path / "other", seed=1)
    assert other.digest != built.digest
    assert (other.path / "AVA.txt").read_bytes() != (built.path / "AVA.txt").read_bytes()
    assert (other.path / "reference_images/I01.png").read_bytes() != (
        built.path / "reference_images/I01.png"
    ).read_bytes()


def test_cache_reused_without_rebuilding(tmp_path, monkeypatch):
    first = small(tmp_path / "d")
    marker = tmp_path / "d" / synthetic.MARKER
    stamp = marker.stat().st_mtime_ns

    def boom(job):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(synthetic_render, "render_reference", boom)
    second = small(tmp_path / "d")
    assert second.reused and not first.reused and second.digest == first.digest
    assert marker.stat().st_mtime_ns == stamp
    monkeypatch.undo()
    forced = small(tmp_path / "d", force=True)
    assert not forced.reused and forced.digest == first.digest


def test_interrupted_build_leaves_no_complete_dataset(tmp_path, monkeypatch):
    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic_tables, "write_tables", crash)
    with pytest.raises(KeyboardInterrupt):
        small(tmp_path / "d")
    assert not (tmp_path / "d").exists() and list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    done = small(tmp_path / "d")  # a rebuild with another config that crashes keeps the old one
    monkeypatch.setattr(synthetic_tables, "write_tables", crash)
    with pytest.raises(KeyboardInterrupt):
        small(tmp_path / "d", seed=5)
    assert synthetic.read_info(tmp_path / "d").digest == done.digest
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_refuses_foreign_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not a synthetic dataset"):
        small(tmp_path / "d", force=True)
    assert (tmp_path / "d" / "thesis.tex").read_text() == "precious"


def test_vote_sampling_matches_ava_statistics():
    rng = np.random.default_rng(0)
    pool = raters.RaterPool.draw(1000, 0.7, 1.1, rng)
    stds, counts = [], []
    for latent in rng.uniform(2.0, 8.0, 1500):
        n = raters.draw_vote_count(rng)
        hist = raters.sample_votes(latent, pool, rng, n)
        assert hist.shape == (10,) and hist.sum() == n and 78 <= n <= 549
        mean, std = raters.hist_mean_std(hist)
        assert abs(mean - latent) < 0.6
        stds.append(std)
        counts.append(n)
    assert 1.0 <= np.mean(stds) <= 1.8 and 1.1 <= np.median(stds) <= 1.6
    assert min(counts) == 78 or np.percentile(counts, 1) < 110  # spans AVA's range
    assert 150 <= np.median(counts) <= 300


def test_latent_quality_mapping():
    assert raters.latent_quality(1.0, 8.0) == pytest.approx(8.0)
    assert raters.latent_quality(0.1, 8.0) == 1.0
    qs = np.linspace(0.2, 1.0, 20)
    assert np.all(np.diff([raters.latent_quality(q, 8.0) for q in qs]) > 0)


def test_config_validation_and_paths(tmp_path, monkeypatch):
    with pytest.raises(ValueError):
        SynthConfig(photos=("lena",)).validate()
    with pytest.raises(ValueError):
        SynthConfig(n_raters=100).validate()
    assert SynthConfig().digest() != SynthConfig(seed=1).digest()
    monkeypatch.setenv("AESTHETICNET_CACHE", str(tmp_path))
    assert synthetic.default_synthetic_dir(3) == tmp_path / f"synthetic-v{synthetic.GENERATOR_VERSION}" / "seed3"
    seen = {}

    def fake_build(path, seed, **kw):
        seen["path"], seen["seed"] = path, seed
        return synthetic.SynthInfo(Path(path), SynthConfig(seed=seed), "", 0, 0, 0, 0.0, 0.0, "", True)

    monkeypatch.setattr(synthetic, "build_synthetic", fake_build)
    assert synthetic.ensure_synthetic(seed=3) == tmp_path / f"synthetic-v{synthetic.GENERATOR_VERSION}" / "seed3"
    assert seen == {"path": tmp_path / f"synthetic-v{synthetic.GENERATOR_VERSION}" / "seed3", "seed": 3}
