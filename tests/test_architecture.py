"""The import graph: no cycles, imports run one way, light modules stay light.

Layers (docs/architecture.md), lowest first; a module may import its own layer or lower.
Every folder is one layer; the package root holds the common modules and the entry points.

0. common: ``paths``, ``files`` (the root)
1. ``languages/``: language specs and the judge rubrics' records
2. ``benchmarks/``: the benchmarks' data, subject tables, fidelity, scores
3. ``judge/``
4. lm-eval hooks (``cmmlu/``, ``mmlu/``, ``mtbench/``, ``turkishmmlu/``), the shared-prefix model
   backend (``backend/``) and the generators (``generate/``)
5. ``report/``, and the trainer (``langadapt_train/``)
6. ``study/``
7. CLI: ``cli``, ``__main__`` (the root)
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("langadapt_tasks", "langadapt_train")
HEAVY = ("lm_eval", "transformers", "openai", "torch", "datasets", "peft", "trl")

# Each folder's layer; a folder below a listed one shares its layer.
FOLDERS: dict[str, int] = {
    "langadapt_tasks/languages": 1,
    "langadapt_tasks/benchmarks": 2,
    "langadapt_tasks/judge": 3,
    "langadapt_tasks/cmmlu": 4,
    "langadapt_tasks/mtbench": 4,
    "langadapt_tasks/turkishmmlu": 4,
    "langadapt_tasks/mmlu": 4,
    "langadapt_tasks/backend": 4,
    "langadapt_tasks/generate": 4,
    "langadapt_tasks/heldout": 4,
    "langadapt_tasks/report": 5,
    "langadapt_train": 5,
    "langadapt_tasks/study": 6,
}
# The package root's own modules: the common ones below everything, the entry points above.
ROOT = "langadapt_tasks"
ROOT_MODULES: dict[str, int] = {
    "langadapt_tasks": 0,
    "langadapt_tasks.paths": 0,
    "langadapt_tasks.files": 0,
    "langadapt_tasks.cli": 7,
    "langadapt_tasks.__main__": 7,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for pkg in PACKAGES
        for p in sorted((REPO / pkg).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def _runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node, less the bodies of ``if TYPE_CHECKING:`` (never run)."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            todo += node.orelse
            continue
        todo += list(ast.iter_child_nodes(node))
    return out


def imports(path: Path, name: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import run by the file.

    ``from pkg import sub`` counts as an import of ``pkg.sub`` when ``sub`` is a module.
    """
    known = modules()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in known else base, node.lineno, id(node) in top))
    return sorted(out, key=lambda x: x[1])


def folder(name: str) -> str:
    """The folder a module is in (a package's ``__init__`` is in its own folder)."""
    path = modules()[name] if name in modules() else REPO / (name.replace(".", "/") + ".py")
    return path.parent.relative_to(REPO).as_posix()


def unit(name: str) -> str:
    """The module's entry in ``FOLDERS`` (its folder or the one above), or itself at the root."""
    if name in ROOT_MODULES:
        return name
    where = folder(name)
    return max((f for f in FOLDERS if where == f or where.startswith(f + "/")), key=len)


def layer(name: str) -> int:
    return ROOT_MODULES[name] if name in ROOT_MODULES else FOLDERS[unit(name)]


def internal_graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {m for m, _, _ in imports(path, name) if m in known and m != name}
        for name, path in known.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle_and_a_package_level_import() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert layer("langadapt_tasks.judge.rubrics") == 3 and layer("langadapt_tasks.judge") == 3
    assert (
        layer("langadapt_tasks.cmmlu.hooks") == 4 and layer("langadapt_tasks.benchmarks.cmmlu") == 2
    )
    assert layer("langadapt_train.data.mixes") == 5 and layer("langadapt_tasks.cli") == 7
    one_way = {"langadapt_tasks.judge.x": {"langadapt_tasks.languages.y"}}
    assert folder_cycles(one_way) == []
    back = {**one_way, "langadapt_tasks.languages.z": {"langadapt_tasks.judge.w"}}
    assert folder_cycles(back) == [["langadapt_tasks/judge", "langadapt_tasks/languages"]]


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Folder (``unit``) -> the folders its modules import."""
    out: dict[str, set[str]] = {}
    for name, deps in graph.items():
        out.setdefault(unit(name), set()).update(unit(d) for d in deps if unit(d) != unit(name))
    return out


def folder_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return cycles(folder_graph(graph))


def test_every_folder_has_one_layer_and_every_root_module_is_placed() -> None:
    folders = {p.parent.relative_to(REPO).as_posix() for p in modules().values()}
    unplaced = sorted(
        f for f in folders - {ROOT} if not any(f == k or f.startswith(k + "/") for k in FOLDERS)
    )
    assert unplaced == [], "give each new folder its layer in FOLDERS"
    assert sorted(set(FOLDERS) - folders) == []  # no entry for a folder that is gone
    root = sorted(n for n, p in modules().items() if p.parent == REPO / ROOT)
    assert root == sorted(ROOT_MODULES), "place each module of the package root in ROOT_MODULES"


def test_no_import_cycles_between_modules_or_folders() -> None:
    graph = internal_graph()
    assert cycles(graph) == []
    assert folder_cycles(graph) == []


def test_imports_run_one_way_through_the_layers() -> None:
    wrong = [
        f"{name} (layer {layer(name)}) imports {dep} (layer {layer(dep)})"
        for name, deps in internal_graph().items()
        for dep in deps
        if layer(dep) > layer(name)
    ]
    assert wrong == []


def test_no_internal_import_hides_inside_a_function() -> None:
    """Only the CLI imports its commands lazily (so ``langadapt path`` stays fast) and the
    training CLI its trainer; no other module defers an import of the project's own code."""
    allowed = {"langadapt_tasks.cli", "langadapt_train.cli"}
    nested = [
        f"{name}:{line} imports {dep}"
        for name, path in modules().items()
        if name not in allowed
        for dep, line, at_top in imports(path, name)
        if not at_top and dep.split(".")[0] in PACKAGES
    ]
    assert nested == []


