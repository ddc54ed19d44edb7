"""The grid runner's planning and argument checks (no pipeline; tests/experiment_test.py runs a
tiny experiment on the shared e2e pipeline)."""
import pytest

from pipeline.config import RunConfig
from models.ranking import representations
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


def test_plan_units_trains_once_per_table_layout():
    plan = run.plan_runs(["random_hash", "dense_content", "sid_ngram_1"], [512, 1024], ["with"],
                         [0, 1])
    units = run.plan_units(plan, lambda rep, budget: representations.table_layout(
        rep, budget, sid_length=5, codebook_size=64))
    assert units[:4] == [[("random_hash", 512, "with", 0)], [("random_hash", 512, "with", 1)],
                         [("random_hash", 1024, "with", 0)], [("random_hash", 1024, "with", 1)]]
    # no table / 5 x 64 exact rows at both budgets: one model per seed, written for both budgets
    for rep, units_of_rep in (("dense_content", units[4:6]), ("sid_ngram_1", units[6:])):
        assert units_of_rep == [[(rep, 512, "with", 0), (rep, 1024, "with", 0)],
                                [(rep, 512, "with", 1), (rep, 1024, "with", 1)]]
    # sid_prefix_ngram's deeper tables grow with the budget
    assert len(run.plan_units(run.plan_runs(["sid_prefix_ngram"], [512, 1024], ["with"], [0]),
                              lambda r, b: representations.table_layout(r, b, 5, 64))) == 2


def test_ml1m_trains_one_model_at_a_time_by_default():
    from pipeline.experiment.run import DEFAULT_WORKERS, default_workers
    assert default_workers("ml1m") == 1
    assert default_workers("ml100k") == DEFAULT_WORKERS


def test_ml1m_study_runs_with_history_only_by_default():
    from pipeline.experiment.run import default_histories
    assert default_histories("ml1m") == ["with"]
    assert default_histories("ml100k") == ["with", "without"]


def test_added_budgets_reuse_finished_runs_of_the_same_model():
    def layout(rep, budget):
        return representations.table_layout(rep, budget, sid_length=5, codebook_size=64)
    done = [{"representation": "dense_content", "table_budget": "4096", "history": "with",
             "seed": "0", "auc_overall": "0.77", "seconds": "290.0"},
            {"representation": "random_hash", "table_budget": "4096", "history": "with",
             "seed": "0", "auc_overall": "0.76", "seconds": "90.0"},
            {"representation": "baseline_user_rate", "table_budget": None, "history": None,
             "seed": None, "auc_overall": "0.70"}]
    todo = run.plan_runs(["dense_content", "random_hash"], [512, 1024], ["with"], [0, 1])
    copies, left = run.reuse_finished(todo, done, layout)
    # dense_content seed 0 has no table: its 4096 row stands for 512 and 1024, trained once
    assert [(c["representation"], c["table_budget"], c["seconds"], c["auc_overall"])
            for c in copies] == [("dense_content", 512, 0.0, "0.77"),
                                 ("dense_content", 1024, 0.0, "0.77")]
    # another seed, and random_hash's budget-sized table, still train
    assert left == [("dense_content", 512, "with", 1), ("dense_content", 1024, "with", 1)] + \
        run.plan_runs(["random_hash"], [512, 1024], ["with"], [0, 1])
