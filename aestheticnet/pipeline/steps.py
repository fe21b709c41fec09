"""Cached pipeline steps: a step is skipped when its outputs exist and match its inputs' hashes.

Each finished step leaves ``steps/<name>.json`` with the hash of its inputs (its config section plus the
hashes of the upstream files it reads) and the sha256 of each output file. On the next run the step is
skipped only if the inputs hash is the same and every output still has its recorded hash; otherwise it runs
again (and a step that resumes, such as training, picks up its own checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aestheticnet.io import atomic_write_json, sha256_file

__all__ = ["StepContext", "StepOutcome", "run_step", "inputs_hash", "files_digest"]


def _hash_path(p: Path) -> str:
    if p.is_dir():  # .mlpackage and dataset folders: hash of relative names and file hashes
        h = hashlib.sha256()
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(str(f.relative_to(p)).encode())
            h.update(sha256_file(f).encode())
        return h.hexdigest()
    return sha256_file(p)


def files_digest(paths: list[str | Path]) -> dict[str, str]:
    return {str(p): _hash_path(Path(p)) for p in paths}


def inputs_hash(config: Any, upstream: dict[str, str]) -> str:
    payload = json.dumps({"config": config, "upstream": upstream}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class StepOutcome:
    name: str
    skipped: bool
    seconds: float
    outputs: dict[str, str]  # path -> sha256
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepContext:
    out_dir: Path
    log: Callable[[str], None] = print

    @property
    def steps_dir(self) -> Path:
        return self.out_dir / "steps"


def run_step(
    ctx: StepContext,
    name: str,
    config: Any,
    upstream: dict[str, str],
    fn: Callable[[], tuple[list[Path], dict[str, Any]]],
) -> StepOutcome:
    """Run ``fn`` unless a record with the same inputs hash and intact outputs exists.

    ``fn`` returns (output paths, a JSON-able result); both are recorded.
    """
    record_path = ctx.steps_dir / f"{name}.json"
    key = inputs_hash(config, upstream)
    if record_path.exists():
        try:
            record = json.loads(record_path.read_text())
        except json.JSONDecodeError:
            record = {}
        outputs = record.get("outputs", {})
        intact = record.get("inputs_hash") == key and all(
            Path(p).exists() and _hash_path(Path(p)) == h for p, h in outputs.items()
        )
        if intact:
            ctx.log(f"[{name}] up to date, skipped")
            return StepOutcome(name, True, 0.0, outputs, record.get("result", {}))
        ctx.log(f"[{name}] inputs or outputs changed, running again")
    else:
        ctx.log(f"[{name}] running")
    t0 = time.perf_counter()
    paths, result = fn()
    seconds = time.perf_counter() - t0
    outputs = files_digest(paths)
    atomic_write_json(
        record_path,
        {
            "name": name,
            "inputs_hash": key,
            "outputs": outputs,
            "result": result,
            "seconds": seconds,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    ctx.log(f"[{name}] done in {seconds:.1f} s")
    return StepOutcome(name, False, seconds, outputs, result)
