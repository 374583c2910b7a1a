"""Image and layout work needs no RDKit: only the molecule modules import it (the oracle registry
loads a family's module by the name's prefix), so such benchmarks run where RDKit is not installed
(a GPU machine that receives the repository without its 32 MB wheel)."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys

    class NoRDKit:
        def find_spec(self, name, path=None, target=None):
            if name == "rdkit" or name.startswith("rdkit."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")

    sys.meta_path.insert(0, NoRDKit())
    from bbo.bench.config import BenchmarkConfig
    from bbo.bench.runner import run_benchmark

    config = BenchmarkConfig.model_validate({
        "name": "no-rdkit", "budget": 20, "seed": 0,
        "tasks": [{"name": "layout/overlap"}, {"name": "image/symmetry"}],
        "optimizers": [{"kind": "random", "batch_size": 10}],
    })
    summary = run_benchmark(config, sys.argv[1])
    assert len(summary) == 2, summary
    assert "rdkit" not in sys.modules
    try:
        BenchmarkConfig.model_validate({**config.model_dump(), "tasks": [{"name": "pmo/qed"}]})
    except Exception as err:  # a molecule task still says what is missing
        assert "rdkit" in str(err), err
    else:
        raise AssertionError("a molecule task validated without RDKit")
    print("ok")
""")


def test_image_and_layout_benchmarks_run_without_rdkit(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "runs")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
