"""Genotypes: the discrete description of a normal and a reduction cell.

A cell has two inputs (node 0: output of the cell before the previous one, node 1: of the previous one) and
``len(edges) / 2`` intermediate nodes; intermediate node ``i`` (numbered from 2) takes exactly two edges, each
``(op, input)`` with ``input < i``. The cell output concatenates the nodes in ``*_concat``.

Genotypes are frozen dataclasses with a JSON form and live in a registry: nothing is ever ``eval``-ed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from aestheticnet.io import atomic_write_text
from aestheticnet.nas.operations import PRIMITIVES
from aestheticnet.nas.searched_cells import SEARCHED_CELLS
from aestheticnet.registry import Registry

__all__ = [
    "Genotype",
    "GenotypeError",
    "GENOTYPES",
    "register_genotype",
    "GenotypeOrigin",
    "genotype_origin",
    "get_genotype",
    "list_genotypes",
    "resolve_genotype",
]


class GenotypeError(ValueError):
    """A genotype is malformed; the message names the field, the bad value and the rule."""


Edge = tuple[str, int]


def _check_cell(kind: str, edges: tuple[Edge, ...], concat: tuple[int, ...], source: str) -> None:
    where = f"{source}: " if source else ""
    if len(edges) == 0 or len(edges) % 2 != 0:
        raise GenotypeError(f"{where}{kind} must list two edges per intermediate node, got {len(edges)} edges")
    n_nodes = len(edges) // 2
    for i, edge in enumerate(edges):
        if not (isinstance(edge, tuple) and len(edge) == 2):
            raise GenotypeError(f"{where}{kind}[{i}] must be [op, input], got {edge!r}")
        op, inp = edge
        if op not in PRIMITIVES or op == "none":
            valid = ", ".join(p for p in PRIMITIVES if p != "none")
            raise GenotypeError(f"{where}{kind}[{i}] has unknown op {op!r}; valid ops: {valid}")
        node = 2 + i // 2
        if isinstance(inp, bool) or not isinstance(inp, int) or not 0 <= inp < node:
            raise GenotypeError(
                f"{where}{kind}[{i}] ({op}) has input index {inp!r}; node {node} may only take inputs 0..{node - 1}"
            )
    valid_nodes = range(2, 2 + n_nodes)
    if not concat:
        raise GenotypeError(f"{where}{kind}_concat is empty")
    for c in concat:
        if isinstance(c, bool) or not isinstance(c, int) or c not in valid_nodes:
            raise GenotypeError(
                f"{where}{kind}_concat has node {c!r}; valid nodes are {valid_nodes.start}..{valid_nodes.stop - 1}"
            )
    if len(set(concat)) != len(concat):
        raise GenotypeError(f"{where}{kind}_concat repeats a node: {list(concat)}")


@dataclass(frozen=True)
class Genotype:
    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    @classmethod
    def create(
        cls,
        normal: Iterable[Iterable[Any]],
        normal_concat: Iterable[int],
        reduce: Iterable[Iterable[Any]],
        reduce_concat: Iterable[int],
        source: str = "",
    ) -> "Genotype":
        """Build and validate from lists (as JSON or the published code give them)."""
        try:
            n = tuple((e[0], e[1]) for e in (tuple(x) for x in normal))
            r = tuple((e[0], e[1]) for e in (tuple(x) for x in reduce))
            nc, rc = tuple(normal_concat), tuple(reduce_concat)
        except (TypeError, IndexError) as exc:
            where = f"{source}: " if source else ""
            raise GenotypeError(f"{where}edges must be lists of [op, input] pairs ({exc})") from None
        _check_cell("normal", n, nc, source)
        _check_cell("reduce", r, rc, source)
        return cls(n, nc, r, rc)

    @property
    def steps(self) -> int:
        return len(self.normal) // 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "normal": [list(e) for e in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(e) for e in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "") -> "Genotype":
        where = f"{source}: " if source else ""
        if not isinstance(data, dict):
            raise GenotypeError(f"{where}a genotype must be a JSON object, got {type(data).__name__}")
        keys = {"normal", "normal_concat", "reduce", "reduce_concat"}
        missing, extra = keys - set(data), set(data) - keys
        if missing:
            raise GenotypeError(f"{where}genotype is missing {sorted(missing)}")
        if extra:
            raise GenotypeError(f"{where}genotype has unknown keys {sorted(extra)}; expected {sorted(keys)}")
        return cls.create(data["normal"], data["normal_concat"], data["reduce"], data["reduce_concat"], source)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, source: str = "") -> "Genotype":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"{source}: " if source else ""
            raise GenotypeError(f"{where}not valid JSON ({exc})") from None
        return cls.from_dict(data, source)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Genotype":
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise GenotypeError(f"cannot read genotype file {p}: {exc.strerror}") from None
        return cls.from_json(text, source=str(p))


@dataclass(frozen=True)
class GenotypeOrigin:
    """How a registered genotype was found, so that it can be found again (or its paper read)."""

    method: str  # "published" or "search"
    reference: str  # the paper, or the command and result file that found it
    preset: str | None = None  # the search's stage preset
    data: str | None = None  # the dataset the search ran on
    seed: int | None = None
    latency_table: str | None = None  # the target's table a latency-aware search priced its operations with
    latency_weight: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


GENOTYPES: Registry[Genotype] = Registry("genotype", GenotypeError)
_ORIGINS: dict[str, GenotypeOrigin] = {}


def register_genotype(name: str, genotype: Genotype, origin: GenotypeOrigin | None = None) -> Genotype:
    registered = GENOTYPES.register(name, genotype)
    if origin is not None:
        _ORIGINS[name] = origin
    return registered


def genotype_origin(name: str) -> GenotypeOrigin | None:
    """How the registered genotype ``name`` was found; None when it was registered without saying."""
    GENOTYPES.get(name)  # an unknown name raises, naming the registered ones
    return _ORIGINS.get(name)


def list_genotypes() -> list[str]:
    return GENOTYPES.names()


def get_genotype(name: str) -> Genotype:
    return GENOTYPES.get(name)


def resolve_genotype(name_or_path: str | Path | Genotype) -> Genotype:
    """A registered name, a path to a genotype JSON file, or a Genotype."""
    if isinstance(name_or_path, Genotype):
        return name_or_path
    s = str(name_or_path)
    if s in GENOTYPES:
        return GENOTYPES.get(s)
    if s.endswith(".json") or Path(s).is_file():
        return Genotype.load(s)
    return get_genotype(s)


# Published cells. DARTS_V1 / DARTS_V2: Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019
# (arXiv:1806.09055), cnn/genotypes.py of the authors' release (quark0/darts). PDARTS: Chen et al.,
# "Progressive Differentiable Architecture Search", ICCV 2019 (arXiv:1904.12760), genotypes.py of the
# authors' release (chenxin061/pdarts). All use nodes 2..5 as the cell output.
_CONCAT = (2, 3, 4, 5)
_PUBLISHED: dict[str, tuple[list[Edge], list[Edge]]] = {  # name: (normal, reduce)
    "DARTS_V1": (
        [
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("skip_connect", 2),
        ],
        [
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("avg_pool_3x3", 0),
        ],
    ),
    "DARTS_V2": (
        [
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("skip_connect", 0),
            ("dil_conv_3x3", 2),
        ],
        [
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
        ],
    ),
    "PDARTS": (
        [
            ("skip_connect", 0),
            ("dil_conv_3x3", 1),
            ("skip_connect", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 3),
            ("sep_conv_3x3", 0),
            ("dil_conv_5x5", 4),
        ],
        [
            ("avg_pool_3x3", 0),
            ("sep_conv_5x5", 1),
            ("sep_conv_3x3", 0),
            ("dil_conv_5x5", 2),
            ("max_pool_3x3", 0),
            ("dil_conv_3x3", 1),
            ("dil_conv_3x3", 1),
            ("dil_conv_5x5", 3),
        ],
    ),
}

_PAPERS = {
    "DARTS_V1": "Liu et al., DARTS, ICLR 2019 (first-order search), quark0/darts cnn/genotypes.py",
    "DARTS_V2": "Liu et al., DARTS, ICLR 2019 (second-order search), quark0/darts cnn/genotypes.py",
    "PDARTS": "Chen et al., P-DARTS, ICCV 2019, chenxin061/pdarts genotypes.py",
}
for _name, (_normal, _reduce) in _PUBLISHED.items():
    _genotype = Genotype.create(_normal, _CONCAT, _reduce, _CONCAT, source=_name)
    register_genotype(_name, _genotype, GenotypeOrigin("published", _PAPERS[_name]))

# Found by this project's searches (``searched_cells.py``); each is quoted in the docs with the result it came from.
for _name, _cells in SEARCHED_CELLS.items():
    _genotype = Genotype.create(_cells["normal"], _CONCAT, _cells["reduce"], _CONCAT, source=_name)
    register_genotype(_name, _genotype, GenotypeOrigin(**_cells["origin"]))
DARTS_V1, DARTS_V2, PDARTS = (GENOTYPES.get(n) for n in ("DARTS_V1", "DARTS_V2", "PDARTS"))
