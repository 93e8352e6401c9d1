"""The layering, checked on the source: no module imports from a layer above its own.

Layers, lowest first (see README, "Architecture"):
  model      errors, defaults, result, files, dsl, uploads, workflow, models   (no network libraries)
  inputs     fetch, sources, local_comfyui
  executors  executors.*                                              (the only code that talks to servers)
  library    kit
  batch      batch.*, report.*   (executors only through executors.base and executors.factory; never kit)
  cli        cli.*, __init__, __main__

Inside the batch layer, three rooms, lowest first: ``batch.spec`` (what to run), ``batch.store`` (what is
kept), ``batch.run`` (how it runs); reports (``report.*``) read results only through the store, never the
run. No two modules import each other, even through a chain, even inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "comfykit_batch"
RANK = {"model": 0, "inputs": 1, "executors": 2, "library": 3, "batch": 3, "cli": 5}
MODEL = {"errors", "defaults", "result", "files", "dsl", "uploads", "workflow", "models"}
INPUTS = {"fetch", "sources", "local_comfyui"}
NETWORK_LIBS = {"requests", "websocket", "urllib3", "socket", "http"}
BATCH_MAY_USE = {"executors", "executors.base", "executors.factory"}


def layer(module: str) -> str:
    top = module.split(".")[0]
    if top in MODEL:
        return "model"
    if top in INPUTS:
        return "inputs"
    if top == "executors":
        return "executors"
    if top == "kit":
        return "library"
    if top in ("batch", "report"):
        return "batch"
    return "cli"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
        out[".".join(parts)] = path
    return out


def imports(module: str, path: Path) -> set[str]:
    """Package-relative names this module imports (``..x.y`` from ``batch.z`` -> ``x.y``), and top-level foreign ones."""
    found: set[str] = set()
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:
                    found.update(".".join(base + [a.name]) for a in node.names)
                else:
                    found.add(name)
            elif node.module and node.module.startswith("comfykit_batch"):
                found.add(node.module.removeprefix("comfykit_batch").lstrip("."))
            elif node.module:
                found.add("!" + node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("comfykit_batch"):
                    found.add(a.name.removeprefix("comfykit_batch").lstrip("."))
                else:
                    found.add("!" + a.name.split(".")[0])
    return {f for f in found if f}


def test_no_module_imports_from_a_layer_above_its_own():
    wrong = []
    for module, path in modules().items():
        for imported in imports(module, path):
            if imported.startswith("!") or imported in ("__init__", ""):
                continue
            if RANK[layer(imported)] > RANK[layer(module)] or (layer(module) == "library" and layer(imported) == "batch"):
                wrong.append(f"{module} ({layer(module)}) imports {imported} ({layer(imported)})")
    assert not wrong, "upward imports:\n" + "\n".join(sorted(wrong))


def test_batch_uses_executors_only_through_the_interface_and_the_factory():
    wrong = [
        f"{module} imports {imported}"
        for module, path in modules().items() if layer(module) == "batch"
        for imported in imports(module, path)
        if (imported.startswith("executors") and imported not in BATCH_MAY_USE) or imported == "kit"
    ]
    assert not wrong, "\n".join(wrong)


def test_the_workflow_model_knows_nothing_of_the_network():
    wrong = [
        f"{module} imports {imported[1:]}"
        for module, path in modules().items() if layer(module) == "model"
        for imported in imports(module, path) if imported[1:] in NETWORK_LIBS
    ]
    assert not wrong, "\n".join(wrong)


ROOMS = {"batch.spec": 0, "batch.store": 1, "batch.run": 2, "report": 2}


def room(module: str) -> str | None:
    return next((r for r in ROOMS if module == r or module.startswith(r + ".")), None)


def test_the_batch_rooms_import_only_downwards():
    wrong = [
        f"{module} ({room(module)}) imports {imported} ({room(imported)})"
        for module, path in modules().items() if room(module) is not None
        for imported in imports(module, path)
        if room(imported) is not None and (ROOMS[room(imported)] > ROOMS[room(module)]  # type: ignore[index]
                                           or (room(module) == "report" and room(imported) == "batch.run"))
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles_not_even_inside_functions():
    found = modules()
    graph = {m: {i for i in imports(m, p) if i in found and i != m} for m, p in found.items()}
    graph = {m: {i for i in deps if not found[i].name == "__init__.py"} for m, deps in graph.items()}
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_the_checker_sees_the_package():
    found = modules()
    assert {"workflow", "executors.base", "batch.run.runner", "cli.run", "kit"} <= set(found)
    assert "executors.base" in imports("batch.run.runner", found["batch.run.runner"]) or any(
        i.startswith("executors") for m in found if m.startswith("batch.") for i in imports(m, found[m])
    )
