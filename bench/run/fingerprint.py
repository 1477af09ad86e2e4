"""What a run record was made from: its resolved config, the dataset's file checksums and the code.

`bench run` skips a job whose records carry the same `job_fingerprint` as the job would have now
(run-level resume); the worker writes it into every record. The code part hashes the source of
the model's modules and of everything they and the worker import from this project (found by
reading their import statements, not by importing anything), so editing a table or the CLI
does not invalidate records, while editing a model, the trainer or the evaluator does.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import sys
from functools import cache
from pathlib import Path

PROJECT_PACKAGES = ("bench", "models", "baselines")
WORKER_MODULE = "bench.run.worker"  # trains, evaluates and writes the record: its imports count for every model


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def data_version(manifest: dict) -> str:
    """The dataset's content: the checksums of its files (sequences, candidates, reviews, features)."""
    return _sha(manifest.get("files") or {})[:16]


@cache
def _module_file(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.has_location else None


def _imports(path: str, module: str, tops: frozenset[str]) -> set[str]:
    """Project modules that the source at `path` imports anywhere (module level or inside functions)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), path)
    except (OSError, SyntaxError, ValueError):
        return set()
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import submodule`
    return {m for m in found if m.split(".")[0] in tops}


@cache
def _closure(roots: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(module, file) for `roots` and every project module they import, transitively."""
    tops = frozenset(PROJECT_PACKAGES) | {r.split(".")[0] for r in roots}
    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None or not path.endswith(".py"):
            continue
        seen[name] = path
        todo.extend(_imports(path, name, tops) - seen.keys())
    return tuple(sorted(seen.items()))


def code_fingerprint(cls: type) -> str:
    """A hash of the source the model `cls` runs with (its class hierarchy's modules and their imports)."""
    roots = {c.__module__ for c in cls.__mro__ if c.__module__ not in ("builtins", "typing", "abc")}
    h = hashlib.sha256()
    for name, path in _closure(tuple(sorted(roots | {WORKER_MODULE}))):
        h.update(name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def job_fingerprint(*, model: str, cls: type, task: str, config: dict, manifest: dict, indexing: str,
                    tag: str | None, device: str) -> str:
    """One hash of everything a job's records depend on; equal hashes = the records would be made again alike.
    `device`: the resolved device; its kind (cpu, cuda) counts, not its index: a record's time, memory and
    (through kernels and mixed precision) its metrics belong to the kind of device that made it."""
    return _sha({"model": model, "task": task, "config": config, "data": data_version(manifest),
                 "code": code_fingerprint(cls), "indexing": indexing, "tag": tag or None,
                 "device": device.split(":")[0]})[:24]
