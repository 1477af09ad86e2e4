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

from bench.errors import UsageError
from bench.report.render import render_document
from bench.report.studies import STUDIES, Study, study_tables, tag, write_study_outputs


def settings(study: Study, feature_sets: list[str]) -> list[tuple[str, dict]]:
    if study.fixed:
        return [(label, dict(ov)) for label, ov in study.fixed]
    return [(fs, {"visual_encoder": fs}) for fs in feature_sets]


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
    from bench.run.runner import execute, plan_run

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
    p.add_argument(
        "--jobs",
        default="auto",
        help="a setting's runs (one per task and seed) side by side, as bench run "
        "--jobs; the placement study (Table 5's timings) always runs one at a time",
    )
    p.add_argument("--plot-only", action="store_true", help="no runs: redraw tables and figures from existing records")
    p.add_argument("--data-root", default=None, help="dataset directory (default: $BENCH_DATA or ./data)")
