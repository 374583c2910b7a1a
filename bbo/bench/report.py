"""Summaries, tables and plots of benchmark runs, rebuilt from their journals alone.

A run directory holds one journal per (task, optimizer, seed) under
``<task>/<optimizer>/seed<k>/journal.db``; everything here is derived from those files, so
``bbo report`` can regenerate the figures of an interrupted or finished run at any time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bbo.bench import metrics
from bbo.domains import get_domain
from bbo.optimizer import oriented
from bbo.study import Journal, Trial, TrialSource, TrialState, trials_dataframe

TOPK = (1, 10, 100)


@dataclass
class RunRecord:
    """One (task, optimizer, seed) run: its settings and its oracle calls in call order."""

    run_dir: Path
    info: dict[str, Any]
    trials: list[Trial]
    keys: list[str]  # unique oracle calls, in call order
    objects: list[Any]
    values: list[float]  # maximize orientation; NaN for a failed call

    @property
    def budget(self) -> int:
        return int(self.info["budget"])

    @property
    def direction(self) -> str:
        return self.info.get("direction", "maximize")

    def domain(self):
        """The run's domain (its stored config; older runs stored the name only)."""
        return get_domain(self.info.get("domain_config") or self.info.get("domain", "vector"))


def load_run(run_dir: str | Path) -> RunRecord:
    run_dir = Path(run_dir)
    journal = Journal(run_dir / "journal.db")
    try:
        info = journal.get_meta("run")
        if not isinstance(info, dict) or not {"task", "optimizer", "seed", "budget"} <= set(info):
            raise ValueError(f"{run_dir / 'journal.db'}: the journal has no readable run record "
                             f"(was it written by `bbo run`?)")
        info = {**info, "wall_time_s": journal.get_meta("wall_time_s", 0.0),
                "environment": journal.get_meta("environment"), "optimizer_config": journal.get_meta("optimizer")}
        trials = journal.trials()
    finally:
        journal.close()
    direction = info.get("direction", "maximize")
    told = sorted((t for t in trials if t.state is not TrialState.RUNNING), key=lambda t: (t.completed, t.number))
    seen: set[str] = set()
    keys, objects, values = [], [], []
    for t in told:
        if t.key in seen:
            continue
        seen.add(t.key)
        keys.append(t.key)
        objects.append(t.object)
        values.append(math.nan if t.value is None else oriented(t.value, direction))
    return RunRecord(run_dir, info, trials, keys, objects, values)


def find_runs(out_dir: str | Path) -> list[Path]:
    return sorted(p.parent for p in Path(out_dir).glob("**/journal.db"))


def finished_summaries(out_dir: str | Path) -> tuple[pd.DataFrame, int]:
    """The ``summary.json`` of every run under ``out_dir`` that reached its budget, one row each,
    and how many were left out for not having reached it (what the results tables read)."""
    rows, unfinished = [], 0
    for path in sorted(Path(out_dir).glob("*/*/seed*/summary.json")):
        summary = json.loads(path.read_text())
        if summary["calls"] < summary["budget"]:
            unfinished += 1
            continue
        rows.append(summary)
    return pd.DataFrame(rows), unfinished


#: what identifies one run in a summary table
RUN_KEY = ["task", "optimizer", "seed"]


def with_recorded(df: pd.DataFrame, recorded: list[Path] | tuple[Path, ...] = ()) -> pd.DataFrame:
    """``df`` (rows of :func:`finished_summaries`) with the finished runs of recorded result files
    (CSV in the ``runs.csv`` form that ``bbo compare`` writes) beneath it: a benchmark too long for
    one machine session is kept as its per-run rows and continued elsewhere. A run present in both
    is taken from ``df`` (its journal); unfinished recorded rows are left out."""
    frames = [df] + [pd.read_csv(p) for p in recorded]
    frames = [f for f in frames if len(f)]
    if not frames:
        return df
    for f in frames[1:]:
        missing = set(RUN_KEY + ["calls", "budget"]) - set(f.columns)
        if missing:
            raise ValueError(f"a recorded results file lacks the columns {sorted(missing)}")
    merged = pd.concat(frames, ignore_index=True)
    merged = merged[merged["calls"] >= merged["budget"]]
    return merged.drop_duplicates(RUN_KEY, keep="first").reset_index(drop=True)


