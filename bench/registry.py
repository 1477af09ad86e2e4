"""Model registry: ``@register_model(name, tasks=..., config=...)``.

`bench` never imports `models/` or `baselines/` at import time; the first lookup imports
every module in those packages (so a new model is one new file), and the modules named in
$BENCH_PLUGINS (your own models, outside this repository), then answers.

A model declares what it needs from a dataset beyond sequences, so that `bench run` can leave a
job out before starting it (with the fix) instead of failing in the model's constructor:
``REQUIRES = ("attributes",)`` (any of: attributes, features, reviews, images), and
``REQUIRES_IF = {"features": "image_tokens"}`` for a need that holds only when that config
field is set (VIP5 with image tokens; P5 or VIP5 with ``image_tokens=0`` needs no features).
These and the other optional class attributes are declared, with their defaults, in
bench/model.py (OPTIONAL_ATTRIBUTES); a ModelSpec property reads each one.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os
import pkgutil
from dataclasses import dataclass

from bench.errors import UnknownNameError, UsageError
from bench.model import OPTIONAL_ATTRIBUTES, model_attribute
from bench.tasks import TASKS, Task

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

    # the class's optional attributes (bench/model.py OPTIONAL_ATTRIBUTES), defaults filled in;
    # copies, so that no caller can change the class's own values
    @property
    def requires(self) -> tuple[str, ...]:
        return tuple(model_attribute(self.cls, "REQUIRES"))

    @property
    def requires_if(self) -> dict[str, str]:
        return dict(model_attribute(self.cls, "REQUIRES_IF"))

    def dataset_defaults(self, dataset: str) -> dict:
        return dict(model_attribute(self.cls, "DATASET_DEFAULTS").get(dataset, {}))

    @property
    def tune_grid(self) -> dict | None:
        grid = model_attribute(self.cls, "TUNE_GRID")
        return None if grid is None else dict(grid)

    @property
    def run_cost(self) -> float:
        return model_attribute(self.cls, "RUN_COST")

    @property
    def shared_trainings(self) -> tuple[str, ...]:
        return tuple(model_attribute(self.cls, "SHARED_TRAININGS"))

    @property
    def distributed(self) -> bool:
        return bool(model_attribute(self.cls, "DISTRIBUTED"))

    @property
    def contract_overrides(self) -> dict:
        return dict(model_attribute(self.cls, "CONTRACT_OVERRIDES"))


_REGISTRY: dict[str, ModelSpec] = {}
_loaded = False


def register_model(name: str, *, tasks, config):
    tasks = frozenset(tasks)
    unknown = tasks - set(TASKS)
    if unknown:
        raise ValueError(f"model {name!r}: unknown tasks {sorted(unknown)}; known: {list(TASKS)}")

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model name {name!r} registered twice ({_REGISTRY[name].cls} and {cls})")
        check_hooks(name, cls, config)
        _REGISTRY[name] = ModelSpec(name, cls, tasks, config)
        cls.registered_name = name
        return cls

    return deco


def check_hooks(name: str, cls: type, config: type) -> None:
    """ValueError at registration for what would otherwise be ignored when the model runs: an
    upper-case class attribute one typo away from an optional hook, and DATASET_DEFAULTS keys
    that are not fields of the config dataclass."""
    for attr in dir(cls):
        if attr.isupper() and attr not in OPTIONAL_ATTRIBUTES:
            close = difflib.get_close_matches(attr, OPTIONAL_ATTRIBUTES, n=1, cutoff=0.8)
            if close:
                raise ValueError(f"model {name!r}: class attribute {attr} is not a model hook; did you mean "
                                 f"{close[0]}? (declared hooks: bench/model.py OPTIONAL_ATTRIBUTES)")
    per_dataset = model_attribute(cls, "DATASET_DEFAULTS")
    if not per_dataset:
        return
    fields = sorted(f.name for f in dataclasses.fields(config))
    for dataset, values in per_dataset.items():
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"model {name!r}: DATASET_DEFAULTS[{dataset!r}] has unknown config key(s) "
                             f"{', '.join(unknown)} (not fields of {config.__name__}); "
                             f"known: {', '.join(fields)}")


def _load_plugins() -> None:
    """Import the modules named in $BENCH_PLUGINS (once: Python keeps imported modules)."""
    for mod_name in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(mod_name)
        except ImportError as e:
            raise UsageError(f"{PLUGINS_ENV}: cannot import {mod_name!r}: {e}") from None


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for pkg_name in MODEL_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
    _load_plugins()
    _loaded = True


DATA_NEEDS = ("attributes", "features", "reviews", "images")


def data_needs(spec: ModelSpec, cfg) -> list[str]:
    """What the model of `spec`, with config `cfg`, needs from the dataset (its REQUIRES and REQUIRES_IF)."""
    needs = list(spec.requires)
    needs += [need for need, key in spec.requires_if.items() if getattr(cfg, key, None)]
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


def all_tasks() -> dict[str, Task]:
    """The registered tasks, those of $BENCH_PLUGINS included (the models are not loaded for this:
    reporting asks for tasks and must not import torch)."""
    _load_plugins()
    return dict(TASKS)


def check_task(task: str) -> Task:
    tasks = all_tasks()
    if task not in tasks:
        raise UnknownNameError("task", task, list(tasks))
    return tasks[task]


def check_model_task(name: str, task: str) -> ModelSpec:
    spec = get_model(name)
    check_task(task)
    if task not in spec.tasks:
        raise UsageError(
            f"model {name!r} does not support task {task!r} (it supports: {', '.join(sorted(spec.tasks))}); "
            f"models for {task!r}: {', '.join(models_for_task(task))}"
        )
    return spec
