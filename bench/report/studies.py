"""The ablation studies of the paper's Figures 3-7 as reporting: what each study varies, and its
tables and figure drawn from the tagged run records (``<study>-<setting>``). `bench ablate`
(bench/studies/ablate.py) runs the settings; this module only reads their records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.report.render import render, render_document
from bench.report.table import Block, Cell, Table, make_row, prompt_key, with_trainer_figures
from bench.report.tables import EFFICIENCY
from bench.tasks import TASKS


@dataclass(frozen=True)
class Study:
    name: str
    figure: int
    title: str
    keys: tuple[str, ...]  # config keys the study sets (the model must have them; --set may not)
    needs_features: bool
    xlabel: str
    fixed: tuple[tuple[str, dict], ...] = ()  # (label, overrides); empty: from the dataset's feature sets


STUDIES = {
    "multimodal": Study(
        "multimodal",
        3,
        "Text-only vs multimodal prompts",
        ("image_tokens",),
        True,
        "prompt",
        (("text-only", {"image_tokens": "0"}), ("multimodal", {"image_tokens": "2"})),
    ),
    "placement": Study(
        "placement",
        4,
        "Adapter placement vs full fine-tuning",
        ("adapter_placement", "train_mode"),
        False,
        "training strategy",
        (
            ("self", {"adapter_placement": "self", "train_mode": "adapters"}),
            ("self+cross", {"adapter_placement": "self+cross", "train_mode": "adapters"}),
            ("full", {"train_mode": "full"}),
        ),
    ),
    "reduction": Study(
        "reduction",
        5,
        "Adapter reduction factor",
        ("reduction_factor",),
        False,
        "reduction factor r",
        tuple((str(r), {"reduction_factor": str(r)}) for r in (1, 2, 4, 8, 16)),
    ),
    "image-tokens": Study(
        "image-tokens",
        6,
        "Number of image tokens per item",
        ("image_tokens",),
        True,
        "image tokens per item",
        tuple((str(k), {"image_tokens": str(k)}) for k in (1, 2, 3, 5)),
    ),
    "encoder": Study("encoder", 7, "Visual encoder (feature set)", ("visual_encoder",), True, "feature set"),
}


def tag(study: str, label: str) -> str:
    return f"{study}-{label}"


def _order(study: str, labels: set[str]) -> list[str]:
    st = STUDIES[study]
    if st.fixed:
        known = [label for label, _ in st.fixed]
        return [x for x in known if x in labels] + sorted(labels - set(known))
    return sorted(labels)


def study_records(records: list[dict], study: str, model: str | None = None) -> dict[str, list[dict]]:
    """setting label -> records of this study (by tag), optionally of one model."""
    prefix = f"{study}-"
    out: dict[str, list[dict]] = {}
    for r in records:
        t = r.get("tag") or ""
        if t.startswith(prefix) and (model is None or r["model"] == model):
            out.setdefault(t[len(prefix):], []).append(r)
    return {label: out[label] for label in _order(study, set(out))}


def study_tables(records: list[dict], study: str, dataset: str, model: str | None = None) -> list[Table]:
    by_setting = study_records(with_trainer_figures(records), study, model)
    st = STUDIES[study]
    tables = []
    for task, tk in TASKS.items():
        columns = list(tk.metrics)
        rows = []
        for label, recs in by_setting.items():
            recs = [r for r in recs if r["task"] == task]
            for prompt in sorted({r.get("prompt") or "" for r in recs}, key=prompt_key):
                prs = [r for r in recs if (r.get("prompt") or "") == prompt]
                digits = {c: tk.digits for c in columns} | {"time_per_epoch_s": 2, "trainable_pct": 2,
                                                            "peak_memory_mb": 0}
                row = make_row(label, prs, columns + EFFICIENCY, digits)
                row.extra = [prompt or "-"]
                rows.append(row)
        if rows:
            t = Table(f"{study}_{task}", f"Figure {st.figure} (table): {st.title} — {task}, {dataset}",
                      columns + EFFICIENCY, [Block(None, rows)], lower_is_better=set(EFFICIENCY),
                      extra_headers=["prompt"])
            t.mark_best()
            fixed = sorted({f"{k}={v}" for rs in by_setting.values() for r in rs if r["task"] == task
                            for k, v in r.get("config", {}).items() if k in ("image_tokens", "reduction_factor",
                                                                            "adapter_placement", "train_mode",
                                                                            "visual_encoder", "backbone_size")})
            t.notes = [f"Setting = tag {study}-<setting>; test split, mean ± std over seeds; best per column in bold "
                       "(lower is better for s/epoch, trainable %, memory).",
                       "Configurations seen: " + ", ".join(fixed) + "."]
            levels = reference_levels(records, task, columns)
            t.notes += [f"No-model level ({name}): " + ", ".join(f"{m.lower()} {v:.4f}" for m, v in lv.items()) + "."
                        for name, lv in levels.items()]
            note = significance_note(by_setting, task)
            t.notes += [note[0]] if note else []
            tables.append(t)
    return tables


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    cell = Cell(values, 0)
    return cell.mean, cell.std


def _figure_prompt(task: str, recs: list[dict]) -> str | None:
    prompts = {r.get("prompt") for r in recs}
    unseen = TASKS[task].unseen_prompt
    return unseen if unseen in prompts else sorted(prompts, key=lambda p: prompt_key(p or ""))[0]


def reference_levels(records: list[dict], task: str, metrics: list[str]) -> dict[str, dict[str, float]]:
    """{reference model: {METRIC: mean over its untagged records}} for `task` (empty if it never ran)."""
    name = TASKS[task].reference_model
    recs = [r for r in records if r["model"] == name and r["task"] == task and not r.get("tag")]
    levels = {m.upper(): float(np.mean([r["metrics"][m] for r in recs])) for m in metrics
              if recs and all(m in r["metrics"] for r in recs)}
    return {name: levels} if levels else {}


def significance_note(by_setting: dict[str, list[dict]], task: str) -> tuple[str, int] | None:
    """(one sentence, number of significant differences): each setting against the first one (the
    study's reference setting), by the project's paired test on the figure's prompt."""
    from bench.significance import ALPHA, paired_test

    recs = {label: [r for r in rs if r["task"] == task] for label, rs in by_setting.items()}
    recs = {label: rs for label, rs in recs.items() if rs}
    if len(recs) < 2:
        return None
    prompt = _figure_prompt(task, [r for rs in recs.values() for r in rs])
    metric = TASKS[task].significance
    (first, base), parts, significant = next(iter(recs.items())), [], 0
    for label, rs in list(recs.items())[1:]:
        res = paired_test([r for r in rs if r.get("prompt") == prompt], [r for r in base if r.get("prompt") == prompt],
                          metric)
        if res is None:
            continue
        significant += res.p < ALPHA
        parts.append(f"{label} {res.diff:+.4f} (p = {res.p:.3g})")
    if not parts:
        return None
    verdict = (f"{significant} of {len(parts)} difference(s) significant at p < {ALPHA}" if significant
               else f"no difference is significant at p < {ALPHA}")
    return (f"Paired test ({metric}, prompt {prompt or '-'}) against `{first}`: " + "; ".join(parts)
            + f" — {verdict}."), significant


def study_figure(records: list[dict], study: str, dataset: str, model: str | None = None) -> bytes | None:
    from bench.report.figures import Panel, bar_figure

    by_setting = study_records(records, study, model)
    if not by_setting:
        return None
    panels = []
    for task, tk in TASKS.items():
        recs = {label: [r for r in rs if r["task"] == task] for label, rs in by_setting.items()}
        if not any(recs.values()):
            continue
        prompt = _figure_prompt(task, [r for rs in recs.values() for r in rs])
        metrics = list(tk.figure_metrics)
        series = {
            m.upper(): [
                _mean_std([r["metrics"][m] for r in rs if r.get("prompt") == prompt and m in r["metrics"]])
                for rs in recs.values()
            ]
            for m in metrics
        }
        note = significance_note(by_setting, task)
        verdict = (
            "" if note is None else (" — significant difference(s)" if note[1] else " — no significant difference")
        )
        panels.append(Panel(f"{task}" + (f" ({prompt})" if prompt else "") + verdict, list(recs), series,
                            "%" if tk.percent else "", STUDIES[study].xlabel,
                            refs=reference_levels(records, task, metrics)))
    st = STUDIES[study]
    return bar_figure(panels, f"Figure {st.figure} analogue: {st.title} — {dataset}")


def write_study_outputs(
    records: list[dict], study: str, dataset: str, out_dir: Path, model: str | None = None
) -> list[Path]:
    from bench.io import atomic_write_bytes, atomic_write_text

    tables = study_tables(records, study, dataset, model)
    if not tables:
        return []
    out_dir = Path(out_dir) / dataset
    paths = [out_dir / f"{study}.md"]
    atomic_write_text(paths[0], f"## Figure {STUDIES[study].figure} analogue: {STUDIES[study].title} — {dataset}\n\n"
                      + "\n".join(render_document(t, "md") for t in tables))
    for t in tables:
        for fmt in ("csv", "tex"):
            p = out_dir / f"{t.key}.{fmt}"
            atomic_write_text(p, render_document(t, fmt) if fmt == "tex" else render(t, "csv"))
            paths.append(p)
    png = study_figure(records, study, dataset, model)
    if png:
        atomic_write_bytes(out_dir / f"{study}.png", png)
        paths.append(out_dir / f"{study}.png")
    return paths


# ------------------------------------------------------------------------------------ running