def record_summaries(df: pd.DataFrame, path: Path) -> None:
    """Write the finished runs of ``df`` as a recorded results file (sorted, one row per run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    df.sort_values(RUN_KEY).to_csv(path, index=False)


def markdown_table(df: pd.DataFrame, order: list[str], natural: list[str]) -> str:
    """The README's results table from :func:`finished_summaries`: per task and optimizer (in
    ``order``, others after) the seeds, top-1 and top-10 AUC (mean ± sd over seeds), the final
    top-10 mean, the ``natural`` figures of the top 100 and last 100, and the seconds per run."""
    head = ["task", "optimizer", "seeds", "top-1 AUC", "top-10 AUC", "final top-10 mean"]
    head += [f"{n} top100 / last100" for n in natural] + ["s per run"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for task in sorted(set(df.task)):
        sub = df[df.task == task]
        for opt in [o for o in order if o in set(sub.optimizer)] + sorted(set(sub.optimizer) - set(order)):
            g = sub[sub.optimizer == opt]
            n = len(g)

            def ms(col: str) -> str:
                m, s = g[col].mean(), g[col].std(ddof=1)
                return f"{m:.3f}" + (f" ± {s:.3f}" if n > 1 and not math.isnan(s) else "")

            cells = [task, opt, str(n), ms("top1_auc"), f"**{ms('top10_auc')}**", f"{g['top10_mean'].mean():.3f}"]
            cells += [f"{_short(g[f'{k}_top100'].mean())} / {_short(g[f'{k}_last100'].mean())}" for k in natural]
            cells.append(f"{g['wall_time_s'].mean():.0f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _short(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}"


def summarize(run: RunRecord, with_naturalness: bool = True) -> dict[str, Any]:
    """The run's figures: PMO top-k AUC and means, the uniqueness of the asked objects, and the
    domain's naturalness figures of the top 100 (``<figure>_top100``; values are in the maximize
    orientation)."""
    info = run.info
    out: dict[str, Any] = {
        "task": info["task"], "optimizer": info["optimizer"], "seed": info["seed"], "budget": run.budget,
        "calls": len(run.values), "failed": int(sum(math.isnan(v) for v in run.values)),
        "wall_time_s": round(float(info.get("wall_time_s", 0.0)), 2),
    }
    # values are in the maximize orientation; for a minimized oracle they are negated, and the
    # AUC starts from the first value rather than PMO's floor of 0 (which would be the best)
    start = 0.0 if run.direction == "maximize" else None
    out["direction"] = run.direction
    for k in TOPK:
        out[f"top{k}_auc"] = metrics.topk_auc(run.values, k, budget=max(run.budget, len(run.values)), start=start)
    for k in TOPK:
        out[f"top{k}_mean"] = metrics.topk_mean(run.values, k)
    if with_naturalness:
        domain = run.domain()
        asked = [t.key for t in run.trials if t.source.value == "asked"]
        out["uniqueness"] = len(set(asked)) / len(asked) if asked else math.nan
        if domain.supports("naturalness"):
            for which, objects in (("top100", top_objects(run, 100)), ("last100", last_objects(run, 100))):
                for name, value in domain.naturalness([domain.from_json(o) for o in objects]).items():
                    out[f"{name}_{which}"] = value
    return out


def last_objects(run: RunRecord, k: int) -> list[Any]:
    """The last ``k`` distinct scored objects in call order (stored JSON): the final batch, what
    the optimizer proposes once it has learned."""
    scored = [o for o, v in zip(run.objects, run.values) if not math.isnan(v)]
    return scored[-k:]


def top_objects(run: RunRecord, k: int) -> list[Any]:
    """The ``k`` best distinct scored objects (stored JSON), best first."""
    order = np.argsort([math.inf if math.isnan(v) else -v for v in run.values], kind="stable")
    return [run.objects[i] for i in order[:k] if not math.isnan(run.values[i])]


def best_and_last(run: RunRecord, k: int) -> list[tuple[str, list[Any], list[float]]]:
    """``("best", objects, values)`` of the ``k`` best distinct scored objects, best first, and
    ``("last", objects, values)`` of the last ``k`` scored (stored JSON; values in the maximize
    orientation): the two sets every report draws."""
    scored = [(o, v) for o, v in zip(run.objects, run.values) if not math.isnan(v)]
    best_values = sorted((v for _, v in scored), reverse=True)[:k]
    return [("best", top_objects(run, k), best_values),
            ("last", [o for o, _ in scored[-k:]], [v for _, v in scored[-k:]])]


def round_means(run: RunRecord) -> dict[int, float]:
    """The mean oracle value (maximize orientation) of each round's asked objects, by round
    (0 is the first batch): how far an optimizer's proposals move per round of learning."""
    by_round: dict[int, list[float]] = {}
    for t in run.trials:
        if t.source is TrialSource.ASKED and t.state is TrialState.COMPLETE:
            by_round.setdefault(t.round, []).append(oriented(t.value, run.direction))
    return {r: float(np.mean(v)) for r, v in sorted(by_round.items())}


def curves(run: RunRecord) -> pd.DataFrame:
    """Best-so-far and top-10 mean after each oracle call."""
    calls = np.arange(1, len(run.values) + 1)
    return pd.DataFrame(
        {"calls": calls, "best": metrics.topk_curve(run.values, 1), "top10_mean": metrics.topk_curve(run.values, 10)}
    )


# --------------------------------------------------------------------------------------- writing


