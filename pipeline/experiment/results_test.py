"""results.csv, the summary (table.md, summary.json, the plot) and the config key, on
hand-written rows (no pipeline); tests/experiment_test.py runs the experiment on the shared e2e
pipeline."""
import csv
import json
import os

import pytest

from pipeline.config import RunConfig
from pipeline.experiment import results
from schemas import features


def _row(rep, budget, hist, seed, auc, new):
    return {"representation": rep, "table_budget": budget, "history": hist, "seed": seed,
            "auc_overall": auc, "auc_new_items": new, "auc_existing_items": auc,
            "auc_tail": None, "num_eval": 10, "num_new_items": 2, "num_existing_items": 8,
            "num_tail": 0, "epochs_run": 3, "best_epoch": 2, "best_val_auc": 0.7,
            "item_table_rows": budget, "seconds": 1.0, "dataset": "synthetic",
            "config_key": "k", "finished_at": "t"}


def test_summary_pairs_seeds_and_marks_consistent_differences(tmp_path):
    out = str(tmp_path)
    for seed, (base_auc, sid_auc, dense_auc) in enumerate([(.70, .72, .69), (.71, .73, .72), (.69, .71, .70)]):
        for b in (512, 1024):
            results.append_result(out, _row("random_hash", b, "with", seed, base_auc, .5))
            results.append_result(out, _row("sid_ngram_1", b, "with", seed, sid_auc, .6))
            results.append_result(out, _row("dense_content", b, "with", seed, dense_auc, .6))
        results.append_result(out, _row("random_hash", 512, "without", seed, base_auc, .5))
    with open(os.path.join(out, results.RESULTS_FILE)) as f:
        header = next(csv.reader(f))
    assert header[:8] == ["representation", "table_budget", "history", "seed", "auc_overall",
                          "auc_new_items", "auc_existing_items", "auc_tail"]
    rows = results.read_results(out)
    assert len(rows) == 21 and rows[0]["auc_tail"] is None and rows[0]["table_budget"] == 512

    summary = results.summarize(out)
    groups = {(g["representation"], g["table_budget"], g["history"]): g for g in summary["groups"]}
    sid = groups[("sid_ngram_1", 512, "with")]
    assert sid["auc_overall"]["mean"] == pytest.approx(.72) and sid["auc_overall"]["n"] == 3
    diff = sid["auc_overall_vs_random_hash"]
    assert diff["mean"] == pytest.approx(.02) and diff["std"] == pytest.approx(0, abs=1e-9)
    assert diff["significant"]  # +0.02 on every seed
    dense = groups[("dense_content", 512, "with")]["auc_overall_vs_random_hash"]
    assert dense["mean"] == pytest.approx(0.0033333, abs=1e-6) and not dense["significant"]
    assert "auc_overall_vs_random_hash" not in groups[("random_hash", 512, "with")]
    assert summary["headline_budget"] == 1024

    table = open(os.path.join(out, results.TABLE_FILE)).read()
    assert "2×" in table and "sid_ngram_1" in table and "Without user history" in table
    assert "**+0.0200 ± 0.0000** ✱" in table
    assert os.path.getsize(os.path.join(out, results.PLOT_FILE)) > 10_000
    assert os.path.exists(os.path.join(out, results.SUMMARY_FILE))


def test_config_key_ignores_paths_and_swept_fields_only():
    a = RunConfig()
    assert results.config_key(a) == results.config_key(RunConfig(
        output_dir="/x", results_dir="/y", representation=features.SID_SPM, item_table_size=512,
        use_history=False, runner="direct_multiprocess"))
    assert results.config_key(a) != results.config_key(RunConfig(max_epochs=3))
    assert results.config_key(a) != results.config_key(RunConfig(seed=1))


def test_results_csv_columns_and_summary_keys_are_the_contract(tmp_path):
    assert results.COLUMNS == (
        "representation", "table_budget", "history", "seed",
        "auc_overall", "auc_new_items", "auc_existing_items", "auc_tail",
        "num_eval", "num_new_items", "num_existing_items", "num_tail",
        "epochs_run", "best_epoch", "best_val_auc", "item_table_rows", "seconds",
        "dataset", "config_key", "finished_at")
    out = str(tmp_path)
    for seed in (0, 1):
        results.append_result(out, _row("random_hash", 512, "with", seed, .7, .5))
        results.append_result(out, _row("sid_spm", 512, "with", seed, .71, .55))
    with open(os.path.join(out, results.RESULTS_FILE)) as f:
        assert tuple(next(csv.reader(f))) == results.COLUMNS
    results.summarize(out)
    with open(os.path.join(out, results.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert set(summary) == {"dataset", "num_runs", "seeds", "config_keys", "total_run_seconds",
                            "headline_budget", "groups", "evaluator_check", "plot",
                            "significance_rule"}
    aucs = ("auc_overall", "auc_new_items", "auc_existing_items", "auc_tail")
    common = {"representation", "table_budget", "history", "seeds", "item_table_rows",
              "epochs_run_mean", "seconds_mean", *aucs}
    groups = {g["representation"]: g for g in summary["groups"]}
    assert set(groups["random_hash"]) == common
    assert set(groups["sid_spm"]) == common | {f"{k}_vs_random_hash" for k in aucs}
    assert set(groups["sid_spm"]["auc_overall_vs_random_hash"]) == {"mean", "std", "n",
                                                                    "significant"}
