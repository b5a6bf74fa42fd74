"""Import contracts, enforced: the layering docs/architecture.md draws, read from the source (AST).

Every import counts, including the ones inside functions (they hide cycles from Python but not from
a reader). A module's imports are followed transitively through preflight's own modules, so a layer
that reaches a UI or SSH library through a helper breaks its contract as surely as a direct import.
Importing `a.b.c` does not count as importing `a.b` (a package's __init__): only the names written.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("preflight", "checks")
UI_AND_SSH = ("textual", "rich", "paramiko", "fabric", "invoke")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "profiles" in path.parts:
                continue
            out[_module_name(path)] = path
    return out


def _resolve(name: str, mods: dict[str, Path]) -> str:
    """The longest prefix of `name` that is one of our modules (`preflight.x.y.Func` -> `preflight.x.y`)."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in mods:
            return cand
        parts.pop()
    return name


@cache
def _imports(module: str) -> frozenset[str]:
    """Everything `module` imports anywhere in its source: our modules resolved, others by top-level name."""
    mods = _modules()
    path = mods[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] in PACKAGES:
                target = _resolve(name, mods)
                if target in mods and target != module:
                    found.add(target)
            elif name:
                found.add(name.split(".")[0])
    return frozenset(found)


def _reach(module: str) -> dict[str, str]:
    """Every module/library `module` reaches, each with one import chain that reaches it (for the message)."""
    chain = {module: module}
    todo = [module]
    mods = _modules()
    while todo:
        cur = todo.pop()
        for dep in sorted(_imports(cur)):
            if dep not in chain:
                chain[dep] = chain[cur] + " -> " + dep
                if dep in mods:
                    todo.append(dep)
    return chain


def _under(prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in _modules() if any(m == p or m.startswith(p + ".") for p in prefixes))


def _violations(layers: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for mod in _under(layers):
        for dep, how in _reach(mod).items():
            if any(dep == f or dep.startswith(f + ".") for f in forbidden):
                bad.append(how)
                break
    return bad


CORE = ("preflight.engine", "preflight.registry", "checks", "preflight.parse", "preflight.plan", "preflight.facts",
        "preflight.results", "preflight.collect", "preflight.textsafe")


def test_the_core_never_reaches_the_ui_the_cli_or_ssh() -> None:
    forbidden = ("preflight.tui", "preflight.cli", "preflight.transport", *UI_AND_SSH)
    assert _violations(CORE, forbidden) == []


def test_the_judging_side_of_hang_never_reaches_the_ui_the_cli_or_ssh() -> None:
    """`preflight hang` reaches nodes through the session like `run` does; what judges the evidence does not."""
    judging = tuple(m for m in _under(("preflight.hang",)) if not m.endswith((".gather", ".live")))
    forbidden = ("preflight.tui", "preflight.cli", "preflight.transport", "preflight.session", *UI_AND_SSH)
    assert _violations(judging, forbidden) == []


def test_the_tui_never_reaches_the_cli_or_the_transport() -> None:
    assert _violations(("preflight.tui",), ("preflight.cli", "preflight.transport", "paramiko", "fabric")) == []


def test_no_layer_but_the_entry_point_imports_the_cli() -> None:
    users = [m for m in _modules() if not m.startswith("preflight.cli") and m != "preflight.__main__"
             and any(d.startswith("preflight.cli") for d in _imports(m))]
    assert users == []


def test_no_import_cycle_counting_imports_inside_functions() -> None:
    mods = _modules()
    graph = {m: sorted(d for d in _imports(m) if d in mods) for m in mods}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for m in sorted(graph):
        if m not in index:
            strong(m)
    assert cycles == []


def test_importing_the_tui_app_loads_no_ssh_library() -> None:
    code = ("import sys, preflight.tui.app\n"
            "print(','.join(m for m in ('paramiko', 'fabric', 'preflight.cli', 'preflight.transport') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_importing_the_engine_loads_no_ui_or_ssh_library() -> None:
    code = ("import sys, preflight.engine, checks, preflight.registry\n"
            "print(','.join(m for m in ('textual', 'rich', 'fabric', 'paramiko', 'preflight.report',"
            " 'preflight.transport') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_the_limits_a_reader_can_hold() -> None:
    """No module over 500 lines (the collector, shipped to nodes as one file, excepted), no function over 80."""
    long_modules, long_functions = [], []
    for mod, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > 500 and mod != "preflight.collect.collector":
            long_modules.append(f"{mod}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > 80:
                    long_functions.append(f"{mod}.{node.name}: {n} lines")
    assert long_modules == [] and long_functions == []
