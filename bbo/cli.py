"""The ``bbo`` command line: run benchmarks from YAML, report on them, list oracles."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="Online black-box optimization with diffusion generators.", no_args_is_help=True, add_completion=False
)
# tables stay readable when the output is a file or a CI log (rich would fall back to 80 columns)
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="benchmark YAML file")],
    budget: Annotated[Optional[int], typer.Option(help="oracle calls per run (overrides the config)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="seed (overrides the config)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run directory (default runs/<name>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue an interrupted run from its journals")] = False,
    workers: Annotated[int, typer.Option(min=1, help="independent runs in parallel worker processes")] = 1,
    threads: Annotated[Optional[int], typer.Option(min=1, help="torch threads of each run's driver "
                                                               "(default: the cores / workers; env BBO_THREADS)")] = None,
    allow_module: Annotated[Optional[list[str]], typer.Option(help="a module whose oracle factories the config "
                                                                   "may call (trusted code; repeatable)")] = None,
) -> None:
    """Run every optimizer of CONFIG on every task; write journals, history, summary and plots.

    Exit code 0: done; 1: an oracle or internal error (its message is printed); 2: a usage or
    config error, with nothing written."""
    cfg = _load(config, allow_module, budget=budget, seed=seed)
    out = out or Path("runs") / cfg.name
    table = _run(cfg, out, seeds=None, resume=resume, workers=workers, threads=threads,
                 names=("summary", "best_so_far"))
    _print_table(table, f"{cfg.name}: {cfg.budget} oracle calls per run")
    console.print(f"results in [bold]{out}[/] (report.html, summary.csv, runs.csv, best_so_far.png, per-run journal.db)")


@app.command()
def compare(
    config: Annotated[Path, typer.Argument(help="benchmark YAML file")],
    seeds: Annotated[int, typer.Option(min=1, help="seeds per (task, optimizer): seed, seed+1, ...")] = 3,
    budget: Annotated[Optional[int], typer.Option(help="oracle calls per run (overrides the config)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run directory (default runs/<name>-compare)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="independent runs in parallel worker processes")] = 1,
    threads: Annotated[Optional[int], typer.Option(min=1, help="torch threads of each run's driver "
                                                               "(default: the cores / workers; env BBO_THREADS)")] = None,
    allow_module: Annotated[Optional[list[str]], typer.Option(help="a module whose oracle factories the config "
                                                                   "may call (trusted code; repeatable)")] = None,
    task: Annotated[Optional[list[str]], typer.Option(help="run only this task of the config (as "
                                                           "tables name it; repeatable)")] = None,
    optimizer: Annotated[Optional[list[str]], typer.Option(help="run only this optimizer of the config "
                                                                "(label, else kind; repeatable)")] = None,
) -> None:
    """Run each optimizer on each task for several seeds (resuming any journals already there),
    then write comparison.csv and comparison.png (over every run in the directory, so runs of a
    config made a few tasks or optimizers at a time, with --task and --optimizer, add up to one
    table). Exit codes as `bbo run`."""
    cfg = _only(_load(config, allow_module, budget=budget), task, optimizer)
    out = out or Path("runs") / f"{cfg.name}-compare"
    table = _run(cfg, out, seeds=[cfg.seed + i for i in range(seeds)], resume=True, workers=workers,
                 threads=threads, names=("comparison", "comparison"))
    _print_table(table, f"{cfg.name}: {cfg.budget} oracle calls per run, {seeds} seeds")
    console.print(f"results in [bold]{out}[/] (report.html, comparison.csv, comparison.png, runs.csv, per-run journal.db)")


def _only(cfg, tasks: list[str] | None, optimizers: list[str] | None):
    """``cfg`` restricted to the named tasks and optimizers (all where none is named)."""
    update = {}
    for field, names, name_of in (("tasks", tasks, lambda t: t.slug), ("optimizers", optimizers, lambda o: o.name)):
        if not names:
            continue
        items = getattr(cfg, field)
        known = [name_of(i) for i in items]
        unknown = [n for n in names if n not in known]
        if unknown:
            _fail(f"--{field[:-1]} {', '.join(unknown)}: not in the config; its {field}: {', '.join(known)}")
        update[field] = [i for i in items if name_of(i) in names]
    return cfg.model_copy(update=update) if update else cfg


def _load(config: Path, allow_modules: list[str] | None = None, **overrides):
    from bbo.bench.config import ConfigError, load_config

    try:
        return load_config(config, tuple(allow_modules or ()), **overrides)
    except ConfigError as err:
        _fail(str(err))


def _run(cfg, out: Path, *, seeds, resume: bool, workers: int, threads: int | None, names: tuple[str, str]):
    from bbo.bench.runner import RunConfigError, RunExistsError, RunProgress, run_benchmark
    from bbo.study import JournalError, JournalInUseError

    with _progress() as progress:
        bars: dict[str, int] = {}

        def update(p: RunProgress) -> None:
            if p.label not in bars:
                bars[p.label] = progress.add_task(p.label, total=p.budget, best="")
            best = "" if math.isnan(p.best) else f"best {p.best:.4g}"
            progress.update(bars[p.label], completed=p.calls, best=best)

        try:
            return run_benchmark(cfg, out, seeds=seeds, resume=resume, workers=workers, threads=threads,
                                 on_progress=update, report_names=names)
        except (RunExistsError, RunConfigError, JournalInUseError, JournalError) as err:
            _fail(str(err))
        except KeyboardInterrupt:
            _fail("interrupted; continue with --resume", code=130)
        except Exception as err:  # an oracle or internal error: its message, not a traceback
            _fail(f"{type(err).__name__}: {err} (what was told is in the journals; continue with --resume)",
                  code=1)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a directory written by `bbo run`")]) -> None:
    """Rebuild summary tables and plots of RUN_DIR from its journals."""
    from bbo.bench.report import find_runs, write_report, write_run_outputs

    runs = find_runs(run_dir)
    if not runs:
        _fail(f"no runs (journal.db files) under {run_dir}")
    skipped: list[str] = []
    for d in runs:
        try:
            write_run_outputs(d)
        except ValueError as err:  # an unreadable journal: skipped and listed, the others reported
            skipped.append(str(err))
    try:
        table = write_report(run_dir)
    except FileNotFoundError as err:
        table = None
        skipped.append(str(err))
    if table is not None:
        _print_table(table, str(run_dir))
    for reason in skipped:
        err_console.print(f"[bold yellow]skipped:[/] {reason}", highlight=False, soft_wrap=True)


@app.command()
def oracles() -> None:
    """List the registered oracles."""
    from oracles import list_oracles

    table = Table("name", "domain", "direction", "description")
    for info in list_oracles():
        table.add_row(info.name, info.domain, info.direction, info.description)
    console.print(table)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def pretrain(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="the domain to pretrain a prior for; its options follow "
                                               "(bbo pretrain DOMAIN --help)")],
) -> None:
    """Pretrain a diffusion prior with the domain's own recipe, resumably."""
    import importlib

    from bbo.domains import domain_class, domain_names

    try:
        cls = domain_class(domain)
    except ValueError as err:
        _fail(str(err))
    if not cls.pretrain_command:
        with_recipe = [n for n in domain_names() if domain_class(n).pretrain_command]
        _fail(f"the {domain!r} domain has no pretraining recipe; domains with one: {', '.join(with_recipe)}")
    module, _, attr = cls.pretrain_command.partition(":")
    command = typer.Typer(add_completion=False)
    command.command(name=domain)(getattr(importlib.import_module(module), attr))
    typer.main.get_command(command).main(args=list(ctx.args), prog_name=f"bbo pretrain {domain}")


