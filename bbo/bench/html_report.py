"""One self-contained HTML page per benchmark directory: what a person looks at to judge a run.

``report.html`` holds the summary table (sortable, mean ± sd over seeds), the best-so-far and
top-10 curves of each task (inline SVG), the domain's drawings of each optimizer's best and last
candidates (inline PNG: molecules, images, layouts), and the runs' settings, seeds, versions and
hardware. Nothing is fetched: no script, style sheet or font from the network, so the file opens
from disk anywhere and can be mailed. It is rebuilt from the journals alone (the figures come from
:mod:`bbo.bench.report`), so the page of a killed run is correct for what it told.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bbo.bench.report import RunRecord, best_and_last, plot_runs
from bbo.optimizer import oriented

#: candidates drawn per grid
GRID = 12

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd} h3{font-size:15px}
table{border-collapse:collapse;font-size:13px} th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3;cursor:pointer;user-select:none} th.sorted-asc::after{content:' \\25B2'}
th.sorted-desc::after{content:' \\25BC'} td.text,th.text{text-align:left}
.grids{display:flex;flex-wrap:wrap;gap:16px} .grid{border:1px solid #ddd;padding:8px}
.grid img{max-width:640px;display:block} .figure svg{max-width:100%;height:auto}
pre{background:#f7f7f7;padding:8px;font-size:12px;overflow-x:auto}
"""

# sorts a table by the clicked column: numbers by the cell's data-value, text otherwise
_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var col = th.cellIndex;
    var body = th.closest('table').tBodies[0];
    var asc = !th.classList.contains('sorted-asc');
    th.parentNode.querySelectorAll('th').forEach(function (h) { h.classList.remove('sorted-asc', 'sorted-desc'); });
    th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      var d = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
      return asc ? d : -d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def write_html_report(out_dir: str | Path, runs: list[RunRecord], summary: pd.DataFrame,
                      path: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``path``) for ``runs`` and their :func:`aggregate` ``summary``."""
    out_dir = Path(out_dir)
    path = Path(path) if path is not None else out_dir / "report.html"
    tasks = list(dict.fromkeys(r.info["task"] for r in runs))
    parts = [f"<h1>bbo report: {html.escape(out_dir.name)}</h1>",
             f"<p>{len(runs)} runs, {len(tasks)} task{'s' * (len(tasks) != 1)}. AUCs, top-10 means and curves "
             f"are in the maximize orientation (a minimized oracle's values negated); the values under the "
             f"drawings are the oracle's own.</p>",
             "<h2>Summary</h2>", summary_table(summary)]
    for task in tasks:
        group = [r for r in runs if r.info["task"] == task]
        parts.append(f'<h2 id="task-{html.escape(task)}">{html.escape(task)}</h2>')
        parts.append(f'<div class="figure">{curves_svg(group, task)}</div>')
        parts.append('<div class="grids">' + "".join(candidate_grids(group)) + "</div>")
    parts += ["<h2>Runs</h2>", runs_section(runs)]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>bbo report: {html.escape(out_dir.name)}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(parts)}<script>{_SORT_SCRIPT}</script></body></html>\n")
    path.write_text(page, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------- pieces


def summary_table(summary: pd.DataFrame) -> str:
    """One row per (task, optimizer): seeds, AUCs and final top-10 as mean ± sd, the naturalness
    figures of the top 100 and last 100, wall time per run."""
    natural = sorted({c.rsplit("_", 1)[0] for c in summary.columns
                      if c.endswith(("_top100", "_last100")) and not c.endswith("_std")})
    columns: list[tuple[str, str]] = [("top1_auc", "top-1 AUC"), ("top10_auc", "top-10 AUC"),
                                      ("top10_mean", "final top-10 mean"), ("uniqueness", "uniqueness")]
    columns += [(f"{n}_{w}", f"{n} {w}") for n in natural for w in ("top100", "last100")]
    columns.append(("wall_time_s", "s per run"))
    columns = [(c, label) for c, label in columns if c in summary.columns]
    head = ['<th class="text">task</th>', '<th class="text">optimizer</th>', "<th>seeds</th>"]
    head += [f"<th>{html.escape(label)}</th>" for _, label in columns]
    rows = []
    for _, row in summary.iterrows():
        cells = [_text_cell(row["task"]), _text_cell(row["optimizer"]), _number_cell(row["seeds"], f"{row['seeds']}")]
        for c, _ in columns:
            mean, sd = row[c], row.get(f"{c}_std", math.nan)
            shown = _fmt(mean) + (f" ± {_fmt(sd)}" if isinstance(sd, float) and not math.isnan(sd) else "")
            cells.append(_number_cell(mean, shown))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable summary"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def curves_svg(runs: list[RunRecord], task: str) -> str:
    """The task's best-so-far and top-10 curves (one line per optimizer, seeds as bands) as SVG."""
    buffer = io.BytesIO()
    plot_runs(runs, buffer, title=task, format="svg")
    svg = buffer.getvalue().decode("utf-8")
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg"):], flags=re.DOTALL)
    return svg  # without the XML prolog, DOCTYPE and RDF metadata, as inline SVG wants


