"""`bench ablate`: the sweeps behind the paper's Figures 3-7, as tagged runs of the normal runner.

Each setting of a study is one `bench run` of the model (VIP5 by default) with `--set`
overrides and the tag ``<study>-<setting>`` (e.g. ``reduction-8``), so its records sit beside
the others and `bench tables` / `bench report` / `bench check` read them like any run. Per
study the command writes a table (md per study; csv and tex per task) and a PNG figure under
``<out>/<dataset>/``.

    multimodal     Figure 3  image_tokens 0 (text-only prompts) vs 2 (multimodal prompts)
    placement      Figure 4  adapters after self-attention only / self- and cross-attention / full fine-tuning
                             (also Table 5: time per epoch, trainable %, peak memory)
    reduction      Figure 5  adapter reduction factor 1, 2, 4, 8, 16
    image-tokens   Figure 6  image tokens per item 1, 2, 3, 5
    encoder        Figure 7  visual_encoder over the dataset's feature sets (needs two or more)
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import UsageError
from bench.tables import (
    COLUMNS,
    DIGITS,
    EFFICIENCY,
    UNSEEN,
    Block,
    Table,
    make_row,
    prompt_key,
    render,
    render_document,
)

RANK_FIG_METRICS = ["hr@10", "ndcg@10"]
TEXT_FIG_METRICS = ["bleu-4", "rouge-l"]
# the no-model level every figure draws: popularity for ranking, the retrieval reference for text
REFERENCE_MODEL = {"sequential": "pop", "direct": "pop", "explanation": "explain_ref"}
# the per-query metric of the paired test (bench/significance.py): per-user NDCG@10, per-record ROUGE-L
TESTED_METRIC = {"sequential": "ndcg@10", "direct": "ndcg@10", "explanation": "rouge-l"}


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
    "multimodal": Study("multimodal", 3, "Text-only vs multimodal prompts", ("image_tokens",), True, "prompt",
                        (("text-only", {"image_tokens": "0"}), ("multimodal", {"image_tokens": "2"}))),
    "placement": Study("placement", 4, "Adapter placement vs full fine-tuning", ("adapter_placement", "train_mode"), False,
                       "training strategy",
                       (("self", {"adapter_placement": "self", "train_mode": "adapters"}),
                        ("self+cross", {"adapter_placement": "self+cross", "train_mode": "adapters"}),
                        ("full", {"train_mode": "full"}))),
    "reduction": Study("reduction", 5, "Adapter reduction factor", ("reduction_factor",), False, "reduction factor r",
                       tuple((str(r), {"reduction_factor": str(r)}) for r in (1, 2, 4, 8, 16))),
    "image-tokens": Study("image-tokens", 6, "Number of image tokens per item", ("image_tokens",), True, "image tokens per item",
                          tuple((str(k), {"image_tokens": str(k)}) for k in (1, 2, 3, 5))),
    "encoder": Study("encoder", 7, "Visual encoder (feature set)", ("visual_encoder",), True, "feature set"),
}


def settings(study: Study, feature_sets: list[str]) -> list[tuple[str, dict]]:
    if study.fixed:
        return [(label, dict(ov)) for label, ov in study.fixed]
    return [(fs, {"visual_encoder": fs}) for fs in feature_sets]


def tag(study: str, label: str) -> str:
    return f"{study}-{label}"


def parse_studies(s: str) -> list[str]:
    names = list(STUDIES) if s.strip() == "all" else [p.strip() for p in s.split(",") if p.strip()]
    for n in names:
        if n not in STUDIES:
            raise UsageError(f"unknown study {n!r}; known studies: {', '.join(sorted(STUDIES))} (or 'all')")
    if not names:
        raise UsageError("--study: name at least one study (or 'all')")
    return names


def dataset_visuals(dataset: str, root: str | None) -> tuple[list[str], int]:
    """(feature sets, number of item images) from the dataset's manifest (generated first if it is `synthetic`)."""
    from bench.data import SYNTHETIC, data_root, load_dataset
    from bench.data.store import read_manifest

    ds_dir = data_root(root) / dataset
    if dataset == SYNTHETIC and not (ds_dir / "manifest.json").exists():
        load_dataset(SYNTHETIC, root, verify=False)
    m = read_manifest(ds_dir)
    return sorted(m.get("features", {})), int(m.get("counts", {}).get("images", 0) or 0)


def skip_reason(study: Study, dataset: str, feature_sets: list[str], n_images: int) -> str | None:
    add = (f"extract features from its {n_images} item images with `python -m bench features --dataset {dataset} "
           "--encoder ViT-B-32 --weights PATH`" if n_images else
           f"import released features with `python -m bench features --dataset {dataset} --from-vip5 DIR`")
    if study.needs_features and not feature_sets:
        what = f"no item visual features ({n_images} images)" if n_images else "no item images and no visual features"
        return f"study {study.name!r} skipped: dataset {dataset!r} has {what}; {add}."
    if study.name == "encoder" and len(feature_sets) < 2:
        return (f"study 'encoder' skipped: dataset {dataset!r} has {len(feature_sets)} visual feature set(s) "
                f"({', '.join(feature_sets) or 'none'}); comparing encoders needs at least two; {add}.")
    return None


