"""One path from an image file to the model's input: datasets, ``score`` and int8 calibration (and ``verify --data``,
which reads its images the calibration way) give the same tensor for the same file."""

import numpy as np
import torch
from PIL import Image

from aestheticnet.data.csv_dataset import CSVDataset, CSVLabels
from aestheticnet.data.options import DatasetOptions
from aestheticnet.data.preprocess import Preprocess, file_tensor
from aestheticnet.export.calibration import load_images
from aestheticnet.models import create_model, save
from aestheticnet.runtime import Scorer

PRE = {
    "policy": "aspect",
    "size": 96,
    "max_side": 192,
    "multiple": 32,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}


def rotated_noisy_jpeg(path, size=(480, 320)):
    """A textured JPEG stored sideways (EXIF orientation 6), large enough for draft decoding at the model's size."""
    rng = np.random.default_rng(0)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    pixels[: size[1] // 2, :, 0] = 250  # a red top half, so a missed rotation shows
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif, quality=90)
    return path


def test_score_calibration_and_datasets_decode_a_file_to_the_same_tensor(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    path = rotated_noisy_jpeg(folder / "rot.jpg")
    pre = Preprocess.from_dict(PRE)
    reference = file_tensor(path, pre).numpy()
    assert reference.shape[1:] == (160, 96)  # displayed 320x480 (portrait): its shorter side, the width, at 96

    torch.manual_seed(0)
    model = save(
        create_model("aestheticnet_star", layers=3, init_channels=4), tmp_path / "m.safetensors", preprocess=PRE
    )
    scored = Scorer(model).image(path)
    calibration, names, _ = load_images(folder, PRE, samples=1)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,mean\nphotos/rot.jpg,5.0\n")
    dataset = CSVDataset(csv, DatasetOptions(preprocess=pre, split="all"), labels=CSVLabels(mean_column="mean"))
    for other in (scored, calibration[0], dataset[0][0].numpy()):
        np.testing.assert_array_equal(other, reference)
    assert names == ["rot.jpg"]
    # The rotation was applied: the red half is on the right of the displayed (portrait) image.
    assert reference[0, :, -8:].mean() > reference[0, :, :8].mean()
