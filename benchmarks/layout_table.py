"""The layout results table and pictures from a `bbo run`/`bbo compare benchmarks/layout_full.yaml` directory (or layout.yaml).

    python benchmarks/layout_table.py runs/layout-compare [--pictures docs] [--recorded CSV ...] [--record CSV]

Prints markdown: per task and optimizer the seeds finished, top-1 and top-10 AUC (mean ± sd over
seeds), the final top-10 mean, the naturalness of the top 100 and of the last 100 scored pages
(alignment, overlap, feature FD against the held-out generator pages, diversity, novelty; means
over seeds) and the wall time per run. With ``--pictures DIR`` writes ``DIR/layout_<task>.png``:
for seed 0, each optimizer's 4 best pages, two optimizers to a row. ``--recorded`` merges per-run
rows kept from runs made elsewhere (``benchmarks/results/``) beneath the journals' own;
``--record`` writes the merged rows back, so a table too long for one sitting is continued later.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bbo.bench.report import (
    finished_summaries,
    markdown_table,
    record_summaries,
    with_recorded,
)

ORDER = ["random", "random-prior", "genetic", "noise_bo", "sqdf", "pgraft"]
NATURAL = ["alignment", "overlap", "feature_fd", "diversity", "novelty"]


def pictures(out: Path, target: Path, per_method: int = 4) -> None:
    from bbo.bench.report import load_run, top_objects
    from bbo.domains import get_domain

    domain = get_domain("layout")
    target.mkdir(parents=True, exist_ok=True)
    for task_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        runs = [(d.parent.name, load_run(d)) for d in sorted(task_dir.glob("*/seed0")) if (d / "journal.db").exists()]
        runs.sort(key=lambda r: ORDER.index(r[0]) if r[0] in ORDER else len(ORDER))
        pages, legends = [], []
        for name, run in runs:
            best = [domain.from_json(o) for o in top_objects(run, per_method)]
            pages += best
            legends += [f"{name} #{i + 1}" for i in range(len(best))]
        if pages:
            domain.render(pages, target / f"layout_{task_dir.name}.png", legends=legends)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--pictures", type=Path, default=None)
    parser.add_argument("--recorded", type=Path, nargs="*", default=[],
                        help="recorded per-run results (CSV, runs.csv form) to merge beneath the journals' runs")
    parser.add_argument("--record", type=Path, default=None, help="write the merged finished runs to this CSV")
    args = parser.parse_args()
    df, unfinished = finished_summaries(args.out)
    df = with_recorded(df, args.recorded)
    if args.record is not None:
        record_summaries(df, args.record)
    print(markdown_table(df, ORDER, NATURAL))
    if unfinished:
        print(f"\n({unfinished} runs not finished, left out)")
    if args.pictures is not None:
        pictures(args.out, args.pictures)


if __name__ == "__main__":
    main()
