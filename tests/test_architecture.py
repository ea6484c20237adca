"""The shape docs/design.md promises: imports point one way, no cycles, small modules and functions.

Read from the source (imports inside functions count), so a shortcut that works at run time still
fails here: a cycle or an upward import is a design change to make on purpose, in docs/design.md first.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "capacity"

LAYERS: dict[str, int] = {
    # the command line: parses flags, calls a use case, prints
    "__main__": 7,
    "cli": 6,
    # the application's use cases: search run, nightly, backfill
    "search": 5,
    # the pipeline's working parts; they never import each other, only what is below
    "load": 4,
    "observe": 4,
    "judge": 4,
    "size": 4,
    "report": 4,
    "sandbox": 4,
    "notebook": 4,
    "testing": 4,
    "cluster": 4,
    # pure analysis and the results store
    "analyze": 3,
    "store": 3,
    # the experiment model (the contract analysis, store and every part read) and its plans
    "plan": 2,
    # the shared contracts (run and stage models, measurement, breaches, errors, outcomes) everything may use
    "core": 1,
    "__init__": 1,
}
ROOT_MODULES = {"capacity", "capacity.__main__", "capacity.notebook", "capacity.testing"}
"""The package root holds only entry points: what users import or run. Everything else lives in the
layer that owns it."""
REPEATABLE_FILE_NAMES = {"__init__.py"}
"""A file name used in two packages makes "where is X?" take two guesses."""
SAME_LAYER_ALLOWED = {("notebook", "report"), ("notebook", "size")}
"""Same-layer imports that are part of the design (the notebook API draws the report's plots and sizes with
the one sizing rule set)."""
SHARED_MODULES = {"capacity.observe.query_language"}
"""Modules a peer of the same layer may import: the one parser of the Datadog query language lives with
``observe`` (which builds queries) and the sandbox's evaluator reads queries with it."""

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
MAX_PARAMETERS = 7
"""Outside the CLI (whose typer commands' parameters are their flags): more than this is a settings object
waiting to be named (``load.settings``, ``observe.datadog_settings``)."""


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path) -> set[str]:
    """Every capacity module ``name`` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [f"{base}.{a.name}" for a in node.names] or [base]
        for t in targets:
            if t.startswith("capacity"):
                resolved = _resolve(t)
                if resolved and resolved != name:
                    found.add(resolved)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_every_area_has_a_layer() -> None:
    assert {_area(m) for m in MODULES} - set(LAYERS) == set()


def test_the_package_root_holds_only_entry_points() -> None:
    root = {"capacity" if p.stem == "__init__" else f"capacity.{p.stem}" for p in PACKAGE.glob("*.py")}
    assert root == ROOT_MODULES


def test_no_file_name_repeats_across_packages() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in MODULES.values():
        seen[path.name].append(str(path.relative_to(PACKAGE.parent)))
    assert {n: ps for n, ps in seen.items() if len(ps) > 1 and n not in REPEATABLE_FILE_NAMES} == {}


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for mod, targets in GRAPH.items():
        a = _area(mod)
        for t in targets:
            b = _area(t)
            if a == b or (b == "__init__" and t == "capacity"):
                continue
            up = LAYERS[b] > LAYERS[a]
            sideways = (
                LAYERS[b] == LAYERS[a]
                and LAYERS[a] > 1
                and (a, b) not in SAME_LAYER_ALLOWED
                and t not in SHARED_MODULES
            )
            if up or sideways:
                wrong.append(f"{mod} -> {t}")
    assert wrong == []


def test_the_load_generator_is_patched_in_one_place() -> None:
    """gevent patching is an explicit call at the entry points that drive load, not an import side effect."""
    offenders = [
        str(p.relative_to(PACKAGE.parent))
        for p in MODULES.values()
        if "import locust  # noqa" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.parametrize("limit", [MAX_MODULE_LINES])
def test_modules_stay_small(limit: int) -> None:
    big = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in MODULES.values()
        if (n := len(p.read_text().splitlines())) > limit
    }
    assert big == {}


def test_functions_stay_short() -> None:
    long = {}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"] = n
    assert long == {}


def _parameter_count(args: ast.arguments) -> int:
    named = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg not in ("self", "cls")]
    return len(named) + (args.vararg is not None) + (args.kwarg is not None)


def test_functions_take_few_parameters() -> None:
    many = {}
    for path in MODULES.values():
        where = str(path.relative_to(PACKAGE.parent))
        if where.startswith("capacity/cli/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _parameter_count(node.args)
                if n > MAX_PARAMETERS:
                    many[f"{where}:{node.lineno} {node.name}"] = n
    assert many == {}


def test_the_parameter_count_is_what_a_reader_counts() -> None:
    """Positional and keyword parameters without self/cls; ``*args`` and ``**kwargs`` one each."""
    source = "class C:\n    def f(self, a, /, b, *args, c, **kw): ...\n    @classmethod\n    def g(cls, a): ..."
    tree = ast.parse(source)
    counts = [_parameter_count(n.args) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert counts == [5, 1]


def test_no_code_cites_a_document_the_repository_lacks() -> None:
    repo = PACKAGE.parent
    cited: dict[str, set[str]] = defaultdict(set)
    for path in [*MODULES.values(), *(repo / "docs").glob("*.md"), repo / "README.md"]:
        text = path.read_text(encoding="utf-8")
        if "DESIGN.md" in text:
            cited["DESIGN.md"].add(str(path.relative_to(repo)))
    assert dict(cited) == {}
    assert (repo / "docs" / "design.md").is_file()
