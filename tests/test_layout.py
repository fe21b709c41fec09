"""The package's shape: imports go down the floors and never in a circle; modules and functions stay small.

Floors, bottom up (a module imports only from its own floor or below):

    0 base      top-level modules (aestheticnet/io.py, sizes.py, ...) and the package's __init__
    1 nas, models
    2 data, train
    3 artifacts
    4 export, runtime
    5 bench, pipeline, cli (the click commands, aestheticnet/cli/)

with two rules inside a floor: runtime never imports export (but for ``runtime.load``, which finds a format's
backend in ``export.registry``), and nas and models import nothing above floor 1
(which the floors already say). Every import counts, also one inside a function: a lazy import still ties the
two modules together.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = "aestheticnet"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

FLOORS = {
    "nas": 1,
    "models": 1,
    "data": 2,
    "train": 2,
    "artifacts": 3,
    "export": 4,
    "runtime": 4,
    "bench": 5,
    "pipeline": 5,
    "cli": 5,
}
TOP = 5
# Pairs of areas on one floor where one may not import the other.
FORBIDDEN_SIDEWAYS = {("runtime", "export")}
# ... except for these modules: runtime.load finds a format's backend in the one registry of formats.
ALLOWED_SIDEWAYS = {("aestheticnet.runtime.loading", "aestheticnet.export.registry")}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 8
# The device runner is copied alone to boards without the package, so it holds its whole program in one file.
LONG_MODULES = {"aestheticnet.bench.runner"}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``pkg/__init__.py`` is ``pkg``)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(name: str) -> str | None:
    """The module of the package that an imported dotted name lands in (the longest known prefix), or None."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def imports_of(name: str) -> set[str]:
    """Modules of the package that ``name`` imports anywhere in its file, function bodies included."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    package = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # "from pkg import name": name may be a submodule of pkg, or a value defined in pkg.
            targets = [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                module = resolve(target)
                if module is not None and module != name:
                    found.add(module)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def area(name: str) -> str | None:
    """``aestheticnet.export.api`` -> ``export``; None for base modules and the package itself."""
    parts = name.split(".")
    if len(parts) > 2 or (len(parts) == 2 and is_package(name)):
        return parts[1]
    return None


def floor(name: str) -> int:
    which = area(name)
    return 0 if which is None else FLOORS[which]


def test_the_walk_sees_the_package():
    assert len(MODULES) > 50 and "aestheticnet.sizes" in MODULES and "aestheticnet.bench" in MODULES
    assert "aestheticnet.bench.harness" in GRAPH["aestheticnet.cli.bench"]  # an import inside a function
    assert floor("aestheticnet.cli.export") == TOP and floor("aestheticnet.sizes") == 0


def test_every_subpackage_has_a_floor():
    areas = {area(name) for name in MODULES} - {None}
    assert areas <= set(FLOORS), f"give {sorted(areas - set(FLOORS))} a floor in FLOORS (and in docs/architecture.md)"


def test_no_import_against_the_floors():
    wrong = []
    for name, targets in sorted(GRAPH.items()):
        for target in sorted(targets):
            if floor(target) > floor(name):
                wrong.append(f"{name} (floor {floor(name)}) imports {target} (floor {floor(target)})")
            elif (area(name), area(target)) in FORBIDDEN_SIDEWAYS and (name, target) not in ALLOWED_SIDEWAYS:
                wrong.append(f"{name} imports {target}: {area(name)} never imports {area(target)}")
    assert not wrong, "\n" + "\n".join(wrong)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles():
    # A package's __init__ that re-exports its own modules is part of the package, not a cycle partner of them.
    graph = {
        name: {t for t in targets if not (is_package(t) and name.startswith(t + "."))}
        for name, targets in GRAPH.items()
    }
    cycles = find_cycles(graph)
    assert not cycles, "\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_module_sizes():
    too_long = []
    for name, path in sorted(MODULES.items()):
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES and name not in LONG_MODULES:
            too_long.append(f"{path.relative_to(ROOT.parent)}: {lines} lines")
    assert not too_long, f"\nmodules over {MAX_MODULE_LINES} lines:\n" + "\n".join(too_long)


def test_function_sizes():
    too_long = []
    for path in sorted(MODULES.values()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, f"\nfunctions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(too_long)


def parameter_count(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Named parameters, ``self``/``cls`` left out (``*args``/``**kwargs`` are not a keyword list)."""
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return len(names) - (1 if names[:1] in (["self"], ["cls"]) else 0)


