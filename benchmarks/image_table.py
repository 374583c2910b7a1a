"""The image results table and pictures from a `bbo run`/`bbo compare benchmarks/image_full.yaml` directory (or image.yaml).

    python benchmarks/image_table.py runs/image-compare [--pictures docs] [--recorded CSV ...] [--record CSV]

Prints markdown: per task and optimizer the seeds finished, top-1 and top-10 AUC (mean ± sd over
seeds), the final top-10 mean, the naturalness of the top 100 and of the last 100 scored images
(classifier FD against the held-out digits, confidence, diversity, novelty; means over seeds) and
the wall time per run. With ``--pictures DIR`` writes ``DIR/image_<task>.png``: for seed 0, one
row per optimizer with its 10 best images, then its last 10. With ``--rounds`` also the mean
oracle value of the batches asked in rounds 2, 3, 5 and 10, seed 0: how fast each method moves.
``--recorded`` merges per-run rows kept from runs made elsewhere (``benchmarks/results/``)
beneath the journals' own; ``--record`` writes the merged rows back, so a table too long for one
sitting is continued later.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bbo.bench.report import (
    finished_summaries,
    load_run,
    markdown_table,
    record_summaries,
    round_means,
    with_recorded,
)

ORDER = ["random", "random-prior", "noise_bo", "noise_cma", "sqdf", "pgraft"]
#: the per-round table: rounds 2, 3, 5 and 10 (round 1 is the prior's batch for every generative method)
ROUNDS = (1, 2, 4, 9)
NATURAL = ["classifier_fd", "confidence", "diversity", "novelty"]


def pictures(out: Path, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bbo.bench.report import last_objects, load_run, top_objects
    from bbo.domains import get_domain

    domain = get_domain("image")
    target.mkdir(parents=True, exist_ok=True)
    for task_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        runs = [(d.parent.name, load_run(d)) for d in sorted(task_dir.glob("*/seed0")) if (d / "journal.db").exists()]
        runs.sort(key=lambda r: ORDER.index(r[0]) if r[0] in ORDER else len(ORDER))
        if not runs:
            continue
        fig, axes = plt.subplots(len(runs), 21, figsize=(13, 0.75 * len(runs) + 0.4), squeeze=False)
        for row, (name, run) in enumerate(runs):
            images = [domain.from_json(o) for o in top_objects(run, 10)] + [None]
            images += [domain.from_json(o) for o in last_objects(run, 10)]
            for col, ax in enumerate(axes[row]):
                ax.axis("off")
                if col < len(images) and images[col] is not None:
                    ax.imshow(images[col][0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            axes[row, 0].text(-1.0, 0.5, name, transform=axes[row, 0].transAxes, ha="right", va="center", fontsize=8)
        fig.suptitle(f"{task_dir.name}, seed 0: the 10 best images | the last 10 scored", fontsize=9)
        fig.subplots_adjust(left=0.12, right=0.99, top=0.9, bottom=0.02, wspace=0.05, hspace=0.1)
        fig.savefig(target / f"image_{task_dir.name}.png", dpi=80)
        plt.close(fig)


def rounds_table(out: Path) -> str:
    """Per task and optimizer (seed 0, learning methods and the prior sampled without learning),
    the mean oracle value of the batches asked in ``ROUNDS``."""
    lines = ["| task | method | " + " | ".join(f"round {r + 1}" for r in ROUNDS) + " |",
             "|---|---" + "|---" * len(ROUNDS) + "|"]
    for task_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        for name in ORDER[1:]:
            run_dir = task_dir / name / "seed0"
            if not (run_dir / "summary.json").exists():
                continue
            means = round_means(load_run(run_dir))
            cells = [f"{means[r]:.3f}" if r in means else "" for r in ROUNDS]
            lines.append(f"| {task_dir.name} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--pictures", type=Path, default=None)
    parser.add_argument("--recorded", type=Path, nargs="*", default=[],
                        help="recorded per-run results (CSV, runs.csv form) to merge beneath the journals' runs")
    parser.add_argument("--record", type=Path, default=None, help="write the merged finished runs to this CSV")
    parser.add_argument("--rounds", action="store_true", help="also the per-round mean of the asked batches")
    args = parser.parse_args()
    df, unfinished = finished_summaries(args.out)
    df = with_recorded(df, args.recorded)
    if args.record is not None:
        record_summaries(df, args.record)
    print(markdown_table(df, ORDER, NATURAL))
    if unfinished:
        print(f"\n({unfinished} runs not finished, left out)")
    if args.rounds:
        print("\n" + rounds_table(args.out))
    if args.pictures is not None:
        pictures(args.out, args.pictures)


if __name__ == "__main__":
    main()