# ------------------------------------------------------------------------------------ tables and figure


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
    by_setting = study_records(records, study, model)
    st = STUDIES[study]
    tables = []
    for task in COLUMNS:
        rows = []
        for label, recs in by_setting.items():
            recs = [r for r in recs if r["task"] == task]
            for prompt in sorted({r.get("prompt") or "" for r in recs}, key=prompt_key):
                prs = [r for r in recs if (r.get("prompt") or "") == prompt]
                digits = {c: DIGITS[task] for c in COLUMNS[task]} | {"time_per_epoch_s": 2, "trainable_pct": 2,
                                                                     "peak_memory_mb": 0}
                row = make_row(label, prs, COLUMNS[task] + EFFICIENCY, digits)
                row.extra = [prompt or "-"]
                rows.append(row)
        if rows:
            t = Table(f"{study}_{task}", f"Figure {st.figure} (table): {st.title} — {task}, {dataset}",
                      COLUMNS[task] + EFFICIENCY, [Block(None, rows)], lower_is_better=set(EFFICIENCY),
                      extra_headers=["prompt"])
            t.mark_best()
            fixed = sorted({f"{k}={v}" for rs in by_setting.values() for r in rs if r["task"] == task
                            for k, v in r.get("config", {}).items() if k in ("image_tokens", "reduction_factor",
                                                                            "adapter_placement", "train_mode",
                                                                            "visual_encoder", "backbone_size")})
            t.notes = [f"Setting = tag {study}-<setting>; test split, mean ± std over seeds; best per column in bold "
                       "(lower is better for s/epoch, trainable %, memory).",
                       "Configurations seen: " + ", ".join(fixed) + "."]
            levels = reference_levels(records, task, COLUMNS[task])
            t.notes += [f"No-model level ({name}): " + ", ".join(f"{m.lower()} {v:.4f}" for m, v in lv.items()) + "."
                        for name, lv in levels.items()]
            note = significance_note(by_setting, task)
            t.notes += [note[0]] if note else []
            tables.append(t)
    return tables


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def _figure_prompt(task: str, recs: list[dict]) -> str | None:
    prompts = {r.get("prompt") for r in recs}
    return UNSEEN[task] if UNSEEN[task] in prompts else sorted(prompts, key=lambda p: prompt_key(p or ""))[0]


def reference_levels(records: list[dict], task: str, metrics: list[str]) -> dict[str, dict[str, float]]:
    """{reference model: {METRIC: mean over its untagged records}} for `task` (empty if it never ran)."""
    name = REFERENCE_MODEL[task]
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
    metric = TESTED_METRIC[task]
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
    from bench.figures import Panel, bar_figure

    by_setting = study_records(records, study, model)
    if not by_setting:
        return None
    panels = []
    for task in COLUMNS:
        recs = {label: [r for r in rs if r["task"] == task] for label, rs in by_setting.items()}
        if not any(recs.values()):
            continue
        prompt = _figure_prompt(task, [r for rs in recs.values() for r in rs])
        metrics = TEXT_FIG_METRICS if task == "explanation" else RANK_FIG_METRICS
        series = {m.upper(): [_mean_std([r["metrics"][m] for r in rs if r.get("prompt") == prompt and m in r["metrics"]])
                              for rs in recs.values()] for m in metrics}
        note = significance_note(by_setting, task)
        verdict = "" if note is None else (" — significant difference(s)" if note[1] else " — no significant difference")
        panels.append(Panel(f"{task}" + (f" ({prompt})" if prompt else "") + verdict, list(recs), series,
                            "%" if task == "explanation" else "", STUDIES[study].xlabel,
                            refs=reference_levels(records, task, metrics)))
    st = STUDIES[study]
    return bar_figure(panels, f"Figure {st.figure} analogue: {st.title} — {dataset}")


def write_study_outputs(records: list[dict], study: str, dataset: str, out_dir: Path, model: str | None = None) -> list[Path]:
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


def check_study_model(name: str, model: str) -> dict:
    """The model's config fields, after checking that it has every key the study varies."""
    from bench.registry import get_model

    fields = get_model(model).config.__dataclass_fields__
    missing = [k for k in STUDIES[name].keys if k not in fields]
    if missing:
        raise UsageError(f"study {name!r} sets {', '.join(missing)}, which model {model!r} has no config key for")
    return fields


@dataclass
class StudyOutcome:
    study: str
    skipped: str | None = None
    failures: int = 0
    paths: list[Path] | None = None


