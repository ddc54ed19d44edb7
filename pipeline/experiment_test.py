"""Unit tests of the experiment runner's metrics, results.csv handling and summary (no pipeline);
tests/experiment_test.py runs it on the shared e2e pipeline."""
import csv
import os

import numpy as np
import pytest

from pipeline import experiment

from schemas import features
from pipeline.config import RunConfig


def test_slice_metrics_exact_auc_and_tail():
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    scores = np.array([.9, .1, .8, .2, .3, .7, .6, .4])
    is_new = np.array([0, 0, 0, 0, 1, 1, 0, 0])
    counts = np.array([2, 2, 9, 9, 0, 0, 4, 1])
    m = experiment.slice_metrics(labels, scores, is_new, counts)
    assert m["num_eval"] == 8 and m["num_new_items"] == 2 and m["num_existing_items"] == 6
    assert m["num_tail"] == 4  # counts 1..4 among existing items
    assert m["auc_existing_items"] == 1.0
    assert m["auc_new_items"] == 0.0
    assert m["auc_tail"] == 1.0
    assert m["auc_overall"] == pytest.approx(13 / 16)


def test_auc_is_none_for_one_class_or_empty_slices():
    m = experiment.slice_metrics(np.array([1, 1, 0]), np.array([.5, .4, .3]),
                                 np.array([1, 1, 0]), np.array([0, 0, 7]))
    assert m["auc_new_items"] is None and m["auc_existing_items"] is None
    assert m["auc_tail"] is None and m["num_tail"] == 0
    assert m["auc_overall"] == 1.0


def test_interaction_counts_by_fingerprint():
    counts = experiment.count_interactions(np.array([5, 3, 5, 2 ** 61, 5]))
    got = experiment.lookup_counts(counts, np.array([5, 3, 4, 2 ** 61, 0, 2 ** 62 - 1]))
    np.testing.assert_array_equal(got, [3, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(
        experiment.lookup_counts(experiment.count_interactions(np.array([], np.int64)), [1]), [0])


def test_model_features_cover_each_representation():
    for rep in features.REPRESENTATIONS:
        with_h = experiment.model_features(rep, 512, True)
        without = experiment.model_features(rep, 512, False)
        assert features.LABEL in without and set(without) < set(with_h)
        assert not any(n.startswith("history") for n in without)
    assert features.history_spm_pieces(1024) in experiment.model_features(features.SID_SPM, 1024, True)
    with pytest.raises(ValueError):
        experiment.model_features("nope", 512, True)


def test_budget_not_prepared_is_a_clear_error(tmp_path):
    base = RunConfig(table_budgets=(512,), item_table_size=1024, results_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"not prepared.*\[512, 1024\]"):
        experiment.run_experiment(base, budgets=(512, 4096), out_dir=str(tmp_path / "e"))


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
            experiment.append_result(out, _row("random_hash", b, "with", seed, base_auc, .5))
            experiment.append_result(out, _row("sid_ngram_1", b, "with", seed, sid_auc, .6))
            experiment.append_result(out, _row("dense_content", b, "with", seed, dense_auc, .6))
        experiment.append_result(out, _row("random_hash", 512, "without", seed, base_auc, .5))
    with open(os.path.join(out, experiment.RESULTS_FILE)) as f:
        header = next(csv.reader(f))
    assert header[:8] == ["representation", "table_budget", "history", "seed", "auc_overall",
                          "auc_new_items", "auc_existing_items", "auc_tail"]
    rows = experiment.read_results(out)
    assert len(rows) == 21 and rows[0]["auc_tail"] is None and rows[0]["table_budget"] == 512

    summary = experiment.summarize(out)
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

    table = open(os.path.join(out, experiment.TABLE_FILE)).read()
    assert "2×" in table and "sid_ngram_1" in table and "Without user history" in table
    assert "**+0.0200 ± 0.0000** ✱" in table
    assert os.path.getsize(os.path.join(out, experiment.PLOT_FILE)) > 10_000
    assert os.path.exists(os.path.join(out, experiment.SUMMARY_FILE))


def test_config_key_ignores_paths_and_swept_fields_only():
    a = RunConfig()
    assert experiment.config_key(a) == experiment.config_key(RunConfig(
        output_dir="/x", results_dir="/y", representation=features.SID_SPM, item_table_size=512,
        use_history=False, runner="direct_multiprocess"))
    assert experiment.config_key(a) != experiment.config_key(RunConfig(max_epochs=3))
    assert experiment.config_key(a) != experiment.config_key(RunConfig(seed=1))