@app.command()
def priors() -> None:
    """List the shipped priors with their figures."""
    from bbo.diffusion.checkpoint import SHIPPED_DIR, shipped_priors

    names = shipped_priors()
    if not names:
        console.print("no priors are shipped in this installation")
        return
    table = Table("name", "domain", "space", "trained", "figures")
    for name in names:
        directory = SHIPPED_DIR / name
        cfg = json.loads((directory / "config.json").read_text())
        info = cfg.get("info", {})
        figures = ", ".join(f"{k} {v}" for k, v in info.get("figures", {}).items())
        codec = json.loads((directory / "codec.json").read_text())["name"] if (directory / "codec.json").exists() else "tensor"
        domain = cfg.get("domain") or "vector"
        table.add_row(name, domain if isinstance(domain, str) else domain["name"],
                      f"{codec} {cfg['prior']['shape']}", info.get("trained_on", ""), figures)
    console.print(table)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("calls"),
        TextColumn("{task.fields[best]}"), TimeElapsedColumn(), console=err_console,
    )


def _print_table(table, title: str) -> None:
    # the domain's naturalness figures of the top 100, whatever the domain names them
    natural = [c for c in table.columns if c.endswith("_top100") and c != "validity_top100"]
    columns = ["task", "optimizer", "seeds", "top1_auc", "top10_auc", "top100_auc", "top10_mean",
               *natural, "calls", "wall_time_s"]
    shown = [c for c in columns if c in table.columns]
    out = Table(*shown, title=title)
    for _, row in table.iterrows():
        cells = []
        for c in shown:
            v = row[c]
            std = row.get(f"{c}_std")
            if c in ("calls", "seeds") and isinstance(v, (int, float)) and not math.isnan(v):
                cell = str(int(round(v)))
            elif isinstance(v, float):
                cell = "nan" if math.isnan(v) else f"{v:.3f}"
                if std is not None and not math.isnan(std) and row.get("seeds", 1) > 1:
                    cell += f" ± {std:.3f}"
            else:
                cell = str(v)
            cells.append(cell)
        out.add_row(*cells)
    console.print(out)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
