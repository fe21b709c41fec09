"""BRISQUE scores of image files, run with a Python that has the ``brisque`` package (not a dependency of ours).

    BRISQUE_PYTHON benchmarks/brisque_scores.py PATHS.json OUT.json

Reads a JSON list of image paths and writes ``{path: score}``, BRISQUE's score (lower is better quality; the
package's SVR trained on LIVE, 36 features of mean-subtracted contrast-normalised coefficients at two scales).
Used by ``benchmarks/ladders.py``, which makes the environment.
"""

import json
import sys
import warnings

import numpy as np
from brisque import BRISQUE
from PIL import Image


class FlatFeatureBRISQUE(BRISQUE):
    """Under numpy 2 some of the package's features come back as 1-element arrays, which its scaling step cannot
    turn into floats; flattening them first gives the features the package computes under numpy 1."""

    def calculate_brisque_features(self, image, kernel_size=7, sigma=7 / 6):
        features = super().calculate_brisque_features(image, kernel_size=kernel_size, sigma=sigma)
        return np.array([float(np.asarray(f, dtype=np.float64).ravel()[0]) for f in features])


def main() -> None:
    with open(sys.argv[1]) as f:
        paths = json.load(f)
    model = FlatFeatureBRISQUE(url=False)
    scores = {}
    with warnings.catch_warnings():
        # numpy 2 warns when the package turns its 1-element feature arrays into floats; the values are right.
        warnings.simplefilter("ignore", DeprecationWarning)
        for path in paths:
            with Image.open(path) as img:
                scores[path] = float(model.score(np.asarray(img.convert("RGB"))))
    with open(sys.argv[2], "w") as f:
        json.dump(scores, f)


if __name__ == "__main__":
    main()
