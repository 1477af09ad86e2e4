"""Rendering a Table (bench/report/table.py) as Markdown, LaTeX, HTML or CSV.

`render` gives the table alone (the HTML report embeds it); `render_document` adds the title and
notes, as printed by `bench tables` / `bench ablate` and written to their .md/.tex files.
"""

from __future__ import annotations

import csv
import html
import io

from tabulate import tabulate

from bench.report.table import METRIC_LABEL, Cell, Table


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("–", "--")):
        s = s.replace(a, b)
    return s


def _cell_text(c: Cell, fmt: str) -> str:
    if fmt == "tex":
        t = c.plain(r" $\pm$ ")
        t = rf"\textbf{{{t}}}" if c.bold and c.values else t
        return t + (r"$^\dagger$" if c.dagger else "")
    if fmt == "html":
        t = html.escape(c.plain())
        t = f"<b>{t}</b>" if c.bold and c.values else t
        return t + ("&dagger;" if c.dagger else "")
    t = c.plain()
    t = f"**{t}**" if c.bold and c.values else t
    return t + ("†" if c.dagger else "")


def _headers(table: Table, fmt: str) -> list[str]:
    hs = ["method", *table.extra_headers, "seeds", *(METRIC_LABEL.get(c, c) for c in table.columns)]
    if fmt == "tex":
        return [_tex_escape(h) for h in hs]
    if fmt == "html":
        return [html.escape(h) for h in hs]
    return hs


def render(table: Table, fmt: str) -> str:
    """The table alone (no title or notes) in md, tex, html or csv."""
    if fmt == "csv":
        return _render_csv(table)
    esc = _tex_escape if fmt == "tex" else html.escape if fmt == "html" else (lambda s: s)
    rows = []
    for block in table.blocks:
        if block.title and not table.extra_headers:  # Table 5's blocks are named in its task column
            title = (rf"\textit{{{esc(block.title)}}}" if fmt == "tex"
                     else f"<i>{esc(block.title)}</i>" if fmt == "html" else f"*{block.title}*")
            rows.append([title] + [""] * (len(table.columns) + 1))
        for r in block.rows:
            rows.append([esc(r.label), *(esc(str(x)) for x in r.extra), str(r.seeds),
                         *(_cell_text(c, fmt) for c in r.cells)])
    tablefmt = {"md": "github", "tex": "latex_raw", "html": "unsafehtml"}[fmt]
    return tabulate(rows, headers=_headers(table, fmt), tablefmt=tablefmt, disable_numparse=True)


def _render_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [x for c in table.columns for x in (c, f"{c}_std")]
    w.writerow(["block", "method", *table.extra_headers, "seeds", *cols, "best", "significant"])
    for block in table.blocks:
        for r in block.rows:
            vals = []
            for c in r.cells:
                vals += ["" if c.mean is None else f"{c.mean:.6g}", "" if c.std is None else f"{c.std:.6g}"]
            best = ";".join(col for col, c in zip(table.columns, r.cells, strict=True) if c.bold)
            sig = ";".join(col for col, c in zip(table.columns, r.cells, strict=True) if c.dagger)
            w.writerow([block.title or "", r.label, *r.extra, r.seeds, *vals, best, sig])
    return buf.getvalue()


def render_document(table: Table, fmt: str) -> str:
    """Title, table and notes: what is printed and written to the .md/.tex files (csv: the table only)."""
    body = render(table, fmt)
    if fmt == "csv":
        return body
    if fmt == "tex":
        notes = "\n".join(rf"\noindent\footnotesize {_tex_escape(n)}\\" for n in table.notes)
        return f"% {table.title}\n{body}\n{notes}\n"
    notes = "\n".join(f"- {n}" for n in table.notes)
    return f"### {table.title}\n\n{body}\n\n{notes}\n"
