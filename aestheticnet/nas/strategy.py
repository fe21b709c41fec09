"""The P-DARTS search strategy as data: one small frozen dataclass per stage, and one config for the whole search.

P-DARTS (Chen et al., ICCV 2019, arXiv:1904.12760) searches in stages whose supernet grows deeper while each
edge's candidate set shrinks. In the authors' release (chenxin061/pdarts, ``train_search.py``) the schedule is
spread over a 468-line main with nested bool lists; here each stage is a :class:`StageSpec` and a schedule is a
tuple of them (``PRESETS``). Search space (``search_space.py``), strategy (this file), the update step
(``bilevel.py``) and the job that runs it on data (``aestheticnet.train.search``) are separate objects, as in NNI.

What a stage does, in the release's terms:

* a fresh supernet of ``cells`` cells (5 + ``add_layers`` 0 / 6 / 12 = 5, 11, 17) is built over the ops still
  active on each edge, with new weights and new architecture weights (``1e-3 * randn``);
* ``epochs`` epochs (25) of cosine-annealed SGD on the weights; the first ``warmup_epochs`` (10, ``eps_no_arch``)
  update the weights only, after that each step first takes one Adam step on the architecture weights using a
  batch of the architecture split, then one SGD step on the weights;
* skip-connect dropout (``--dropout_rate 0.1 0.4 0.7`` in the README's search command) after every
  stride-1 ``skip_connect``, with the release's decay within a stage (:meth:`StageSpec.skip_dropout_at`):
  ``rate * (epochs - epoch - 1) / epochs`` during warm-up and ``rate * exp(-(epoch - warmup) * 0.2)`` after
  (``scale_factor = 0.2``);
* at the end, each edge keeps the ``ops_kept`` of the next stage with the largest softmax weights; under a
  skip-connect cap a normal-cell edge also keeps one op other than ``none`` and ``skip_connect``
  (``derivation.prune_stage``), so that the cap can be met whatever ``ops_kept`` is.

The paper's schedule keeps 8 -> 5 -> 2 ops per edge (``pdarts_paper``, the default); the release keeps 8 -> 5 -> 3
(``num_to_keep = [5, 3, 1]`` counting the final pick; ``pdarts_official``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from aestheticnet.configs import field_names, problems_of, raise_problems, reject_unknown, type_problems
from aestheticnet.losses import LOSS_NAMES
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.nas.stem import check_stem, input_multiple

__all__ = [
    "StageSpec",
    "SearchConfig",
    "PRESETS",
    "PRESET_SETTINGS",
    "DEFAULT_PRESET",
    "SKIP_DROPOUT_DECAYS",
    "preset_stages",
]

SKIP_DROPOUT_DECAYS = ("pdarts", "constant")


@dataclass(frozen=True)
class StageSpec:
    """One P-DARTS stage.

    cells: depth of the supernet in this stage (reduction cells at 1/3 and 2/3 of it, as in the final net).
    ops_kept: candidate ops per edge during this stage (the first stage holds all of PRIMITIVES).
    epochs: epochs of this stage; the cosine schedule of the weight learning rate spans them.
    warmup_epochs: leading epochs that train the weights only (no architecture updates).
    skip_dropout: dropout rate after stride-1 skip_connect ops, before the within-stage decay.
    """

    cells: int
    ops_kept: int
    epochs: int = 25
    warmup_epochs: int = 10
    skip_dropout: float = 0.0

    def __post_init__(self) -> None:
        not_ints = [
            n
            for n in ("cells", "ops_kept", "epochs", "warmup_epochs")
            if isinstance(getattr(self, n), bool) or not isinstance(getattr(self, n), int)
        ]
        raise_problems(self, [f"{n}={getattr(self, n)!r} (need an integer)" for n in not_ints])
        raise_problems(
            self,
            problems_of(
                [
                    (self.cells >= 3, f"cells={self.cells} (need >= 3 for two reduction cells)"),
                    (1 <= self.ops_kept <= len(PRIMITIVES), f"ops_kept={self.ops_kept} (need 1..{len(PRIMITIVES)})"),
                    (self.epochs >= 1, f"epochs={self.epochs} (need >= 1)"),
                    (
                        0 <= self.warmup_epochs <= self.epochs,
                        f"warmup_epochs={self.warmup_epochs} (need 0..epochs={self.epochs})",
                    ),
                    (0.0 <= float(self.skip_dropout) < 1.0, f"skip_dropout={self.skip_dropout} (need 0 <= p < 1)"),
                ]
            ),
        )

    def trains_arch(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based, within the stage) updates the architecture weights."""
        return epoch >= self.warmup_epochs

    def skip_dropout_at(self, epoch: int, decay: str = "pdarts", scale: float = 0.2) -> float:
        """Skip-connect dropout rate for ``epoch`` (0-based, within the stage).

        ``pdarts`` follows chenxin061/pdarts ``train_search.py``: during warm-up
        ``rate * (epochs - epoch - 1) / epochs`` (a linear decrease), then
        ``rate * exp(-(epoch - warmup_epochs) * scale)`` with ``scale = 0.2`` (back to ``rate`` at the first
        architecture epoch, then an exponential decay). ``constant`` keeps ``rate`` throughout.
        """
        rate = float(self.skip_dropout)
        if decay == "constant" or rate == 0.0:
            return rate
        if decay != "pdarts":
            raise ValueError(f"skip_dropout_decay={decay!r} is not one of {SKIP_DROPOUT_DECAYS}")
        if epoch < self.warmup_epochs:
            return rate * (self.epochs - epoch - 1) / self.epochs
        return rate * math.exp(-(epoch - self.warmup_epochs) * scale)

    def scaled(self, factor: float) -> "StageSpec":
        """Epochs and warm-up scaled by ``factor`` (rounded; at least one epoch, and at least one architecture
        epoch when the unscaled stage had one), for quick runs with the paper's proportions."""
        if not factor > 0:
            raise ValueError(f"epochs scale must be > 0, got {factor}")
        epochs = max(1, int(math.floor(self.epochs * factor + 0.5)))
        warmup = int(math.floor(self.warmup_epochs * factor + 0.5))
        if self.warmup_epochs < self.epochs:
            warmup = min(warmup, epochs - 1)
        return dataclasses.replace(self, epochs=epochs, warmup_epochs=min(warmup, epochs))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "stage") -> "StageSpec":
        if isinstance(data, StageSpec):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a stage must be an object with keys {field_names(cls)}, got {data!r}")
        reject_unknown(cls, data, source)
        return cls(**data)


