"""The cells this project's own searches found, as data: ``genotypes.py`` registers each under its name with its
origin (the fields of ``GenotypeOrigin``). Each is quoted in the docs with the result it came from."""

# The row "searched on the pool" of benchmarks/accuracy_latency.py (pool_genotype), one search per training seed on
# that seed's training photos only, so that no seed's validation photos were searched on.
POOL_SEARCH = {
    "method": "search",
    "reference": "benchmarks/accuracy_latency.py, row star_searched (results/accuracy_latency.json): P-DARTS with the "
    "pipeline's demo search settings (32 px, C=8, batch 32) at 0.2 of the paper's epochs on 0.5 of the training images",
    "preset": "pdarts_paper",
    "data": "the photo pool (benchmarks/photo_pool.py), the training photos of the seed's split (val_fraction 0.4, by "
    "photo)",
}

SEARCHED_CELLS: dict[str, dict] = {
    "LATENCY_EPYC_W2": {
        "normal": [
            ("dil_conv_3x3", 0),
            ("skip_connect", 1),
            ("skip_connect", 0),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 2),
            ("max_pool_3x3", 3),
            ("dil_conv_3x3", 0),
            ("dil_conv_3x3", 3),
        ],
        "reduce": [
            ("sep_conv_5x5", 0),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("dil_conv_3x3", 1),
            ("skip_connect", 3),
            ("avg_pool_3x3", 1),
            ("skip_connect", 3),
        ],
        "origin": {
            "method": "search",
            "reference": "benchmarks/latency_search.py --weights 2 --seeds 0,1,2 (results/latency_search.json): "
            "P-DARTS at 0.12 of the paper's epochs on 0.25 of the training photos, ONNX Runtime fp32 1 thread",
            "preset": "pdarts_paper",
            "data": "the built-in synthetic dataset (aestheticnet.data.ensure_synthetic, seed 0)",
            "seed": 0,
            "latency_table": "benchmarks/latency_tables/amd-epyc-2core.onnxruntime.1thread.json (`aestheticnet bench "
            "ops --runtime onnxruntime --threads 1` on a 2-core AMD EPYC VM; run it on your target for its own)",
            "latency_weight": 2.0,
        },
    },
    "POOL_SEED0": {
        "normal": [
            ("sep_conv_5x5", 0),
            ("dil_conv_3x3", 1),
            ("dil_conv_3x3", 1),
            ("sep_conv_5x5", 2),
            ("dil_conv_5x5", 0),
            ("sep_conv_5x5", 1),
            ("dil_conv_3x3", 0),
            ("max_pool_3x3", 1),
        ],
        "reduce": [
            ("dil_conv_3x3", 0),
            ("avg_pool_3x3", 1),
            ("dil_conv_3x3", 0),
            ("sep_conv_5x5", 1),
            ("dil_conv_5x5", 1),
            ("dil_conv_5x5", 2),
            ("dil_conv_3x3", 2),
            ("sep_conv_3x3", 4),
        ],
        "origin": {**POOL_SEARCH, "seed": 0},
    },
    "POOL_SEED1": {
        "normal": [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("dil_conv_5x5", 1),
            ("dil_conv_5x5", 2),
            ("dil_conv_3x3", 1),
            ("dil_conv_5x5", 2),
            ("sep_conv_5x5", 0),
            ("skip_connect", 1),
        ],
        "reduce": [
            ("sep_conv_5x5", 0),
            ("sep_conv_5x5", 1),
            ("max_pool_3x3", 1),
            ("avg_pool_3x3", 2),
            ("avg_pool_3x3", 1),
            ("avg_pool_3x3", 3),
            ("sep_conv_5x5", 2),
            ("dil_conv_3x3", 3),
        ],
        "origin": {**POOL_SEARCH, "seed": 1},
    },
    "POOL_SEED2": {
        "normal": [
            ("dil_conv_3x3", 0),
            ("sep_conv_5x5", 1),
            ("sep_conv_5x5", 0),
            ("dil_conv_5x5", 2),
            ("avg_pool_3x3", 0),
            ("avg_pool_3x3", 2),
            ("dil_conv_5x5", 3),
            ("sep_conv_5x5", 4),
        ],
        "reduce": [
            ("dil_conv_5x5", 0),
            ("skip_connect", 1),
            ("dil_conv_3x3", 0),
            ("max_pool_3x3", 2),
            ("sep_conv_5x5", 2),
            ("avg_pool_3x3", 3),
            ("max_pool_3x3", 0),
            ("avg_pool_3x3", 4),
        ],
        "origin": {**POOL_SEARCH, "seed": 2},
    },
}
