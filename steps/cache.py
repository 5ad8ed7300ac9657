"""Step cache keys: rerun a step only when something it depends on has changed.

A step's key hashes its name, its own parameters, the keys of the steps it reads from (so a
change upstream invalidates everything downstream), the source files it runs (its module and
every `steps` module it imports, transitively: editing the report code does not retrain the
model), and fingerprints of its external inputs (the data for ingest, a local model folder
for tokenize and train; a Hub id's pinned commit arrives as a parameter). MLflow's multistep
example keys on the git commit instead, which reruns everything after any edit and nothing
after an upstream change; this does neither.
"""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from steps.errors import UserError

STEPS_DIR = Path(__file__).resolve().parent
UPSTREAM = {"ingest": (), "tokenize": ("ingest",), "train": ("tokenize",),
            "evaluate": ("train", "ingest"), "register": ("evaluate",),
            "report": ("ingest", "tokenize", "train", "evaluate", "register")}


def imported_step_modules(path: Path) -> set[str]:
    """Names of the `steps.*` modules a file imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "steps":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("steps."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("steps."))
    return names


def source_files(step: str, steps_dir: Path = STEPS_DIR) -> list[Path]:
    """The step's module and every `steps` module it reaches through imports, sorted."""
    seen, todo = set(), [step]
    while todo:
        name = todo.pop()
        path = steps_dir / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        todo.extend(imported_step_modules(path))
    return sorted(steps_dir / f"{name}.py" for name in seen)


def hash_files(paths: list[Path], root: Path | None = None) -> str:
    """sha256 over the files' names (relative to `root`) and contents."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root) if root else path.name).encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fingerprint(location: str) -> str:
    """Content hash of a local file or folder; for anything else (a Hub id) the id itself.

    A Hub id's content is named by its commit, which `main` pins before computing keys and
    passes on as the step's `data_revision` / `model_revision` parameter, so the key follows
    it through the parameters.
    """
    path = Path(location).expanduser()
    if path.is_file():
        return "file:" + hash_files([path])
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
        return "dir:" + hash_files(files, root=path)
    return "id:" + location


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
