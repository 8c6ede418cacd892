"""Import arrows run down, and no module imports itself through others.

Layers, top to bottom (a module may import its own package and anything below its layer,
never a sibling package of its layer nor anything above):

    ops                              (cli -> node -> web -> the rest of ops)
    actors | training
    events                           (the aggregates fold dialogue events with dialogue's own apply)
    dialogue
    models | snapshots | client | actions
    action_protocol                  (the action wire contract, built on protocol's codecs)
    protocol | turn_record          (the wire's rules; a recorded turn and its reply)
    errors

Every import counts: at module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [
    {"ops"},
    {"actors", "training"},
    {"events"},
    {"dialogue"},
    {"models", "snapshots", "client", "actions"},
    {"action_protocol"},
    {"protocol", "turn_record"},
    {"errors"},
]
OPS_LAYERS = [{"cli"}, {"node"}, {"web"}]
"""Inside ops: the CLI may use the node, the node the web side, all of them the rest."""
ENTRY = {"botyard", "botyard.__main__"}
"""The package's ``__init__`` (re-exports the client) and ``python -m botyard``: outside the layers."""


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "bench", "examples", "docs") or rel.parts[0].startswith("."):
            continue
        parts = ["botyard", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "botyard"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "botyard":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer_of(module: str) -> tuple[int, int, str]:
    """(layer, layer inside ops, package) of a module."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    i = next((i for i, group in enumerate(LAYERS) if top in group), None)
    if i is None:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS")
    inner = len(OPS_LAYERS)
    if top == "ops" and len(parts) > 2:
        inner = next((j for j, group in enumerate(OPS_LAYERS) if parts[2] in group), inner)
    return i, inner, top


def test_every_import_runs_down():
    wrong = []
    for importer, imported in graph().items():
        if importer in ENTRY:
            continue
        a = layer_of(importer)
        for target in imported:
            b = layer_of(target)
            if a[2] == b[2]:
                if a[2] == "ops" and b[1] < a[1]:
                    wrong.append(f"{importer} -> {target} (up inside ops)")
                continue
            if b[0] <= a[0]:
                wrong.append(f"{importer} -> {target} ({'up' if b[0] < a[0] else 'sideways'})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    edges = graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The AST walk finds function-level and relative imports (a checker that finds nothing proves nothing)."""
    known = {"botyard.models.x": tmp_path / "x.py", "botyard.ops.admin": tmp_path / "a.py", "botyard.models.y": tmp_path / "y.py"}
    (tmp_path / "x.py").write_text("def f():\n    from botyard.ops import admin\n    from . import y\n")
    found = imports("botyard.models.x", known["botyard.models.x"], known)
    assert found == {"botyard.ops.admin", "botyard.models.y"}
    assert layer_of("botyard.ops.admin")[0] < layer_of("botyard.models.x")[0]