def is_click_command(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A click command takes one parameter per option: its signature is the command line's."""
    return any(
        ast.unparse(d).startswith(("click.", "cli.", "main.command", "group.command")) for d in node.decorator_list
    )


def test_parameter_counts():
    wide = []
    for path in sorted(MODULES.values()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not is_click_command(node):
                if parameter_count(node) > MAX_PARAMETERS:
                    wide.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}(): {parameter_count(node)}")
    assert not wide, (
        f"\nfunctions with more than {MAX_PARAMETERS} parameters (use an options dataclass):\n" + "\n".join(wide)
    )


def test_parameter_count_rule_sees_a_wide_function_and_spares_a_command():
    wide = ast.parse("def f(self, a, b, c, d, e, f, g, h, i): pass").body[0]
    command = ast.parse("@click.option('--a')\ndef f(a, b, c, d, e, f, g, h, i): pass").body[0]
    assert parameter_count(wide) == 9 and not is_click_command(wide) and is_click_command(command)


# ------------------------------------------------------------------------------------------ the public API

# Benchmarks are scripts as a user writes them: they import a subpackage's public names (its __all__) or a base
# module's, so moving a module inside a subpackage cannot break them unnoticed.

BENCHMARKS = ROOT.parent / "benchmarks"
MAX_BENCHMARK_FUNCTION_LINES = 60
SUBPACKAGES = sorted(f"{PACKAGE}.{name}" for name in FLOORS)
# Top-level modules (aestheticnet/io.py, ...): a benchmark imports their public names directly.
BASE_MODULES = sorted(name for name in MODULES if name.count(".") == 1 and not is_package(name))


def public_names(module_name: str) -> set[str]:
    """A module's ``__all__``, or its names without a leading underscore where it has none."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    return set(names) if names is not None else {n for n in vars(module) if not n.startswith("_")}


def _import_problems(node: ast.AST) -> list[str]:
    """What is wrong with one import of the package by a benchmark: only subpackages, base modules and their public
    names, never a module inside a subpackage."""
    entry_points = set(SUBPACKAGES) | set(BASE_MODULES)
    if isinstance(node, ast.Import):
        return [
            f"imports {alias.name}: import the subpackage (or a base module) instead"
            for alias in node.names
            if alias.name.startswith(PACKAGE + ".") and alias.name not in entry_points
        ]
    if not isinstance(node, ast.ImportFrom) or node.level or (node.module or "").split(".")[0] != PACKAGE:
        return []
    if node.module == PACKAGE:
        allowed = public_names(PACKAGE) | {name.rpartition(".")[2] for name in entry_points}
    elif node.module in entry_points:
        allowed = public_names(node.module)
    else:
        return [f"imports from {node.module}: a module inside a subpackage, not the subpackage's public API"]
    return [f"imports {node.module}.{a.name}, not in its __all__" for a in node.names if a.name not in allowed]


def _dynamic_import_problems(node: ast.AST) -> list[str]:
    """``importlib.import_module("aestheticnet.x.y")`` and ``__import__`` with a literal name, as imports."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return []
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    target = node.args[0].value
    if name not in ("import_module", "__import__") or not isinstance(target, str):
        return []
    return _import_problems(ast.Import(names=[ast.alias(name=target)]))


def _path_edit_problems(node: ast.AST) -> list[str]:
    """Changes to where Python looks for modules: the package is installed, benchmarks import it as users do."""
    edits = (("sys", "path"), ("site", "addsitedir"))
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (node.value.id, node.attr) in edits:
        return [f"uses {node.value.id}.{node.attr}"]
    if isinstance(node, ast.ImportFrom) and node.module in ("sys", "site"):
        return [f"imports {node.module}.{a.name}" for a in node.names if a.name in ("path", "addsitedir")]
    if isinstance(node, ast.Constant) and node.value == "PYTHONPATH":
        return ["sets PYTHONPATH"]
    return []


def benchmark_problems(path: Path) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        for problem in _import_problems(node) + _dynamic_import_problems(node) + _path_edit_problems(node):
            problems.append(f"benchmarks/{path.name}:{node.lineno}: {problem}")
    return problems


def test_benchmarks_use_only_the_public_api():
    scripts = sorted(BENCHMARKS.glob("*.py"))
    assert scripts, f"no benchmarks in {BENCHMARKS}"
    problems = [p for script in scripts for p in benchmark_problems(script)]
    assert not problems, "\n" + "\n".join(problems)


def test_the_benchmark_check_catches_private_imports(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text(
        "import sys\n"
        "import aestheticnet.nas.bilevel\n"
        "from aestheticnet.train.trainer import train\n"
        "from aestheticnet.train import _Run\n"
        "from aestheticnet.io import atomic_write_json\n"
        "from aestheticnet.nas import SearchConfig\n"
        "sys.path.insert(0, 'src')\n"
        "env = {'PYTHONPATH': 'src'}\n"
        "importlib.import_module('aestheticnet.bench.harness')\n"
    )
    lines = sorted(int(p.split(":")[1]) for p in benchmark_problems(script))
    assert lines == [2, 3, 4, 7, 8, 9]


def test_benchmark_function_sizes():
    too_long = []
    for path in sorted(BENCHMARKS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_BENCHMARK_FUNCTION_LINES:
                    too_long.append(f"benchmarks/{path.name}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, f"\nfunctions over {MAX_BENCHMARK_FUNCTION_LINES} lines:\n" + "\n".join(too_long)


def test_every_subpackage_declares_what_exists():
    wrong = []
    for name in SUBPACKAGES:
        module = importlib.import_module(name)
        declared = getattr(module, "__all__", None)
        if not declared:
            wrong.append(f"{name}: no __all__")
            continue
        wrong += [f"{name}.__all__ names {n} twice" for n in sorted(set(declared)) if declared.count(n) > 1]
        wrong += [f"{name}.__all__ names {n}, which it does not have" for n in declared if not hasattr(module, n)]
    assert not wrong, "\n" + "\n".join(wrong)


def test_the_package_itself_exports_the_version_only():
    import aestheticnet

    assert aestheticnet.__all__ == ["__version__"] and not GRAPH[PACKAGE]


def call_problems(path: Path) -> list[str]:
    """Calls in ``path`` to a name imported from the package whose arguments its signature does not take: a
    benchmark that still calls an API the way it used to be."""
    import importlib
    import inspect

    tree = ast.parse(path.read_text())
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
    problems = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported):
            continue
        module, name = imported[node.func.id]
        target = getattr(importlib.import_module(module), name)
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            continue
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        keywords = [k.arg for k in node.keywords if k.arg is not None]
        try:
            signature.bind_partial(*range(len(positional)), **dict.fromkeys(keywords))
        except TypeError as exc:
            problems.append(f"{path.name}:{node.lineno} {node.func.id}(): {exc}")
    return problems


def test_benchmarks_call_the_api_as_it_is():
    found = [p for path in sorted(BENCHMARKS.glob("*.py")) for p in call_problems(path)]
    assert not found, "\n" + "\n".join(found)


def test_the_call_check_catches_an_old_keyword(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("from aestheticnet.export import verify_artifact\nverify_artifact('a', 'b', samples=3)\n")
    assert call_problems(script) == ["old.py:2 verify_artifact(): got an unexpected keyword argument 'samples'"]
