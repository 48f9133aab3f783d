"""The package layout of docs/architecture.md holds: dependencies run one way between the
packages (hw <- host <- sim <- sense, hw <- constraints <- sense), no import cycle between modules
(imports inside functions included), and no function of hw/ or host/ over 150 lines."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hw", "host", "sim", "constraints", "sense")
#: What each package may import from the project (besides itself).
ALLOWED = {
    "hw": set(),
    "host": {"hw"},
    "constraints": {"hw"},
    "sim": {"hw", "host"},
    "sense": {"hw", "host", "sim", "constraints"},
}


def _modules():
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            mods[name] = path
    return mods


def _imports(name, path, mods):
    """(module imported, line, inside a function) for every project import of a module."""
    tree = ast.parse(path.read_text())
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(n) for f in funcs for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            if t in mods and t != name:
                yield t, node.lineno, id(node) in inside


def test_packages_depend_one_way():
    mods = _modules()
    wrong = []
    for name, path in mods.items():
        top = name.split(".")[0]
        for dep, line, _ in _imports(name, path, mods):
            if dep.split(".")[0] not in ALLOWED[top] | {top}:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {dep}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    mods = _modules()
    graph = {name: {d for d, _, _ in _imports(name, path, mods)} for name, path in mods.items()}
    state, cycles = {}, []

    def visit(v, stack):
        state[v] = "open"
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == "open":
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w, stack)
        stack.pop()
        state[v] = "done"

    for v in sorted(graph):
        if v not in state:
            visit(v, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_functions_are_short():
    long = []
    for pkg in ("hw", "host"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > 150:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {n}")
    assert not long, "\n".join(long)