@pytest.mark.parametrize(
    "prefix", ["langadapt_tasks.judge", "langadapt_tasks.generate", "langadapt_tasks.cli"]
)
def test_judge_generators_and_cli_never_import_lm_eval_transformers_or_openai(
    prefix: str,
) -> None:
    """Static: any import statement that runs, at any depth. The one exception is the
    judge's HTTP client module, whose job is to drive the openai client."""
    found = [
        f"{name}:{line} imports {dep}"
        for name, path in modules().items()
        if name == prefix or name.startswith(prefix + ".")
        for dep, line, _ in imports(path, name)
        if dep.split(".")[0] in ("lm_eval", "transformers", "openai")
        and not (name == "langadapt_tasks.judge.client" and dep.split(".")[0] == "openai")
    ]
    assert found == []


def loaded_after_import(statement: str) -> list[str]:
    """The heavy libraries a fresh interpreter has loaded after ``statement``."""
    code = (
        f"import sys, json\n{statement}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        # The judge is importable without lm_eval and transformers; only its HTTP side
        # (engine, client, rejudge) loads openai.
        ("import langadapt_tasks.judge.rubrics, langadapt_tasks.judge.settings", []),
        ("import langadapt_tasks.judge.verdicts, langadapt_tasks.judge.cache", []),
        ("import langadapt_tasks.judge.rejudge", ["openai"]),
        ("import langadapt_tasks.generate", []),
        ("import langadapt_tasks.report", []),
        ("import langadapt_tasks.cli", []),
        ("from langadapt_tasks.cli import main; main(['path'])", []),
        ("import langadapt_train.outputs, langadapt_train.presets", []),
        # Imported at every interpreter start by the .pth file that registers langadapt-hf.
        ("import langadapt_tasks.backend.autoregister", []),
    ],
)
def test_light_modules_load_no_heavy_library(statement: str, allowed: list[str]) -> None:
    assert loaded_after_import(statement) == allowed


def test_cli_help_loads_no_heavy_library() -> None:
    code = (
        "import sys\nfrom langadapt_tasks.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & " + repr(set(HEAVY)) + "))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_start_up_hook_imports_nothing_but_sys(tmp_path: Path) -> None:
    """The .pth file runs the hook at every interpreter start in the environment: its only
    import is ``sys`` (AST), and processing the .pth loads no module but the hook itself (issue
    20 item 12: importing ``typing`` cost every Python start about 12 ms)."""
    hook = REPO / "langadapt_tasks" / "backend" / "autoregister.py"
    tree = ast.parse(hook.read_text(encoding="utf-8"))
    top = [a.name for node in tree.body if isinstance(node, ast.Import) for a in node.names]
    assert top == ["sys"] and not [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    deferred = {  # inside functions: lm-eval's models when registering, warnings on failure
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } - {"sys"}
    assert deferred == {"lm_eval.models", "warnings"}
    pth = hook.with_name("langadapt_lm_eval.pth")
    (tmp_path / pth.name).write_bytes(pth.read_bytes())
    (tmp_path / "langadapt_lm_eval_hook.py").write_bytes(hook.read_bytes())  # as setup.py
    code = (
        "import site, sys\nbefore = set(sys.modules)\n"
        f"site.addsitedir({str(tmp_path)!r})\nprint(sorted(set(sys.modules) - before))"
    )
    proc = subprocess.run(  # -S: no other .pth file of this environment runs first
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['langadapt_lm_eval_hook']"