def run_study(name: str, *, dataset: str, task: str | None, model: str, seeds: list[int], epochs: int | None,
              sets: dict[str, str], device: str, indexing: str, data_root: str | None, results_dir: str,
              out: str, plot_only: bool = False, command: str = "", parallel: int | str = 1) -> StudyOutcome:
    from bench.results import load_records
    from bench.runner import execute, plan_run

    study = STUDIES[name]
    fields = check_study_model(name, model)
    clash = [k for k in study.keys if k in sets]
    if clash:
        raise UsageError(f"--set {', '.join(clash)}: study {name!r} varies this key itself")
    feature_sets, n_images = dataset_visuals(dataset, data_root)
    reason = skip_reason(study, dataset, feature_sets, n_images)
    if reason:
        print(reason, flush=True)
        return StudyOutcome(name, skipped=reason)
    base = dict(sets)
    if not feature_sets and "image_tokens" in fields and "image_tokens" not in base:
        base["image_tokens"] = "0"
        print(f"note: dataset {dataset!r} has no visual features: study {name!r} runs with text-only prompts "
              "(image_tokens=0)", flush=True)
    failures = 0
    # the placement study is also Table 5 (time per epoch, peak memory): its runs never share the machine
    parallel = 1 if name == "placement" else parallel
    plan_settings = settings(study, feature_sets)
    if not plan_settings:
        reason = f"study {name!r} skipped: nothing to vary"
        print(reason)
        return StudyOutcome(name, skipped=reason)
    if not plot_only:
        for n, (label, overrides) in enumerate(plan_settings, 1):
            print(f"\n##### study {name} · setting {n}/{len(plan_settings)}: {label} ({overrides}) · tag "
                  f"{tag(name, label)}", file=sys.stderr, flush=True)
            plan = plan_run(task=task, dataset=dataset, models=[model], seeds=seeds, overrides=base | overrides,
                            epochs=epochs, device=device, indexing=indexing, data_root_=data_root,
                            results_dir=results_dir, tag=tag(name, label), parallel=parallel)
            failures += sum(1 for r in execute(plan, command=command) if r.error)
    records = [r for r in load_records(results_dir, dataset) if task is None or r["task"] == task]
    records = [r for r in records if r.get("indexing", indexing) == indexing]
    paths = write_study_outputs(records, name, dataset, Path(out), model)
    for t in study_tables(records, name, dataset, model):
        print("\n" + render_document(t, "md"))
    if paths:
        print(f"study {name}: {len(paths)} file(s) in {Path(out) / dataset}/ (table, figure {name}.png)")
    else:
        print(f"study {name}: no records to show")
    return StudyOutcome(name, failures=failures, paths=paths)


def cmd_ablate(args) -> int:
    from bench.config import parse_sets
    from bench.data import check_dataset_name
    from bench.registry import check_model_task, get_model

    names = parse_studies(args.study)
    check_dataset_name(args.dataset, args.data_root)
    check_model_task(args.model, args.task) if args.task else get_model(args.model)
    command = "python -m bench " + shlex.join(sys.argv[1:])
    outcomes = [run_study(n, dataset=args.dataset, task=args.task, model=args.model, seeds=args.seeds,
                          epochs=args.epochs, sets=parse_sets(args.sets), device=args.device, indexing=args.indexing,
                          data_root=args.data_root, results_dir=args.results_dir, out=args.out,
                          plot_only=args.plot_only, command=command, parallel=args.jobs) for n in names]
    skipped = [o for o in outcomes if o.skipped]
    if skipped:
        print("\nskipped:\n" + "\n".join(f"  {o.skipped}" for o in skipped))
    return 1 if any(o.failures for o in outcomes) else 0


def add_parser(sub, ints) -> None:
    p = sub.add_parser("ablate", help="ablation sweeps behind Figures 3-7 (tagged runs, a table and a PNG per study)")
    p.add_argument("--study", required=True, help=f"{', '.join(STUDIES)}; comma-separated, or 'all'")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--task", default=None, help="one task (default: every task the dataset has)")
    p.add_argument("--model", default="vip5", help="model to vary (default vip5; needs the study's config keys)")
    p.add_argument("--seeds", type=ints, default=[2022], help="comma-separated seeds (default: 2022)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="fixed config override; repeatable")
    p.add_argument("--device", default="auto")
    p.add_argument("--indexing", default="random")
    p.add_argument("--results-dir", default="results", help="where run records go (default: ./results)")
    p.add_argument("--out", default="results/ablations", help="tables and figures (default: results/ablations)")
    p.add_argument("--jobs", default="auto", help="a setting's runs (one per task and seed) side by side, as bench run "
                                                  "--jobs; the placement study (Table 5's timings) always runs one at a time")
    p.add_argument("--plot-only", action="store_true", help="no runs: redraw tables and figures from existing records")
    p.add_argument("--data-root", default=None, help="dataset directory (default: $BENCH_DATA or ./data)")
