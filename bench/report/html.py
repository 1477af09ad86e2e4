"""`bench report`: one self-contained HTML page with every table and figure.

Tables 2-5 and the ablation studies are rebuilt from the run records (the same code as
`bench tables` and `bench ablate`), figures are embedded as base64 PNG and the style sheet is
inline, so the single file opens in any browser, offline, and can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from bench.errors import UsageError
from bench.report.render import render
from bench.report.table import METRIC_LABEL, Table
from bench.tasks import TASKS

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.86em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
ul.notes { font-size: 0.8em; color: #444; max-width: 1100px; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.meta { color: #666; font-size: 0.85em; }
nav a { margin-right: 1em; }
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table_html(t: Table) -> str:
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in t.notes)
    return f"<h3>{html.escape(t.title)}</h3>\n{render(t, 'html')}\n<ul class=\"notes\">{notes}</ul>\n"


def overview_figure(tables: list[Table], dataset: str) -> bytes | None:
    """One bar per table row: the metric the significance test uses (NDCG@10, ROUGE-L)."""
    from bench.report.figures import Panel, bar_figure

    panels = []
    for t in tables:
        task = t.task
        if task is None:
            continue
        metric = TASKS[task].significance
        j = t.columns.index(metric)
        rows = [r for r in t.measured_rows() if r.cells[j].values]
        panels.append(Panel(f"{task}: {METRIC_LABEL[metric]}", [r.label for r in rows],
                            {METRIC_LABEL[metric]: [(r.cells[j].mean, r.cells[j].std) for r in rows]},
                            "%" if TASKS[task].percent else ""))
    return bar_figure(panels, f"Test results — {dataset} (mean ± std over seeds)") if panels else None


def build_report(results_dir: str | Path, dataset: str | None = None) -> str:
    from bench.report.studies import STUDIES, study_figure, study_records, study_tables
    from bench.report.tables import build_tables, select_datasets
    from bench.results import git_commit, load_records, now_iso

    datasets = select_datasets(results_dir, dataset)
    parts, nav = [], []
    for ds in datasets:
        records = load_records(results_dir, ds)
        tables = build_tables(records, ds)
        nav.append(f'<a href="#ds-{html.escape(ds)}">{html.escape(ds)}</a>')
        parts.append(f'<h2 id="ds-{html.escape(ds)}">Dataset {html.escape(ds)}</h2>\n'
                     f'<p class="meta">{len(records)} record(s) · models: '
                     f'{html.escape(", ".join(sorted({r["model"] for r in records})))}</p>')
        png = overview_figure(tables, ds)
        if png:
            parts.append(_img(png, f"overview {ds}"))
        parts += [_table_html(t) for t in tables]
        for study in STUDIES:
            if not study_records(records, study):
                continue
            parts.append(f"<h3>Ablation: {html.escape(STUDIES[study].title)} (Figure {STUDIES[study].figure})</h3>")
            png = study_figure(records, study, ds)
            if png:
                parts.append(_img(png, f"{study} {ds}"))
            parts += [_table_html(t) for t in study_tables(records, study, ds)]
    head = (
        f'<h1>vip5-bench report</h1>\n<p class="meta">Generated {now_iso()} from {html.escape(str(results_dir))}'
        f" · code {html.escape(git_commit() or 'unknown')} · protocols: "
        f"results/README.md</p>\n<nav>{''.join(nav)}</nav>"
    )
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>vip5-bench report</title><style>{CSS}</style></head>\n<body>\n{head}\n"
            + "\n".join(parts) + "\n</body></html>\n")


def cmd_report(args) -> int:
    from bench.io import atomic_write_text

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {out}: expected an .html file")
    page = build_report(args.results_dir, args.dataset)
    atomic_write_text(out, page)
    print(f"report written: {out} ({len(page) / 1024:.0f} KiB, self-contained; open it in a browser)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page with every table and figure")
    p.add_argument("--results-dir", default="results", help="where the run records are (default: ./results)")
    p.add_argument("--dataset", default=None, help="one dataset (default: every dataset that has records)")
    p.add_argument("--out", default="results/report.html", help="output file (default: results/report.html)")
