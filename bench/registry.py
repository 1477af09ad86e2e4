"""Model registry: ``@register_model(name, tasks=..., config=...)``.

`bench` never imports `models/` or `baselines/` at import time; the first lookup imports
every module in those packages (so a new model is one new file), and the modules named in
$BENCH_PLUGINS (your own models, outside this repository), then answers.

A model declares what it needs from a dataset beyond sequences, so that `bench run` can leave a
job out before starting it (with the fix) instead of failing in the model's constructor:
``REQUIRES = ("attributes",)`` (any of: attributes, features, reviews, images), and
``REQUIRES_IF = {"features": "image_tokens"}`` for a need that holds only when that config
field is set (VIP5 with image tokens; P5 or VIP5 with ``image_tokens=0`` needs no features).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass

from bench.data.dataset import TASKS
from bench.errors import UnknownNameError, UsageError

MODEL_PACKAGES = ("baselines", "models")
PLUGINS_ENV = "BENCH_PLUGINS"  # comma-separated modules with your own @register_model classes


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cls: type
    tasks: frozenset[str]
    config: type  # a dataclass with documented defaults

    @property
    def summary(self) -> str:
        doc = (self.cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""


_REGISTRY: dict[str, ModelSpec] = {}
_loaded = False


def register_model(name: str, *, tasks, config):
    tasks = frozenset(tasks)
    unknown = tasks - set(TASKS)
    if unknown:
        raise ValueError(f"model {name!r}: unknown tasks {sorted(unknown)}; known: {TASKS}")

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model name {name!r} registered twice ({_REGISTRY[name].cls} and {cls})")
        _REGISTRY[name] = ModelSpec(name, cls, tasks, config)
        cls.registered_name = name
        return cls

    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for pkg_name in MODEL_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
    for mod_name in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(mod_name)
        except ImportError as e:
            raise UsageError(f"{PLUGINS_ENV}: cannot import {mod_name!r}: {e}") from None
    _loaded = True


DATA_NEEDS = ("attributes", "features", "reviews", "images")


def data_needs(spec: ModelSpec, cfg) -> list[str]:
    """What the model of `spec`, with config `cfg`, needs from the dataset (its REQUIRES and REQUIRES_IF)."""
    needs = list(getattr(spec.cls, "REQUIRES", ()))
    needs += [need for need, key in getattr(spec.cls, "REQUIRES_IF", {}).items() if getattr(cfg, key, None)]
    unknown = set(needs) - set(DATA_NEEDS)
    if unknown:
        raise ValueError(f"model {spec.name!r}: unknown data needs {sorted(unknown)}; known: {DATA_NEEDS}")
    return list(dict.fromkeys(needs))


def all_models() -> dict[str, ModelSpec]:
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get_model(name: str) -> ModelSpec:
    models = all_models()
    if name not in models:
        raise UnknownNameError("model", name, models)
    return models[name]


def models_for_task(task: str) -> list[str]:
    check_task(task)
    return [n for n, s in all_models().items() if task in s.tasks]


def check_task(task: str) -> None:
    if task not in TASKS:
        raise UnknownNameError("task", task, TASKS)


def check_model_task(name: str, task: str) -> ModelSpec:
    spec = get_model(name)
    check_task(task)
    if task not in spec.tasks:
        raise UsageError(
            f"model {name!r} does not support task {task!r} (it supports: {', '.join(sorted(spec.tasks))}); "
            f"models for {task!r}: {', '.join(models_for_task(task))}"
        )
    return spec
