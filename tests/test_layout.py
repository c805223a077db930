"""The layout holds: layers import only downwards, no import cycle between modules, no private
name imported across modules, models are never looked up by module. Modules are split by concept,
not by size: there is no line cap."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "benchmarks", "reports")
NAMESPACE = "svi_bench"  # the folders install as svi_bench.models, svi_bench.benchmarks, ...

#: Layers, lowest first: a module may import its own layer and the layers below it.
LAYERS: tuple[tuple[str, float], ...] = (
    ("models", 0),
    ("benchmarks.artifacts", 1),
    ("benchmarks.user_code", 1),
    ("benchmarks.interrupts", 1),  # Ctrl-C: the grid stops its workers, the commands say so
    ("benchmarks.progress_line", 1),  # a long build's progress line (references, commands)
    ("benchmarks.grid_progress", 1),  # the grid's phases and time left (run)
    ("benchmarks.inference", 1),
    ("benchmarks.methods", 1.5),  # a method builds its programs from inference's blocks
    ("benchmarks.scoring", 2),
    ("benchmarks.grid", 3),
    ("benchmarks.studies", 3.5),  # above the grid it runs, below the commands that run it
    ("benchmarks.study_commands", 4),
    ("benchmarks.cli", 4),
    ("benchmarks.command_line", 4),
    ("benchmarks.model_commands", 4),
    ("benchmarks.method_commands", 4),
    ("benchmarks.api", 4),
    ("benchmarks.__main__", 6),
    ("benchmarks.console", 6),
    ("benchmarks.baselines", 4),
    ("benchmarks.regress", 4),
    ("benchmarks.docs_pages", 4),  # the docs' reference tables, from every declaration
    ("benchmarks.measure", 4),  # the suite's own timings as records for the docs
    ("reports", 5),
)


def _layer(module: str) -> int | None:
    module = module.removeprefix(NAMESPACE + ".")
    best = None
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return None if best is None else best[1]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            out.append((".".join(rel.parts).removesuffix(".__init__"), path))
    return out


def _imports(path: Path, module: str) -> list[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_layer_table_covers_every_module():
    unplaced = [m for m, _ in _modules() if _layer(m) is None and m != "benchmarks"]
    assert not unplaced, f"modules in no layer: {unplaced}"


@pytest.mark.parametrize("module,path", _modules(), ids=lambda x: str(x))
def test_no_import_from_a_higher_layer(module, path):
    own = _layer(module)
    if own is None:
        return
    upward = [name for name in _imports(path, module)
              if (_layer(name) or 0) > own
              and name.removeprefix(NAMESPACE + ".").split(".")[0] in PACKAGES]
    assert not upward, f"{module} (layer {own}) imports from a higher layer: {upward}"


def _graph() -> dict[str, set[str]]:
    """Module -> the suite's modules it imports (at any depth: function-level imports count, a
    cycle through them is still two modules that need each other)."""
    modules = {m for m, _ in _modules()}

    def local(name: str) -> str:
        return name.removeprefix(NAMESPACE + ".")

    graph = {}
    for module, path in _modules():
        targets = set()
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", "") == "TYPE_CHECKING"
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:  # annotations only: no import at run time
                continue
            if isinstance(node, ast.Import):
                targets |= {local(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{local(node.module)}.{a.name}" for a in node.names}
                targets |= subs & modules
                if subs - modules:  # a name of the module itself, not only its submodules
                    targets.add(local(node.module))
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path (first module repeated at its end), or [] if there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_import_cycle():
    cycle = find_cycle(_graph())
    assert not cycle, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_finder_bites():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def _private_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.removeprefix(NAMESPACE + ".").split(".")[0] in PACKAGES:
            names += [f"{node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return names


@pytest.mark.parametrize("module,path", _modules(), ids=lambda x: str(x))
def test_no_private_name_is_imported_across_modules(module, path):
    private = _private_imports(path)
    assert not private, f"{module} imports private names of other modules: {private}"


def test_no_model_is_looked_up_by_module():
    offenders = [str(path.relative_to(ROOT)) for _, path in _modules()
                 if "import_module(spec.model.__module__)" in path.read_text()
                 or "import_module(" in path.read_text() and "__module__" in path.read_text()]
    assert not offenders, f"a model's functions must be ModelSpec fields, not module lookups: {offenders}"


def test_layers_detect_an_upward_import(tmp_path):
    """The checker itself bites: an inference module importing the grid is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from svi_bench.benchmarks.grid import runner\n")
    names = _imports(bad, "benchmarks.inference.bad")
    assert any((_layer(n) or 0) > _layer("benchmarks.inference.bad") for n in names)
