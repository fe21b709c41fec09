"""aestheticnet: image-aesthetics networks from architecture search to the phone.

Subpackages, bottom up, each with its public names in its ``__all__``:

* ``aestheticnet.nas``: search space, strategy, bi-level step, genotypes, latency tables;
* ``aestheticnet.models``: the networks, their registry and model files;
* ``aestheticnet.data``: dataset loaders, preprocessing, the synthetic dataset, splits, quality ladders;
* ``aestheticnet.train``: training, the search job, evaluation;
* ``aestheticnet.artifacts``: what an exported file is (formats, precisions, manifests);
* ``aestheticnet.export``: export to ONNX, TFLite, CoreML and ExecuTorch, and parity checks;
* ``aestheticnet.runtime``: one interface to run any exported model;
* ``aestheticnet.bench``: profiles, latency and memory measurements, interleaved rounds, reports;
* ``aestheticnet.pipeline``: the whole job as cached steps;
* ``aestheticnet.cli``: the ``aestheticnet`` command.

This module imports none of them, so ``import aestheticnet`` stays cheap.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
