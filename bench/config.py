"""Model configs: one dataclass per model; ``--set key=value`` overrides type-checked against it."""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from bench.errors import UsageError


def parse_sets(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise UsageError(f"--set {p!r}: expected key=value")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _convert(key: str, raw: Any, typ) -> Any:
    origin = get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = get_args(typ)
        if type(None) in args and (raw is None or str(raw).lower() in ("none", "null", "")):
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(key, raw, a)
            except UsageError as e:
                errors.append(str(e))
        raise UsageError("; ".join(errors))
    if origin is Literal:
        choices = get_args(typ)
        for c in choices:
            if str(c) == str(raw):
                return c
        raise UsageError(f"--set {key}={raw}: must be one of {', '.join(map(str, choices))}")
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        s = str(raw).lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"--set {key}={raw}: expected a boolean (true/false)")
    if typ in (int, float):
        if isinstance(raw, bool):
            raise UsageError(f"--set {key}={raw}: expected {typ.__name__}")
        try:
            if typ is int and isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return typ(raw) if not isinstance(raw, str) else typ(float(raw)) if typ is int and "e" in raw else typ(raw)
        except (TypeError, ValueError):
            raise UsageError(f"--set {key}={raw}: expected {typ.__name__}") from None
    if typ is str:
        return str(raw)
    if origin in (tuple, list):
        (inner, *_) = get_args(typ) or (str,)
        parts = raw if isinstance(raw, list | tuple) else [p for p in str(raw).split(",") if p]
        return origin(_convert(key, p, inner) for p in parts)
    raise UsageError(f"--set {key}: unsupported config type {typ}")


# ranges every config shares by field name: a value outside them cannot train (a negative learning
# rate, zero epochs or batch size), so it is refused before any job starts
VALUE_RULES: list[tuple[str, str, typing.Callable[[float], bool]]] = [
    (r"(.+_)?lr(_.+)?|learning_rate", "> 0", lambda v: v > 0),
    (r"epochs", ">= 1", lambda v: v >= 1),
    (r".+_epochs", ">= 0", lambda v: v >= 0),
    (r"(.+_)?batch_size|patience|beams|heads|blocks|hidden|d|d_model|ffn|factors|visual_factors|.+_dim|vocab_size"
     r"|max_.+|val_queries|train_candidates|.+_per_user|reduction_factor|hint_words|layers|mlp_layers|L|T", ">= 1",
     lambda v: v >= 1),
    (r"dropout|mask_ratio|warmup", "in [0, 1)", lambda v: 0 <= v < 1),
    (r".+_weight|l2|lambda_.+|weight_decay|regularization|clip|threads|image_tokens", ">= 0", lambda v: v >= 0),
]


def check_value(config_cls: type, key: str, value: Any, raw: Any) -> None:
    """UsageError (one line: the option and the fix) for a value outside its field's range (VALUE_RULES)."""
    values = value if isinstance(value, list | tuple) else [value]
    for pattern, what, ok in VALUE_RULES:
        if re.fullmatch(pattern, key):
            for v in values:
                if isinstance(v, int | float) and not isinstance(v, bool) and not ok(v):
                    default = getattr(config_cls(), key, None)
                    example = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
                    raise UsageError(f"--set {key}={raw}: {key} must be {what}; "
                                     f"fix: e.g. --set {key}={example} ({config_cls.__name__}'s default)")
            return


def build_config(config_cls: type, overrides: dict[str, Any], *, strict: bool = True):
    """An instance of `config_cls` with `overrides` applied (type-checked).

    strict=True: unknown keys are errors naming the known keys.
    """
    hints = get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(overrides) - fields
    if unknown and strict:
        raise UsageError(
            f"unknown config key(s) {', '.join(sorted(unknown))} for {config_cls.__name__}; "
            f"known: {', '.join(sorted(fields))}"
        )
    values = {k: _convert(k, v, hints[k]) for k, v in overrides.items() if k in fields}
    for k, v in values.items():
        check_value(config_cls, k, v, overrides[k])
    return dataclasses.replace(config_cls(), **values)


def config_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


# ------------------------------------------------------------------------ `bench tune`'s choices

def tuned_path(results_dir: str | Path, dataset: str, task: str, model: str) -> Path:
    return Path(results_dir) / "tuned" / dataset / task / f"{model}.json"


def load_tuned(results_dir: str | Path, dataset: str, task: str, model: str,
               config_cls: type) -> dict[str, str]:
    """`bench tune`'s choice for the job ({} if none), its keys checked against the model's config
    dataclass: a key it no longer has (renamed or removed since tuning, or a hand edit) would
    otherwise be dropped without a word and the run would use the default instead."""
    path = tuned_path(results_dir, dataset, task, model)
    if not path.exists():
        return {}
    best = {k: str(v) for k, v in json.loads(path.read_text())["best"].items()}
    fields = sorted(f.name for f in dataclasses.fields(config_cls))
    unknown = sorted(set(best) - set(fields))
    if unknown:
        raise UsageError(f"--tuned: {path} has unknown config key(s) {', '.join(unknown)} for {model} "
                         f"({config_cls.__name__}; known: {', '.join(fields)}); fix: tune again with "
                         f"python -m bench tune --model {model} --task {task} --dataset {dataset}, "
                         "or remove the key from the file")
    return best