def write_run_outputs(run_dir: str | Path) -> dict[str, Any]:
    """history.csv, summary.json and best_so_far.png for one run; returns the summary."""
    run = load_run(run_dir)
    history = trials_dataframe(run.trials)
    history.to_csv(run.run_dir / "history.csv", index=False)
    summary = summarize(run)
    (run.run_dir / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    plot_runs([run], run.run_dir / "best_so_far.png", title=f"{run.info['task']} · {run.info['optimizer']}")
    domain = run.domain()
    if domain.supports("render") and top_objects(run, 1):  # the best and the last twelve, drawn by the domain
        for label, objects, values in best_and_last(run, 12):
            domain.render([domain.from_json(o) for o in objects], run.run_dir / f"{label}.png",
                          legends=[f"{oriented(v, run.direction):.4g}" for v in values])
    return summary


def write_report(out_dir: str | Path, table: str = "summary", plot: str = "best_so_far") -> pd.DataFrame:
    """Summaries of every run under ``out_dir``: ``runs.csv`` (one row per run), ``<table>.csv``
    (mean and std over seeds per task and optimizer), ``<plot>.png`` (best so far and top-10
    mean against oracle calls, a band over seeds) and ``report.html``
    (:mod:`bbo.bench.html_report`)."""
    out_dir = Path(out_dir)
    runs, unreadable = [], []
    for d in find_runs(out_dir):
        try:
            runs.append(load_run(d))
        except ValueError as err:  # a truncated or garbage journal: listed, never fatal to the report
            unreadable.append(str(err))
    (out_dir / "unreadable.txt").unlink(missing_ok=True)
    if unreadable:
        (out_dir / "unreadable.txt").write_text("\n".join(unreadable) + "\n")
    if not runs:
        raise FileNotFoundError(f"no readable runs (journal.db files) under {out_dir}")
    rows = []
    for run in runs:
        summary_file = run.run_dir / "summary.json"
        rows.append(json.loads(summary_file.read_text()) if summary_file.exists() else summarize(run))
    per_run = pd.DataFrame(rows)
    per_run.to_csv(out_dir / "runs.csv", index=False)
    summary = aggregate(per_run)
    summary.to_csv(out_dir / f"{table}.csv", index=False)
    plot_runs(runs, out_dir / f"{plot}.png")
    from bbo.bench.html_report import write_html_report

    try:
        write_html_report(out_dir, runs, summary)
    except Exception as err:  # noqa: BLE001 - a drawing that fails must not fail a finished run
        import warnings

        warnings.warn(f"report.html not written: {type(err).__name__}: {err}", stacklevel=2)
    return summary


def aggregate(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds for each (task, optimizer)."""
    numeric = [c for c in per_run.columns if c not in ("task", "optimizer", "seed") and
               pd.api.types.is_numeric_dtype(per_run[c])]
    grouped = per_run.groupby(["task", "optimizer"], sort=False)
    mean = grouped[numeric].mean()
    std = grouped[numeric].std(ddof=1)  # the sample standard deviation over seeds
    table = mean.copy()
    for c in numeric:
        table[f"{c}_std"] = std[c]
    table.insert(0, "seeds", grouped.size())
    return table.reset_index()


def plot_runs(runs: list[RunRecord], path: Path | Any, title: str | None = None, format: str = "png") -> None:
    """Best-so-far and top-10 mean against oracle calls: one panel pair per task, one colour per
    optimizer, the mean over seeds as a line and min..max over seeds as a band. ``path`` may be a
    file object; ``format`` ``"svg"`` for a page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r.info["task"] for r in runs))
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3.4 * len(tasks)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    optimizers = list(dict.fromkeys(r.info["optimizer"] for r in runs))
    for row, task in enumerate(tasks):
        for col, (column, label) in enumerate((("best", "best so far"), ("top10_mean", "top-10 mean"))):
            ax = axes[row, col]
            for j, opt in enumerate(optimizers):
                group = [r for r in runs if r.info["task"] == task and r.info["optimizer"] == opt]
                if not group:
                    continue
                budget = max(r.budget for r in group)
                grid = np.arange(1, budget + 1)
                ys = np.vstack([_on_grid(curves(r)[column].to_numpy(), budget) for r in group])
                color = colors[j % len(colors)]
                ax.plot(grid, np.nanmean(ys, axis=0), color=color, label=f"{opt} ({len(group)} seed{'s' * (len(group) > 1)})")
                if len(group) > 1:
                    ax.fill_between(grid, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), color=color, alpha=0.2)
            ax.set_xlabel("oracle calls")
            ax.set_ylabel(label)
            ax.set_title(f"{task}: {label}" if title is None else f"{title}: {label}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format=format, **({"metadata": {"Date": None}} if format == "svg" else {}))
    plt.close(fig)


def _on_grid(curve: np.ndarray, budget: int) -> np.ndarray:
    """A per-call curve extended at its last value to the budget (runs that stopped early)."""
    out = np.full(budget, np.nan)
    n = min(len(curve), budget)
    out[:n] = curve[:n]
    if 0 < n < budget:
        out[n:] = curve[n - 1]
    return out


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else (v.item() if hasattr(v, "item") else v))
            for k, v in d.items()}