# The paper (Sec. 3.2 / 4.2): 5, 11, 17 cells; 8 -> 5 -> 2 candidates per edge; 25 epochs, 10 weights-only.
_PAPER_STAGES = (
    StageSpec(cells=5, ops_kept=8, epochs=25, warmup_epochs=10, skip_dropout=0.1),
    StageSpec(cells=11, ops_kept=5, epochs=25, warmup_epochs=10, skip_dropout=0.4),
    StageSpec(cells=17, ops_kept=2, epochs=25, warmup_epochs=10, skip_dropout=0.7),
)
PRESETS: dict[str, tuple[StageSpec, ...]] = {
    "pdarts_paper": _PAPER_STAGES,
    # The authors' release: num_to_keep = [5, 3, 1], so the last stage searches over 3 ops per edge.
    "pdarts_official": (
        StageSpec(cells=5, ops_kept=8, epochs=25, warmup_epochs=10, skip_dropout=0.1),
        StageSpec(cells=11, ops_kept=5, epochs=25, warmup_epochs=10, skip_dropout=0.4),
        StageSpec(cells=17, ops_kept=3, epochs=25, warmup_epochs=10, skip_dropout=0.7),
    ),
    # The paper's schedule against a phone's latency table: see PRESET_SETTINGS.
    "phone": _PAPER_STAGES,
}
DEFAULT_PRESET = "pdarts_paper"
# SearchConfig fields a preset sets besides its stages (explicit values override them). A preset that sets
# latency_weight refuses to run without a latency_table: it cannot know the target device.
PRESET_SETTINGS: dict[str, dict[str, Any]] = {
    # No target: a table's milliseconds depend on the device, so the soft form applies; 0.5 trades 1% of
    # predicted latency for up to 0.5% of SW-EMD. latency_target_ms turns it into a budget.
    "phone": {"latency_weight": 0.5},
}


def preset_stages(name: str) -> tuple[StageSpec, ...]:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown search preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}") from None


