"""The experiment runner (pipeline/experiment/) on the shared small synthetic pipeline run:
its in-process metrics equal the Evaluator's, and a tiny experiment is resumable."""
import csv
import dataclasses
import json
import os

import pytest

from pipeline import baselines, experiment, report
from pipeline import pipeline as pipeline_lib
from pipeline.experiment import data, metrics, results
from schemas import features

pytestmark = pytest.mark.e2e

CONTRACT_COLUMNS = ("representation", "table_budget", "history", "seed", "auc_overall",
                    "auc_new_items", "auc_existing_items", "auc_tail", "auc_new_users",
                    "auc_warm_users", "auc_shuffled_labels", "auc_shuffled_labels_new_items",
                    "auc_no_history", "auc_no_history_new_items", "hparams")


def _check_against_evaluator(config):
    from pipeline.run import run_pipeline
    run_metrics = run_pipeline(config, quiet=True)  # cached: makes this config's run the newest
    check = metrics.evaluator_check(data.base_run_artifacts(config, run_metrics))
    # Every slice of the Evaluator is compared, or said why not; the flags InteractionFeatures
    # adds (is_tail_item, is_new_user) are in the Evaluator's slices and the Transform output.
    assert set(check["evaluator"]) | set(check["not_compared"]) == set(metrics.EVALUATOR_SLICES)
    assert {"auc_tail", "auc_warm_users"} <= set(check["evaluator"]), check["not_compared"]
    for key in check["evaluator"]:
        tfma = check["evaluator"][key]
        assert tfma is not None, (key, check)
        # the experiment's path (transformed eval rows, the model in-process) gives the same
        # exact AUC as the serving signature ...
        assert check["in_process"][key] == pytest.approx(check["serving_signature"][key], abs=1e-6)
        # ... within 1e-3 of TFMA's, or (tiny slices) within what bucketing alone can move it
        allowed = max(metrics.EVALUATOR_TOLERANCE, check["bucket_tie_bound"][key]) + 1e-9
        assert check["abs_diff"]["in_process"][key] <= allowed, (key, check)
    assert check["explained_by_bucketing"]
    assert check["in_process"]["num_eval"] == check["serving_signature"]["num_eval"] == run_metrics["num_eval"]
    assert check["max_abs_score_diff_sorted"] < 1e-5  # the same scores, row order aside
    return check


def test_in_process_metrics_equal_the_evaluators(e2e_run):
    config, _, _ = e2e_run
    _check_against_evaluator(config)


@pytest.mark.slow
def test_in_process_metrics_equal_the_evaluators_on_the_default_config():
    """The default configuration (MovieLens-100K, random_hash, B=10000): `make test-all`."""
    from pipeline.config import RunConfig
    check = _check_against_evaluator(RunConfig())
    assert check["ok"], check  # every slice within 1e-3 of TFMA's AUC


def test_tiny_experiment_writes_results_resumes_and_summarizes(e2e_run, tmp_path):
    config, _, _ = e2e_run
    out = str(tmp_path / "experiment")
    budget = config.item_table_size
    kwargs = dict(representations=(features.RANDOM_HASH, features.SID_NGRAM_1), budgets=(budget,),
                  histories=("with",), seeds=(0,), out_dir=out, quiet=True, check_evaluator=False)
    logs = []
    rows = experiment.run_experiment(config, log=logs.append, **kwargs)
    models = [r for r in rows if not results.is_baseline(r)]
    assert [(r["representation"], r["table_budget"], r["history"], r["seed"]) for r in models] == [
        (features.RANDOM_HASH, budget, "with", 0), (features.SID_NGRAM_1, budget, "with", 0)]
    path = os.path.join(out, experiment.RESULTS_FILE)
    with open(path) as f:
        header = next(csv.reader(f))
    assert all(c in header for c in CONTRACT_COLUMNS)
    for r in models:
        assert 0.0 <= r["auc_overall"] <= 1.0
        assert r["num_eval"] == r["num_new_items"] + r["num_existing_items"]
        assert r["num_tail"] <= r["num_existing_items"]
        assert r["num_eval"] == r["num_new_users"] + r["num_warm_users"]
        assert r["epochs_run"] >= 1 and r["item_table_rows"] > 0
        assert all(0.0 <= r[k] <= 1.0 for k in ("auc_warm_users", "auc_shuffled_labels",
                                                 "auc_no_history"))
        assert json.loads(r["hparams"]) == pipeline_lib.ranking_config(
            dataclasses.replace(config, representation=r["representation"])).hparams()
    assert any("[2/2]" in line and "ETA" in line for line in logs)

    # The baselines: one row each (budget, history and seed blank), the same AUCs as the base
    # run's metrics.json.
    base_rows = {r["representation"]: r for r in rows if results.is_baseline(r)}
    assert list(base_rows) == list(baselines.BASELINES)
    with open(os.path.join(config.results_path, report.METRICS_FILE)) as f:
        on_disk = json.load(f)
    for name, r in base_rows.items():
        assert r["table_budget"] is None and r["history"] is None and r["seed"] is None
        for k in baselines.BASELINE_AUC_KEYS:
            want = on_disk["baselines"][name][k]
            assert r[k] == (None if want is None else pytest.approx(want, abs=1e-6)), (name, k)

    # A rerun skips both finished runs and runs nothing.
    logs.clear()
    again = experiment.run_experiment(config, log=logs.append, **kwargs)
    assert again == rows
    assert any("2 already in" in line and "0 to run" in line for line in logs)

    # An interrupted sitting, resumed by two worker processes (one TF thread each) that append to
    # the same file: only the missing rows run again, with the AUCs of the in-process runs.
    with open(path) as f:
        lines = f.readlines()
    with open(path, "w") as f:
        f.writelines(lines[:-2])
    logs.clear()
    resumed = experiment.run_experiment(config, log=logs.append, workers=2, **kwargs)
    assert any("2 to run" in line for line in logs)
    assert any("2 models to train over 2 worker processes" in line for line in logs)
    assert len(resumed) == len(rows)
    assert len([r for r in resumed if results.is_baseline(r)]) == len(baselines.BASELINES)
    assert resumed[:-2] == rows[:-2]
    by_rep = {r["representation"]: r for r in resumed[-2:]}
    for r in rows[-2:]:
        for k in ("auc_overall", "auc_new_items", "auc_shuffled_labels"):
            assert by_rep[r["representation"]][k] == pytest.approx(r[k], abs=2e-3), k

    for name in (experiment.TABLE_FILE, experiment.PLOT_FILE, experiment.SUMMARY_FILE):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, experiment.TABLE_FILE)) as f:
        table = f.read()
    assert features.SID_NGRAM_1 in table and "vs random_hash" in table
    assert all(f"*{name}*" in table for name in baselines.BASELINES)
    assert "AUC new users" in table and "AUC shuffled history labels" in table

    # Rows of another base config are not mixed in.
    with pytest.raises(ValueError, match="another base config"):
        experiment.run_experiment(dataclasses.replace(config, max_epochs=1), **kwargs)
