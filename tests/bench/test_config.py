"""Config validation: one readable line naming the field and the allowed values."""

import pytest

from bbo.bench.config import ConfigError, load_config, parse_config

GOOD = {"tasks": ["pmo/qed"], "budget": 10, "optimizers": [{"kind": "random", "batch_size": 5}]}


def _err(**changes):
    with pytest.raises(ConfigError) as info:
        parse_config({**GOOD, **changes})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_config_and_task_forms():
    cfg = parse_config({**GOOD, "tasks": ["pmo/qed", {"name": "similarity", "target": "CCO"}]})
    assert [t.name for t in cfg.tasks] == ["pmo/qed", "similarity"]
    assert cfg.tasks[1].kwargs == {"target": "CCO"} and cfg.tasks[1].slug == "similarity-target=CCO"
    assert cfg.optimizers[0].settings == {"batch_size": 5}


def test_errors_name_field_and_allowed_values():
    assert "tasks.0.name: unknown oracle 'pmo/nope'; allowed: " in _err(tasks=["pmo/nope"])
    assert "pmo/qed" in _err(tasks=["pmo/nope"])
    msg = _err(optimizers=[{"kind": "rand"}])
    assert "optimizers.0: unknown optimizer 'rand'; allowed: " in msg and "random" in msg.split("allowed: ")[1]
    msg = _err(optimizers=[{"kind": "random", "bacth_size": 5}])
    assert "unknown setting 'bacth_size'" in msg and "allowed: batch_size" in msg
    assert "optimizers.0.batch_size: Input should be a valid integer" in _err(optimizers=[{"kind": "random", "batch_size": "x"}])
    assert "budget: Input should be greater than 0 (got -1)" in _err(budget=-1)
    assert "colour: unknown key; allowed: budget, executor, name" in _err(colour=1)
    assert "executor.kind: Input should be 'local'" in _err(executor={"kind": "slurm"})


def test_missing_field_and_duplicate_labels():
    with pytest.raises(ConfigError, match="budget: required field is missing"):
        parse_config({k: v for k, v in GOOD.items() if k != "budget"})
    assert "give each a distinct 'label'" in _err(optimizers=[{"kind": "random"}, {"kind": "random"}])


def test_yaml_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text("tasks: [pmo/qed]\nbudget: 10\noptimizers: [{kind: random}]\n")
    assert load_config(good, budget=20, seed=None).budget == 20


def test_shipped_benchmark_configs_are_valid():
    """Every YAML under benchmarks/ loads: settings match the optimizers' constructors, tasks exist."""
    from pathlib import Path

    from bbo.bench.config import load_config

    configs = sorted((Path(__file__).parents[2] / "benchmarks").glob("*.yaml"))
    assert configs
    for path in configs:
        cfg = load_config(path)
        assert cfg.optimizers and cfg.tasks, path
