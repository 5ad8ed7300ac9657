"""Step cache keys: rerun a step only when something it depends on has changed.

A step's key hashes its name, its own parameters, the keys of the steps it reads from (so a
change upstream invalidates everything downstream), the code it runs, and fingerprints of its
external inputs (the data for ingest, a local model folder for tokenize and train; a Hub id's
pinned commit arrives as a parameter). The code is the step's entry module `steps/<step>.py`
and every module of the `agnews` library it reaches through imports, transitively, with the
package `__init__` files Python runs on the way: editing the report's wording does not retrain
the model. Each module counts by its syntax tree without docstrings, so editing a comment, a
docstring or blank lines reruns nothing. MLflow's multistep example keys on the git commit
instead, which reruns everything after any edit and nothing after an upstream change; this
does neither.
"""
from __future__ import annotations

import ast
import hashlib
import json
import threading
from pathlib import Path

from agnews import PROJECT_DIR
from agnews.cli import config_params
from agnews.errors import UserError
from agnews.tracking.fingerprint import fingerprint

LIBRARY = "agnews"
STEPS = ("ingest", "tokenize", "train", "evaluate", "register", "report")
UPSTREAM = {"ingest": (), "tokenize": ("ingest",), "train": ("tokenize",),
            "evaluate": ("train", "ingest"), "register": ("evaluate",),
            "report": ("ingest", "tokenize", "train", "evaluate", "register")}
_DEFINITIONS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def module_file(name: str, root: Path) -> Path | None:
    """The file of dotted module `name` under `root` (a module or a package), if any."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(tree: ast.Module, root: Path, library: str = LIBRARY) -> set[str]:
    """Dotted names of the `library` modules a module imports, at any depth of it (imports
    inside functions count), with the packages above each: Python runs their `__init__`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == library:
                names.add(node.module)
                # `from agnews.model import batching` imports the module agnews.model.batching
                names.update(f"{node.module}.{a.name}" for a in node.names
                             if module_file(f"{node.module}.{a.name}", root))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == library)
    for name in list(names):
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return {n for n in names if module_file(n, root)}


# CPython 3.11 counts the AST constructor's recursion in state its threads share, so two
# threads parsing at once can fail with "AST constructor recursion depth mismatch"
# (python/cpython#106905); a sweep computes its trials' keys from several threads.
_PARSING = threading.Lock()


def parse(source: str) -> ast.Module:
    """`ast.parse`, one thread at a time."""
    with _PARSING:
        return ast.parse(source)


def source_files(step: str, root: Path = PROJECT_DIR) -> list[Path]:
    """The step's entry module and every library module it reaches through imports, sorted."""
    entry = root / "steps" / f"{step}.py"
    if not entry.is_file():
        raise UserError(f"no entry module {entry} for step '{step}'")
    seen, todo = {entry}, [entry]
    package = root / "steps" / "__init__.py"
    if package.is_file():
        seen.add(package)
    while todo:
        tree = parse(todo.pop().read_text(encoding="utf-8"))
        for name in imported_modules(tree, root):
            path = module_file(name, root)
            if path not in seen:
                seen.add(path)
                todo.append(path)
    return sorted(seen)


def code_syntax(source: str) -> str:
    """The module's syntax tree without docstrings or positions: what it does, not how it is
    laid out or commented."""
    tree = parse(source)
    for node in ast.walk(tree):
        if isinstance(node, _DEFINITIONS) and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def hash_code(paths: list[Path], root: Path = PROJECT_DIR) -> str:
    """sha256 over each module's path (relative to `root`) and syntax."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(code_syntax(path.read_text(encoding="utf-8")).encode())
    return digest.hexdigest()


def cache_key(step: str, params: dict[str, str], upstream_keys: dict[str, str],
              sources: str, inputs: dict[str, str]) -> str:
    payload = {"step": step, "params": dict(sorted(params.items())),
               "upstream": dict(sorted(upstream_keys.items())), "sources": sources,
               "inputs": dict(sorted(inputs.items()))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def forced_steps(force: str, steps: tuple[str, ...]) -> set[str]:
    """Steps whose cache is ignored: those named in `force` ("all" = every step) and every
    step after the first of them, since they read its new output."""
    names = {s.strip() for s in force.split(",") if s.strip()}
    if not names:
        return set()
    if "all" in names:
        return set(steps)
    unknown = names - set(steps)
    if unknown:
        raise UserError(f"force names unknown step(s) {', '.join(sorted(unknown))}: pass a "
                        f"comma-separated list of {', '.join(steps)}, or all")
    first = min(steps.index(n) for n in names)
    return set(steps[first:])


def step_keys(configs: dict) -> dict[str, str]:
    """Every step's cache key, upstream first (a key folds in its upstream steps' keys)."""
    inputs = {"ingest": {"data": fingerprint(configs["ingest"][0].data)},
              "tokenize": {"model": fingerprint(configs["tokenize"][0].model)},
              "train": {"model": fingerprint(configs["train"][0].model)}}
    keys: dict[str, str] = {}
    for step in STEPS:
        # checkpoint_dir is where train keeps its checkpoints, derived from this very key
        params = {k: v for k, v in config_params(*configs[step]).items()
                  if k != "checkpoint_dir"}
        keys[step] = cache_key(step, params, {u: keys[u] for u in UPSTREAM[step]},
                               hash_code(source_files(step)), inputs.get(step, {}))
    return keys