def _stage_problems(stages: tuple[StageSpec, ...]) -> list[str]:
    """The first stage searches every primitive and later stages only ever drop ops."""
    if not stages:
        return ["stages is empty"]
    problems = []
    if stages[0].ops_kept != len(PRIMITIVES):
        problems.append(
            f"stages[0].ops_kept={stages[0].ops_kept} (the first stage searches all {len(PRIMITIVES)} primitives)"
        )
    for i in range(1, len(stages)):
        if stages[i].ops_kept > stages[i - 1].ops_kept:
            problems.append(
                f"stages[{i}].ops_kept={stages[i].ops_kept} exceeds the previous stage's "
                f"{stages[i - 1].ops_kept} (ops are only ever dropped)"
            )
    return problems


def _latency_problems(config: "SearchConfig") -> list[str]:
    target, weight = config.latency_target_ms, config.latency_weight
    problems = problems_of(
        [
            (
                isinstance(weight, (int, float)) and not isinstance(weight, bool) and 0.0 <= weight < math.inf,
                f"latency_weight={weight!r} (need a number >= 0; 0 turns the latency term off)",
            ),
            (
                target is None or (isinstance(target, (int, float)) and 0.0 < target < math.inf),
                f"latency_target_ms={target!r} (need a number of milliseconds > 0, or None for no target)",
            ),
            (
                config.latency_table is None or (isinstance(config.latency_table, str) and config.latency_table != ""),
                f"latency_table={config.latency_table!r} (need the path of a latency table, or None)",
            ),
        ]
    )
    if problems or config.latency_table is not None:
        return problems
    if PRESET_SETTINGS.get(config.preset, {}).get("latency_weight", 0.0) > 0:
        return [
            f"preset {config.preset!r} searches against a target's latency: set latency_table "
            "(--latency-table T.json; build T with `aestheticnet bench ops`)"
        ]
    if weight > 0:
        return [
            f"latency_weight={weight} needs latency_table (--latency-table T.json; build T with "
            "`aestheticnet bench ops`), or set latency_weight=0"
        ]
    return []