def candidate_grids(runs: list[RunRecord]) -> list[str]:
    """For each optimizer (its lowest seed): the domain's drawing of its best and of its last
    scored candidates, values under each."""
    out = []
    for optimizer in dict.fromkeys(r.info["optimizer"] for r in runs):
        run = min((r for r in runs if r.info["optimizer"] == optimizer), key=lambda r: int(r.info["seed"]))
        domain = run.domain()
        title = f"{html.escape(optimizer)} · seed {run.info['seed']}"
        if not domain.supports("render"):
            out.append(f'<div class="grid"><h3>{title}</h3><p>the {html.escape(domain.name)} domain draws no '
                       f"pictures</p></div>")
            continue
        sets = best_and_last(run, GRID)
        if not sets[0][1]:
            out.append(f'<div class="grid"><h3>{title}</h3><p>nothing scored yet</p></div>')
            continue
        images = []
        for label, objects, values in sets:
            legends = [f"{oriented(v, run.direction):.4g}" for v in values]
            images.append(f"<p>{label} {len(objects)}</p>"
                          + picture_html(domain, [domain.from_json(o) for o in objects], legends, f"{optimizer} {label}"))
        out.append(f'<div class="grid" data-optimizer="{html.escape(optimizer)}"><h3>{title}</h3>{"".join(images)}</div>')
    return out


def runs_section(runs: list[RunRecord]) -> str:
    """Settings, seeds, budget, wall time, versions and hardware of each run, as recorded."""
    rows = []
    for r in sorted(runs, key=lambda r: (r.info["task"], r.info["optimizer"], int(r.info["seed"]))):
        env = r.info.get("environment") or {}
        rows.append("<tr>" + "".join([
            _text_cell(r.info["task"]), _text_cell(r.info["optimizer"]), _number_cell(r.info["seed"], str(r.info["seed"])),
            _number_cell(len(r.values), f"{len(r.values)} / {r.budget}"),
            _number_cell(r.info.get("wall_time_s", 0.0), _fmt(float(r.info.get("wall_time_s", 0.0)))),
            _text_cell(", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())),
            _text_cell(env.get("hardware", "not recorded")),
        ]) + "</tr>")
    table = ('<table class="sortable runs"><thead><tr><th class="text">task</th><th class="text">optimizer</th>'
             "<th>seed</th><th>calls / budget</th><th>seconds</th><th class=\"text\">versions</th>"
             f'<th class="text">hardware</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    settings = {}
    for r in runs:
        key = f"{r.info['task']} · {r.info['optimizer']}"
        settings.setdefault(key, {"oracle": r.info.get("oracle"), "oracle_kwargs": r.info.get("oracle_kwargs"),
                                  "optimizer": r.info.get("optimizer_config")})
    return table + "<h3>Settings</h3><pre>" + html.escape(json.dumps(settings, indent=1, default=str, ensure_ascii=False)) + "</pre>"


# --------------------------------------------------------------------------------------- helpers


def picture_html(domain: Any, objects: list[Any], legends: list[str], alt: str) -> str:
    """``objects`` drawn by ``domain`` into one PNG, as an ``<img>`` tag with the PNG inline."""
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(domain.render(objects, Path(tmp) / "grid.png", legends=legends)).read_bytes()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.3f}" if abs(float(v)) < 100 else f"{v:.0f}"


def _text_cell(v: Any) -> str:
    text = html.escape(str(v))
    return f'<td class="text" data-value="{text}">{text}</td>'


def _number_cell(v: Any, shown: str) -> str:
    try:
        value = float(v)
    except (TypeError, ValueError):
        value = math.nan
    return f'<td data-value="{"" if math.isnan(value) else value}">{html.escape(shown)}</td>'
