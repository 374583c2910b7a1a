"""The PMO results table from a `bbo compare benchmarks/pmo.yaml` run directory.

    python benchmarks/pmo_table.py runs/pmo-compare [--plot runs/pmo-compare/sums.png] [--recorded CSV ...] [--record CSV]

Prints markdown: per-task top-10 AUC (mean ± sd over the seeds present) for each optimizer, the
sum over tasks (only over tasks every listed optimizer finished, so that sums compare), and per
optimizer the mean top-100 diversity, SA and novelty against MOSES train and the mean wall time
per run; with ``--reach`` the mean oracle value of rounds 1, 5 and 10 of the generative optimizers'
proposals against the prior's; with ``--sources`` the share of the GP-chosen molecules that the
fine-tuned policy proposed, for GP-BO the share that uniform MOSES draws supplied (both for one
seed, ``--seed``, default 0). Runs that have not reached their budget are left out and counted.
``--recorded`` merges per-run rows kept from earlier sessions (``benchmarks/results/pmo.csv``)
beneath the journals' own and ``--record`` writes the merged rows back, so the three seeds need
not run on one machine; ``--reach`` and ``--sources`` read journals, so they need the run directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bbo.bench.report import (
    finished_summaries,
    load_run,
    record_summaries,
    round_means,
    with_recorded,
)

ORDER = ["random", "random-prior", "genetic", "botorch", "botorch-spread", "sqdf", "sqdf-spread", "sqdf-refstart",
         "sqdf-policy", "pgraft"]


def table(df: pd.DataFrame) -> tuple[str, pd.Series]:
    optimizers = [o for o in ORDER if o in set(df.optimizer)] + sorted(set(df.optimizer) - set(ORDER))
    g = df.groupby(["task", "optimizer"])["top10_auc"]
    mean, std, n = g.mean().unstack(), g.std(ddof=1).unstack(), g.size().unstack()
    complete = mean[optimizers].dropna().index  # tasks every optimizer finished
    lines = ["| task | " + " | ".join(optimizers) + " |", "|---" * (len(optimizers) + 1) + "|"]
    for task in mean.index:
        cells = []
        best = mean.loc[task, optimizers].max()
        for o in optimizers:
            m = mean.loc[task].get(o)
            if pd.isna(m):
                cells.append("")
                continue
            sd = std.loc[task].get(o)
            cell = f"{m:.3f}" + (f" ± {sd:.3f}" if n.loc[task].get(o, 1) > 1 and not pd.isna(sd) else "")
            cells.append(f"**{cell}**" if m == best else cell)
        lines.append(f"| {task.removeprefix('pmo_')} | " + " | ".join(cells) + " |")
    sums = mean.loc[complete, optimizers].sum()
    lines.append(f"| **sum over {len(complete)} tasks** | "
                 + " | ".join(f"**{sums[o]:.2f}**" if sums[o] == sums.max() else f"{sums[o]:.2f}" for o in optimizers)
                 + " |")
    per_opt = df.groupby("optimizer")[["diversity_top100", "sa_top100", "novelty_top100", "wall_time_s"]].mean()
    lines += ["", "| optimizer | diversity (top 100) | SA (top 100) | novelty (top 100) | wall time per run (s) |",
              "|---|---|---|---|---|"]
    for o in optimizers:
        r = per_opt.loc[o]
        lines.append(f"| {o} | {r.diversity_top100:.3f} | {r.sa_top100:.2f} | {r.novelty_top100:.3f} | "
                     f"{r.wall_time_s:.0f} |")
    return "\n".join(lines), sums


def asked(run_dir: Path) -> tuple[list, dict]:
    """The asked trials of a finished run (ask order) and its stored optimizer settings; ``([], {})``
    for a run without a summary (not finished)."""
    from bbo.study import TrialSource

    if not (run_dir / "summary.json").exists():
        return [], {}
    run = load_run(run_dir)
    trials = sorted((t for t in run.trials if t.source is TrialSource.ASKED), key=lambda t: t.number)
    return trials, (run.info.get("optimizer_config") or {}).get("settings", {})


def _seed_tasks(out: Path, seed: int) -> list[str]:
    return sorted({p.parent.parent.parent.name for p in out.glob(f"*/*/seed{seed}/journal.db")})


def reach(out: Path, optimizers: tuple[str, ...] = ("random-prior", "sqdf", "pgraft"), seed: int = 0) -> str:
    """The policy's reach: the mean oracle value of each round's asked molecules (rounds 1, 5 and
    10), one seed, per task: how far fine-tuning moves the proposals from the prior's."""
    lines = ["| task | " + " | ".join(f"{o} r1 / r5 / r10" for o in optimizers) + " |",
             "|---" * (len(optimizers) + 1) + "|"]
    for task in _seed_tasks(out, seed):
        cells = []
        for o in optimizers:
            run_dir = out / task / o / f"seed{seed}"
            means = round_means(load_run(run_dir)) if (run_dir / "summary.json").exists() else {}
            if not all(r in means for r in (0, 4, 9)):
                cells.append("")
                continue
            cells.append(" / ".join(f"{means[r]:.3f}" for r in (0, 4, 9)))
        if any(cells):
            lines.append(f"| {task.removeprefix('pmo_')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


OUTSIDE_OFFSPRING = {"botorch": "reference", "botorch-spread": "reference"}  # GP-BO: uniform MOSES draws


def sources(out: Path, optimizers: tuple[str, ...] = ("botorch", "botorch-spread", "sqdf", "sqdf-spread", "sqdf-refstart", "pgraft"),
            seed: int = 0) -> str:
    """What came from outside the offspring of the best told molecules where a GP chose the
    batches: per task, the share of the GP-chosen molecules (those asked after the first
    ``selection_start`` or ``n_initial``) that were the fine-tuned policy's samples (GP-BO: uniform
    MOSES draws, the part of its pool the policy replaces), and how many of the run's ten best
    molecules came from there, one seed. Runs whose trials carry no source are left blank."""
    what = {o: OUTSIDE_OFFSPRING.get(o, "policy") for o in optimizers}
    lines = ["| task | " + " | ".join(f"{o}: {what[o]} share of GP picks / of the top 10" for o in optimizers) + " |",
             "|---" * (len(optimizers) + 1) + "|"]
    shares: dict[str, list[float]] = {o: [] for o in optimizers}
    for task in _seed_tasks(out, seed):
        cells = []
        for o in optimizers:
            trials, settings = asked(out / task / o / f"seed{seed}")
            start = int(settings.get("selection_start", settings.get("n_initial", 0)))
            picked = [t.metadata.get("source") for t in trials[start:]]
            if not picked or None in picked:
                cells.append("")
                continue
            sign = -1.0 if settings.get("direction") == "minimize" else 1.0
            scored = [t for t in trials if t.value is not None]
            best = sorted(scored, key=lambda t: -sign * t.value)[:10]
            share = picked.count(what[o]) / len(picked)
            shares[o].append(share)
            cells.append(f"{share:.2f} / {sum(t.metadata.get('source') == what[o] for t in best)}")
        if any(cells):
            lines.append(f"| {task.removeprefix('pmo_')} | " + " | ".join(cells) + " |")
    means = [f"{sum(v) / len(v):.2f}" if v else "" for v in shares.values()]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    return "\n".join(lines)


def plot(sums: pd.Series, path: Path, n_tasks: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(sums.index, sums.values, color="#4c72b0")
    for i, v in enumerate(sums.values):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(f"sum of top-10 AUC ({n_tasks} tasks)")
    ax.set_title("PMO at 1,000 oracle calls")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--reach", action="store_true", help="also the per-round mean of the generative proposals")
    parser.add_argument("--seed", type=int, default=0, help="the seed whose journals --reach and --sources read")
    parser.add_argument("--sources", action="store_true",
                        help="also what share of the GP-chosen molecules the fine-tuned policy (GP-BO: MOSES draws) proposed")
    parser.add_argument("--recorded", type=Path, nargs="*", default=[],
                        help="recorded per-run results (CSV, runs.csv form) to merge beneath the journals' runs")
    parser.add_argument("--record", type=Path, default=None, help="write the merged finished runs to this CSV")
    parser.add_argument("--table-seed", type=int, default=None,
                        help="tabulate this seed's runs only (an ablation measured on one seed beside its rows)")
    args = parser.parse_args()
    df, unfinished = finished_summaries(args.out)
    df = with_recorded(df, args.recorded)
    if args.record is not None:
        record_summaries(df, args.record)
    if args.table_seed is not None:
        df = df[df.seed == args.table_seed]
    if df.empty:
        raise SystemExit(f"no finished runs under {args.out}")
    text, sums = table(df)
    print(text)
    print(f"\n{len(df)} finished runs, seeds {sorted(set(df.seed))}; {unfinished} unfinished left out")
    if args.reach:
        print("\n" + reach(args.out, seed=args.seed))
    if args.sources:
        print("\n" + sources(args.out, seed=args.seed))
    if args.plot:
        plot(sums, args.plot, int(df.groupby("task").optimizer.nunique().eq(len(sums)).sum()))


if __name__ == "__main__":
    main()