@dataclass(frozen=True)
class SearchConfig:
    """Everything a search run depends on; saved next to its outputs and checked on ``resume``."""

    stages: tuple[StageSpec, ...] = field(default_factory=lambda: PRESETS[DEFAULT_PRESET])
    preset: str = DEFAULT_PRESET  # informational: the stages above are what runs
    # Supernet. 16 channels as in DARTS/P-DARTS search; 4 intermediate nodes, all concatenated.
    init_channels: int = 16
    steps: int = 4
    stem: str = "imagenet"  # the final network's stem (stride 8); "cifar" (stride 1) for tiny inputs
    resolution: int = 64  # square search input; a multiple of the stem stride x 4 (32 with the imagenet stem)
    alpha_init_std: float = 1e-3  # architecture weights start at N(0, std^2), as in DARTS/P-DARTS
    # Weights: SGD with a cosine schedule per stage (P-DARTS learning_rate_min = 0).
    weight_lr: float = 0.025
    weight_lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    # Architecture: Adam; the release clips the architecture gradient with the same grad_clip.
    arch_lr: float = 6e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    arch_grad_clip: float | None = 5.0
    order: str = "first"  # "first": first-order bi-level updates (P-DARTS); "second": DARTS' unrolled step
    batch_size: int = 96  # per process; the same for the weight and the architecture batches
    # Proxy data: a seeded fraction of the training split, divided weight:architecture = 4:1.
    proxy_fraction: float = 0.1
    weight_fraction: float = 0.8
    data_split: str = "train"
    augment: bool = True  # random crop + flip of the dataset's train transform, seeded per (seed, epoch, item)
    # Loss on the predicted distributions.
    loss: str = "sw_emd"
    loss_r: float = 2.0
    loss_lam: float = 0.5
    # Derivation.
    max_skip_connect: int | None = 2  # skip_connects allowed in the normal cell; None: no cap
    skip_dropout_decay: str = "pdarts"
    skip_dropout_scale: float = 0.2
    # Latency (``nas/latency_penalty.py``): the architecture objective becomes
    # loss * max(1, expected_ms / target) ** weight, or loss * (expected_ms / average_ms) ** weight without a target.
    latency_table: str | None = None  # the target's table (``aestheticnet bench ops``); its predictions are logged
    latency_target_ms: float | None = None  # predicted milliseconds the network may take before it pays
    latency_weight: float = 0.0  # 0: the search ignores latency (the table, if any, is only reported)
    seed: int = 0
    workers: int = 0  # DataLoader worker processes

    def __post_init__(self) -> None:
        raise_problems(self, type_problems(self))
        object.__setattr__(
            self, "stages", tuple(StageSpec.from_dict(s, f"stages[{i}]") for i, s in enumerate(self.stages))
        )
        object.__setattr__(self, "arch_betas", tuple(float(b) for b in self.arch_betas))
        stem_problem = check_stem(self.stem)
        multiple = input_multiple(self.stem) if stem_problem is None else 1
        raise_problems(
            self,
            _stage_problems(self.stages)
            + problems_of(
                [
                    (stem_problem is None, stem_problem or ""),
                    (
                        self.resolution >= multiple and self.resolution % multiple == 0,
                        f"resolution={self.resolution} (need a positive multiple of {multiple})",
                    ),
                    (
                        self.init_channels >= 2 and self.init_channels % 2 == 0,
                        f"init_channels={self.init_channels} (need an even number >= 2)",
                    ),
                    (self.steps >= 1, f"steps={self.steps} (need >= 1)"),
                    (self.order in ("first", "second"), f"order={self.order!r} (valid: first, second)"),
                    (self.batch_size >= 2, f"batch_size={self.batch_size} (need >= 2: batch norm needs two samples)"),
                    (0.0 < self.proxy_fraction <= 1.0, f"proxy_fraction={self.proxy_fraction} (need 0 < f <= 1)"),
                    (0.0 < self.weight_fraction < 1.0, f"weight_fraction={self.weight_fraction} (need 0 < f < 1)"),
                    (self.loss in LOSS_NAMES, f"loss={self.loss!r} (valid: {', '.join(LOSS_NAMES)})"),
                    (
                        self.max_skip_connect is None or self.max_skip_connect >= 0,
                        f"max_skip_connect={self.max_skip_connect} (need >= 0, or None for no cap)",
                    ),
                    (
                        self.skip_dropout_decay in SKIP_DROPOUT_DECAYS,
                        f"skip_dropout_decay={self.skip_dropout_decay!r} (valid: {SKIP_DROPOUT_DECAYS})",
                    ),
                    (self.weight_lr > 0, f"weight_lr={self.weight_lr} (need > 0)"),
                    (self.arch_lr > 0, f"arch_lr={self.arch_lr} (need > 0)"),
                    (self.grad_clip is None or self.grad_clip > 0, f"grad_clip={self.grad_clip} (need > 0)"),
                    (self.workers >= 0, f"workers={self.workers} (need >= 0)"),
                ]
            )
            + _latency_problems(self),
        )

    @property
    def input_multiple(self) -> int:
        return input_multiple(self.stem)

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)

    @classmethod
    def from_preset(cls, name: str = DEFAULT_PRESET, epochs_scale: float = 1.0, **overrides: Any) -> "SearchConfig":
        """The preset's stages (epochs scaled) and settings (``PRESET_SETTINGS``), then ``overrides``."""
        reject_unknown(cls, overrides, "SearchConfig.from_preset")
        stages = preset_stages(name)
        if epochs_scale != 1.0:
            stages = tuple(s.scaled(epochs_scale) for s in stages)
        return cls(**{"stages": stages, "preset": name, **PRESET_SETTINGS.get(name, {}), **overrides})

    def replace(self, **changes: Any) -> "SearchConfig":
        reject_unknown(type(self), changes, "SearchConfig.replace")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["stages"] = [s.to_dict() for s in self.stages]
        d["arch_betas"] = list(self.arch_betas)
        return d

    @classmethod
    def from_dict(cls, data: Any, source: str = "search config") -> "SearchConfig":
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected an object, got {type(data).__name__}")
        reject_unknown(cls, data, source)
        values = dict(data)
        if "stages" in values:
            stages = values["stages"]
            if not isinstance(stages, (list, tuple)):
                raise ValueError(f"{source}: stages must be a list of stage objects")
            values["stages"] = tuple(StageSpec.from_dict(s, f"{source} stages[{i}]") for i, s in enumerate(stages))
        return cls(**values)

    def differences(self, other: "SearchConfig") -> list[str]:
        """Names of the fields whose values differ (for a clear resume error)."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if a[k] != b[k]]
