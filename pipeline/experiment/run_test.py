"""The grid runner's planning and argument checks (no pipeline; tests/experiment_test.py runs a
tiny experiment on the shared e2e pipeline)."""
import pytest

from pipeline.config import RunConfig
from pipeline.experiment import run


def test_budget_not_prepared_is_a_clear_error(tmp_path):
    base = RunConfig(table_budgets=(512,), item_table_size=1024, results_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"not prepared.*\[512, 1024\]"):
        run.run_experiment(base, budgets=(512, 4096), out_dir=str(tmp_path / "e"))


def test_unknown_representation_and_history_setting_are_errors(tmp_path):
    base = RunConfig(results_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown representation"):
        run.run_experiment(base, representations=("nope",), out_dir=str(tmp_path / "e"))
    with pytest.raises(ValueError, match="history setting"):
        run.run_experiment(base, histories=("sometimes",), out_dir=str(tmp_path / "e"))


def test_plan_runs_is_representation_outermost():
    plan = run.plan_runs(["a", "b"], [512], ["with", "without"], [0, 1])
    assert plan[:4] == [("a", 512, "with", 0), ("a", 512, "with", 1),
                        ("a", 512, "without", 0), ("a", 512, "without", 1)]
    assert len(plan) == 8 and plan[4][0] == "b"
    assert run._histories([True, False, "with"]) == ["with", "without"]


def test_plan_units_trains_a_budget_free_representation_once_per_history_and_seed():
    plan = run.plan_runs(["random_hash", "dense_content"], [512, 1024], ["with"], [0, 1])
    units = run.plan_units(plan)
    assert units[:4] == [[("random_hash", 512, "with", 0)], [("random_hash", 512, "with", 1)],
                         [("random_hash", 1024, "with", 0)], [("random_hash", 1024, "with", 1)]]
    assert units[4:] == [[("dense_content", 512, "with", 0), ("dense_content", 1024, "with", 0)],
                         [("dense_content", 512, "with", 1), ("dense_content", 1024, "with", 1)]]
