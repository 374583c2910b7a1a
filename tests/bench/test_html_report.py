"""report.html: one self-contained page per benchmark directory, checked as markup and in a real
browser (headless Chromium, where one is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bbo.cli import app

ROOT = Path(__file__).parents[2]


class _Page(HTMLParser):
    """Tags of interest with their attributes, and each table's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.tables: list[dict[str, object]] = []
        self._table: dict[str, object] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = {"class": attrs.get("class", ""), "rows": 0}
            self.tables.append(self._table)
        elif tag == "tr" and self._table is not None:
            self._table["rows"] += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    """Two molecule optimizers (MOSES draws and the GA) on two cheap tasks, two seeds: a finished
    run directory with its report."""
    tmp = tmp_path_factory.mktemp("report")
    cfg = tmp / "c.yaml"
    cfg.write_text("name: small\ntasks: [qed, logp]\nbudget: 40\nseed: 0\n"
                   "optimizers: [{kind: random, batch_size: 20}, {kind: genetic, batch_size: 20, population_size: 20}]\n"
                   "executor: {kind: local, n_workers: 0}\n")
    result = CliRunner().invoke(app, ["compare", str(cfg), "--seeds", "2", "--out", str(tmp / "out")])
    assert result.exit_code == 0, result.output
    return tmp / "out"


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_the_report_has_the_table_a_figure_per_task_and_a_grid_per_optimizer(report_run):
    path = report_run / "report.html"
    page = _parse(path)
    summary = [t for t in page.tables if "summary" in t["class"]]
    assert len(summary) == 1 and summary[0]["rows"] == 1 + 2 * 2  # header, then (task, optimizer) rows
    runs = [t for t in page.tables if "runs" in t["class"]]
    assert runs[0]["rows"] == 1 + 2 * 2 * 2  # one row per (task, optimizer, seed)
    assert sum(tag == "svg" for tag, _ in page.tags) == 2  # one figure per task
    grids = [a for tag, a in page.tags if tag == "div" and "data-optimizer" in a]
    assert sorted(a["data-optimizer"] for a in grids) == ["genetic", "genetic", "random", "random"]
    images = [a for tag, a in page.tags if tag == "img"]
    assert len(images) == 2 * len(grids)  # best and last of each
    text = path.read_text()
    assert "mean ± sd" in text or "±" in text
    assert "torch" in text and "cores" in text  # versions and hardware of the runs


def test_nothing_on_the_page_is_fetched(report_run):
    page = _parse(report_run / "report.html")
    links = [v for tag, a in page.tags for k, v in a.items() if k in ("src", "href", "xlink:href")]
    assert links, "the page should have inline images"
    assert all(v.startswith(("data:", "#")) for v in links), [v[:40] for v in links if not v.startswith(("data:", "#"))]
    assert not [tag for tag, a in page.tags if tag in ("link", "iframe") or (tag == "script" and "src" in a)]


def test_the_report_is_rebuilt_from_the_journals_alone(report_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(report_run, copy, ignore=shutil.ignore_patterns("*.html", "*.csv", "*.png", "*.json"))
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert _parse(copy / "report.html").tables[0]["rows"] == 5


def test_best_frame_shows_pictures_in_a_notebook(report_run):
    from bbo import load_optimizer

    opt = load_optimizer(report_run / "qed" / "random" / "seed0" / "journal.db")
    frame = opt.best_frame(3)
    assert list(frame["rank"]) == [1, 2, 3] and frame["value"].is_monotonic_decreasing
    assert "<img" in frame._repr_html_() and "data:image/png;base64," in frame["picture"].iloc[0]
    assert "picture" not in opt.best_frame(3, render=False)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


# runs once the page has loaded: sorts the summary by top-10 AUC (a click, as a person would) and
# reports what the browser laid out into the document's title, which --dump-dom prints
_PROBE = """<script>window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var decoded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var svgs = Array.prototype.slice.call(document.querySelectorAll('svg'))
    .filter(function (s) { var r = s.getBoundingClientRect(); return r.width > 100 && r.height > 100; }).length;
  var table = document.querySelector('table.summary');
  var col = Array.prototype.findIndex.call(table.tHead.rows[0].cells, function (c) { return c.textContent === 'top-10 AUC'; });
  table.tHead.rows[0].cells[col].click();
  var values = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return parseFloat(r.cells[col].dataset.value); });
  var sorted = values.every(function (v, i) { return i === 0 || values[i - 1] <= v; });
  var runs = document.querySelector('table.runs');
  runs.tHead.rows[0].cells[2].click();  // the runs table sorts by its own columns too (seed)
  var seeds = Array.prototype.map.call(runs.tBodies[0].rows, function (r) { return parseFloat(r.cells[2].dataset.value); });
  sorted = sorted && seeds.every(function (v, i) { return i === 0 || seeds[i - 1] <= v; });
  document.title = 'PROBE images=' + imgs.length + ' decoded=' + decoded + ' svgs=' + svgs + ' sorted=' + sorted;
});</script>"""


@pytest.mark.skipif(_chromium() is None, reason="no Chromium installed (.ci/run installs Debian's chromium with apt-get)")
def test_a_real_browser_renders_the_figures_and_grids_and_sorts_the_table(report_run, tmp_path):
    page = (report_run / "report.html").read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page, encoding="utf-8")
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--window-size=1400,2000", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*args, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"PROBE images=(\d+) decoded=(\d+) svgs=(\d+) sorted=(\w+)", dom)
    assert found, dom[-2000:]
    images, decoded, svgs, ordered = int(found[1]), int(found[2]), int(found[3]), found[4]
    assert images == 8 and decoded == images and svgs == 2 and ordered == "true"

    shot = tmp_path / "shot.png"
    subprocess.run([*args, f"--screenshot={shot}", (report_run / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    coloured = (pixels.max(axis=2) - pixels.min(axis=2) > 40).mean()  # lines, bands, atoms: not grey text
    assert coloured > 0.002, coloured
