"""Loader acceptance tests for AVA, TID2013, CSV / KonIQ-10k and format detection (fixtures built in tmp_path)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from aestheticnet.data.ava import AVA
from aestheticnet.data.csv_dataset import CSVDataset, CSVLabels, CSVLayout, koniq_csv
from aestheticnet.data.detect import open_dataset
from aestheticnet.data.images import PathOutsideRootError
from aestheticnet.data.labels import discretised_gaussian
from aestheticnet.data.options import DatasetOptions
from aestheticnet.data.preprocess import Preprocess, ShapeBucketBatchSampler
from aestheticnet.data.tid2013 import TID2013, reference_id

SIZES = [(48, 32), (32, 48), (40, 40)]  # three aspect ratios -> three buckets under the aspect policy


def _image(path, i=0, size=None):
    size = size or SIZES[i % len(SIZES)]
    rng = np.random.default_rng(i)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------------------------------------------- AVA
def _ava_row(index, image_id, counts, challenge=1):
    return " ".join(str(v) for v in [index, image_id, *counts, 0, 0, challenge])


@pytest.fixture
def ava_root(tmp_path):
    root = tmp_path / "ava"
    rows = []
    for k in range(12):
        image_id = 1000 + k
        counts = [0] * 10
        counts[k % 10] = 5 + k
        counts[(k + 3) % 10] = 2
        rows.append(_ava_row(k + 1, image_id, counts, challenge=k // 3))
        _image(root / "images" / f"{image_id}.jpg", k)
    rows.append(_ava_row(13, 2000, [0] * 10))  # all-zero votes
    _image(root / "images" / "2000.jpg", 0)
    rows.append(_ava_row(14, 2001, [1] * 10))  # missing image
    rows.append(_ava_row(15, 2002, [1] * 10))  # known corrupt (and the file is garbage)
    (root / "images" / "2002.jpg").write_bytes(b"garbage")
    (root / "AVA.txt").write_text("\n".join(rows) + "\n")
    return root


def test_ava_skips_are_counted_and_reported_once(ava_root, caplog):
    caplog.set_level(logging.WARNING, logger="aestheticnet.data")
    ds = AVA(ava_root, corrupt_ids=["2002"], test_list=None)
    assert len(ds) == 12 and ds.num_buckets == 10
    assert dict(ds.skipped.counts) == {"all-zero votes": 1, "missing image": 1, "known corrupt": 1}
    assert ds.skipped.examples["missing image"] == ["2001"]
    AVA(ava_root, DatasetOptions(split="val"), corrupt_ids=["2002"], test_list=None)  # same file: no second report
    reports = [r for r in caplog.records if "skipped 3 rows" in r.getMessage()]
    assert len(reports) == 1 and "2001" in reports[0].getMessage()


def test_ava_item_format(ava_root):
    ds = AVA(ava_root, corrupt_ids={2002}, test_list=None)
    x, dist, image_id = ds[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert dist.shape == (10,) and dist.dtype == torch.float32
    assert abs(dist.sum().item() - 1) < 1e-6
    assert image_id == "1000"
    np.testing.assert_allclose(ds.records[0].dist[[0, 3]], [5 / 7, 2 / 7])


def test_ava_row_with_nine_counts_names_the_line(tmp_path):
    root = tmp_path / "ava"
    root.mkdir()
    good = _ava_row(1, 1, [1] * 10)
    bad = " ".join(str(v) for v in [3, 3, *([1] * 9), 0, 0, 1])  # 14 columns: only 9 counts
    (root / "AVA.txt").write_text(f"{good}\n{_ava_row(2, 2, [1] * 10)}\n{bad}\n")
    with pytest.raises(ValueError, match=r"AVA\.txt:3: expected 15 .*found 14"):
        AVA(root)


def test_ava_corrupt_ids_from_file(ava_root, tmp_path):
    listing = tmp_path / "corrupt.txt"
    listing.write_text("2002\n")
    assert AVA(ava_root, corrupt_ids=listing, test_list=None).skipped.counts["known corrupt"] == 1


def test_ava_official_split_list(ava_root):
    (ava_root / "generic_test.jpgl").write_text("1000\n1001\n2001\n")  # 2001 is missing on disk

    def ava(split):
        return AVA(ava_root, DatasetOptions(split=split, val_fraction=0.2, seed=3), corrupt_ids=["2002"])

    test = ava("test")
    assert test.ids == ["1000", "1001"] and not test.train
    train, val = ava("train"), ava("val")
    assert train.train and not val.train
    assert not set(train.ids) & set(val.ids)
    assert set(train.ids) | set(val.ids) == {str(1000 + k) for k in range(2, 12)}
    # round(0.2 * 12 groups) = 2 val groups; the split is made before skipping rows (stable when files go
    # missing), so a skipped row may take one of the two places
    assert 1 <= len(val) <= 2
    assert ava("val").ids == val.ids  # seeded: reproducible


def test_ava_seeded_split_by_challenge(ava_root):
    def ava(split):
        options = DatasetOptions(split=split, val_fraction=0.25, seed=0)
        return AVA(ava_root, options, corrupt_ids=["2002"], test_list=None, group_by="challenge")

    train, val = ava("train"), ava("val")
    assert not {r.group for r in train.records} & {r.group for r in val.records}
    assert len(train) + len(val) == 12
    with pytest.raises(ValueError, match="test_list"):
        AVA(ava_root, DatasetOptions(split="test"), test_list=None)


def test_aspect_bucketing_with_a_dataloader(ava_root):
    options = DatasetOptions(preprocess=Preprocess(policy="aspect", size=64))
    ds = AVA(ava_root, options, corrupt_ids=["2002"], test_list=None)
    shapes = ds.shapes()
    assert set(shapes) == {(64, 96), (96, 64), (64, 64)}
    assert ds.shapes() == shapes and ds.image_sizes() is ds.image_sizes()  # cached
    sampler = ShapeBucketBatchSampler(shapes, batch_size=3, shuffle=True, seed=0)
    seen = []
    for x, dist, ids in DataLoader(ds, batch_sampler=sampler):
        assert x.shape[0] == dist.shape[0] == len(ids)
        seen += ids
    assert sorted(seen) == sorted(ds.ids)


def test_training_items_are_augmented_deterministically(ava_root):
    def make():
        options = DatasetOptions(train=True, preprocess=Preprocess(size=32))
        return AVA(ava_root, options, corrupt_ids=["2002"], test_list=None)

    ds, again = make(), make()
    assert all(torch.equal(ds[i][0], again[i][0]) for i in range(6))  # (seed, epoch, index) fixes the crop
    ds.set_epoch(1)
    assert any(not torch.equal(ds[i][0], again[i][0]) for i in range(6))  # a new epoch, new crops and flips


# ---------------------------------------------------------------------------------------------------- TID2013
@pytest.fixture
def tid_root(tmp_path):
    root = tmp_path / "tid"
    lines, stds = [], []
    for ref in range(1, 6):
        for dist in range(1, 3):
            mos = round(1.0 + ref + 0.5 * dist, 2)
            lines.append(f"{mos} i{ref:02d}_{dist:02d}_1.bmp")
            stds.append("0.12")
            # on disk the case differs from the list, as in the real archive
            _image(root / "distorted_images" / f"I{ref:02d}_{dist:02d}_1.BMP", ref * 10 + dist)
        _image(root / "reference_images" / f"I{ref:02d}.BMP", ref)
    lines.append("4.0 i09_01_1.bmp")  # missing on disk
    stds.append("0.2")
    (root / "MOS_with_names.txt").write_text("\n".join(lines) + "\n")
    (root / "mos_std.txt").write_text("\n".join(stds) + "\n")
    return root


def test_tid_mixed_case_names_and_gaussian_labels(tid_root):
    ds = TID2013(tid_root)
    assert len(ds) == 10 and ds.skipped.counts == {"missing image": 1}
    assert ds.records[0].id == "i01_01_1.bmp" and ds.records[0].path == "distorted_images/I01_01_1.BMP"
    x, dist, name = ds[0]
    assert x.shape == (3, 224, 224) and abs(dist.sum().item() - 1) < 1e-6 and name == "i01_01_1.bmp"
    mos = ds.mos[0]
    np.testing.assert_allclose(ds.records[0].dist, discretised_gaussian(mos + 1, 1.0, 10))
    assert ds.mean_scores()[0] == pytest.approx(mos + 1, abs=0.05)  # MOS 0..9 -> scores 1..10
    assert ds.mos_std is not None and ds.mos_std[0] == pytest.approx(0.12)
    sharp = TID2013(tid_root, sigma=0.3)
    assert sharp.records[0].dist.max() > ds.records[0].dist.max()


def test_tid_split_by_reference(tid_root):
    assert reference_id("i01_01_1.bmp") == reference_id("I01_24_5.BMP") == "I01"
    train = TID2013(tid_root, DatasetOptions(split="train", val_fraction=0.4, seed=1))
    val = TID2013(tid_root, DatasetOptions(split="val", val_fraction=0.4, seed=1))
    assert not {r.group for r in train.records} & {r.group for r in val.records}
    assert len(train) == 6 and len(val) == 4
    assert len(TID2013(tid_root, DatasetOptions(split="test", val_fraction=0.2, test_fraction=0.2))) == 2


def test_tid_bad_line(tid_root):
    (tid_root / "MOS_with_names.txt").write_text("5.0 i01_01_1.bmp\n12.5 i01_02_1.bmp\n")
    (tid_root / "mos_std.txt").unlink()
    with pytest.raises(ValueError, match=r"MOS_with_names\.txt:2: MOS 12\.5 outside"):
        TID2013(tid_root)


# ---------------------------------------------------------------------------------------------------- CSV
def test_csv_votes_and_escaping_rows(tmp_path):
    root = tmp_path / "data"
    _image(root / "img" / "a.png", 0)
    _image(root / "img" / "b.png", 1)
    (root / "votes.csv").write_text("path,v1,v2,v3\nimg/a.png,1,2,1\nimg/b.png,0,0,4\nimg/c.png,1,1,1\n")
    votes = CSVLabels(vote_columns=("v1", "v2", "v3"))
    ds = CSVDataset(root / "votes.csv", labels=votes)
    assert ds.num_buckets == 3 and ds.ids == ["img/a.png", "img/b.png"]
    np.testing.assert_allclose(ds.records[0].dist, [0.25, 0.5, 0.25])
    assert ds.skipped.counts == {"missing image": 1}
    assert ds[1][1].tolist() == [0.0, 0.0, 1.0]

    (root / "evil.csv").write_text("path,v1,v2,v3\nimg/a.png,1,2,1\n../../etc/passwd,1,1,1\n")
    with pytest.raises(PathOutsideRootError, match=r"evil\.csv:3: .*\.\./\.\./etc/passwd"):
        CSVDataset(root / "evil.csv", labels=votes)
    (root / "abs.csv").write_text(f"path,v1,v2,v3\n{root / 'img' / 'a.png'},1,2,1\n")
    with pytest.raises(PathOutsideRootError, match=r"abs\.csv:2: .*absolute"):
        CSVDataset(root / "abs.csv", labels=votes)


def test_csv_symlink_row_escaping_root(tmp_path):
    root = tmp_path / "data"
    outside = _image(tmp_path / "elsewhere" / "x.png", 0)
    root.mkdir()
    try:
        os.symlink(outside, root / "x.png")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")
    (root / "s.csv").write_text("path,mos\nx.png,3\n")
    with pytest.raises(PathOutsideRootError, match=r"s\.csv:2"):
        CSVDataset(root / "s.csv", labels=CSVLabels(mean_column="mos"))


def test_csv_mean_std_columns(tmp_path):
    root = tmp_path / "data"
    for i, name in enumerate("abc"):
        _image(root / f"{name}.png", i)
    (root / "scores.csv").write_text("file,score,sd\na.png,50,10\nb.png,90,\nc.png,,\n")
    labels = CSVLabels(mean_column="score", std_column="sd", num_buckets=5, score_range=(0, 100), default_std=20)
    ds = CSVDataset(root / "scores.csv", labels=labels, layout=CSVLayout(path_column="file"))
    assert ds.num_buckets == 5 and len(ds) == 2 and ds.skipped.counts == {"missing score": 1}
    np.testing.assert_allclose(ds.records[0].dist, discretised_gaussian(3.0, 0.4, 5))
    np.testing.assert_allclose(ds.records[1].dist, discretised_gaussian(4.6, 0.8, 5))
    with pytest.raises(ValueError, match="exactly one"):
        CSVLabels()
    with pytest.raises(ValueError, match=r"missing column\(s\) \['nope'\]"):
        CSVDataset(root / "scores.csv", labels=CSVLabels(mean_column="nope"), layout=CSVLayout(path_column="file"))


KONIQ_HEADER = "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore"


@pytest.fixture
def koniq_root(tmp_path):
    root = tmp_path / "koniq"
    rows, sets = [KONIQ_HEADER], ["image_name,set"]
    for i in range(10):
        name = f"{100 + i}.jpg"
        c = [1, 2, 3 + i, 2, 1]
        rows.append(f"{name},{','.join(map(str, c))},{sum(c)},3.0,0.8,50.0")
        sets.append(f"{name},{['training', 'validation', 'test'][i % 3]}")
        _image(root / "1024x768" / name, i)
    (root / "koniq10k_scores_and_distributions.csv").write_text("\n".join(rows) + "\n")
    (root / "koniq10k_sets.csv").write_text("\n".join(sets) + "\n")
    return root


def test_koniq_csv_five_buckets_and_official_split(koniq_root):
    csv_path = koniq_root / "koniq10k_scores_and_distributions.csv"
    ds = koniq_csv(csv_path)
    assert ds.num_buckets == 5 and len(ds) == 10
    x, dist, name = ds[0]
    assert dist.shape == (5,) and name == "100.jpg" and x.shape == (3, 224, 224)
    np.testing.assert_allclose(dist.numpy(), np.array([1, 2, 3, 2, 1]) / 9, rtol=1e-6)
    split_file = koniq_root / "koniq10k_sets.csv"
    test = koniq_csv(csv_path, DatasetOptions(split="test"), split_file=split_file)
    assert test.ids == ["102.jpg", "105.jpg", "108.jpg"]
    assert len(koniq_csv(csv_path, DatasetOptions(split="train"), split_file=split_file)) == 4
    mos = koniq_csv(csv_path, labels="mos")
    np.testing.assert_allclose(mos.records[0].dist, discretised_gaussian(3.0, 0.8, 5))


# ---------------------------------------------------------------------------------------------------- detection
def test_open_dataset_detects_each_format(ava_root, tid_root, koniq_root, tmp_path):
    assert isinstance(open_dataset(ava_root, corrupt_ids=["2002"]), AVA)
    assert isinstance(open_dataset(ava_root / "AVA.txt", corrupt_ids=["2002"]), AVA)
    assert isinstance(open_dataset(tid_root, split="train"), TID2013)
    ds = open_dataset(koniq_root)  # the scores CSV is recognised next to a plain split file
    assert isinstance(ds, CSVDataset) and ds.num_buckets == 5 and len(ds) == 10
    # the official file with votes and a `set` column is preferred, and its split is used
    scores = (koniq_root / "koniq10k_scores_and_distributions.csv").read_text().splitlines()
    sets = (koniq_root / "koniq10k_sets.csv").read_text().splitlines()
    merged = [f"{a},{b.split(',')[1]}" for a, b in zip(scores, sets)]
    (koniq_root / "koniq10k_distributions_sets.csv").write_text("\n".join(merged) + "\n")
    assert open_dataset(koniq_root, split="test").ids == ["102.jpg", "105.jpg", "108.jpg"]
    spec = {"format": "tid2013", "path": str(tid_root), "sigma": 0.5}
    assert open_dataset(spec).sigma == 0.5

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.md").write_text("hi")
    with pytest.raises(ValueError, match=r"AVA\.txt.*mos_with_names\.txt.*\*\.csv.*notes\.md"):
        open_dataset(empty)
    generic = tmp_path / "generic"
    _image(generic / "a.png", 0)
    (generic / "list.csv").write_text("path,score\na.png,3\n")
    with pytest.raises(ValueError, match="mean_column"):
        open_dataset(generic)
    assert len(open_dataset(generic, mean_column="score")) == 1
