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


# The first version of results.csv: every later version keeps these columns, in this order.
FIRST_COLUMNS = ("representation", "table_budget", "history", "seed",
                 "auc_overall", "auc_new_items", "auc_existing_items", "auc_tail",
                 "num_eval", "num_new_items", "num_existing_items", "num_tail",
                 "epochs_run", "best_epoch", "best_val_auc", "item_table_rows", "seconds",
                 "dataset", "config_key", "finished_at")
SLICE_AUCS = ("auc_overall", "auc_new_items", "auc_existing_items", "auc_tail", "auc_new_users",
              "auc_warm_users")
PROBES = ("auc_shuffled_labels", "auc_shuffled_labels_new_items", "auc_no_history",
          "auc_no_history_new_items")


def _baseline_row(name, auc):
    return {"representation": name, "table_budget": None, "history": None, "seed": None,
            **{k: auc for k in SLICE_AUCS}, "num_eval": 10, "num_new_items": 2,
            "num_existing_items": 8, "num_tail": 1, "num_new_users": 3, "num_warm_users": 7,
            "dataset": "synthetic", "config_key": "k", "finished_at": "t"}


def test_results_csv_columns_and_summary_keys_are_the_contract(tmp_path):
    assert results.COLUMNS == (
        "representation", "table_budget", "history", "seed",
        "auc_overall", "auc_new_items", "auc_existing_items", "auc_tail",
        "auc_new_users", "auc_warm_users",
        "auc_shuffled_labels", "auc_shuffled_labels_new_items",
        "auc_no_history", "auc_no_history_new_items",
        "num_eval", "num_new_items", "num_existing_items", "num_tail",
        "num_new_users", "num_warm_users",
        "epochs_run", "best_epoch", "best_val_auc", "item_table_rows", "seconds",
        "dataset", "config_key", "finished_at", "hparams")
    assert set(FIRST_COLUMNS) <= set(results.COLUMNS)  # added, never renamed
    out = str(tmp_path)
    for seed in (0, 1):
        results.append_result(out, _row("random_hash", 512, "with", seed, .7, .5))
        results.append_result(out, _row("sid_spm", 512, "with", seed, .71, .55))
    results.append_result(out, _baseline_row("baseline_item_rate", .6))
    with open(os.path.join(out, results.RESULTS_FILE)) as f:
        assert tuple(next(csv.reader(f))) == results.COLUMNS
    results.summarize(out)
    with open(os.path.join(out, results.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert set(summary) == {"dataset", "num_runs", "seeds", "config_keys", "total_run_seconds",
                            "headline_budget", "groups", "baselines", "evaluator_check", "plot",
                            "significance_rule"}
    assert summary["num_runs"] == 4 and summary["seeds"] == [0, 1]
    common = {"representation", "table_budget", "history", "seeds", "item_table_rows",
              "epochs_run_mean", "seconds_mean", *SLICE_AUCS, *PROBES}
    groups = {g["representation"]: g for g in summary["groups"]}
    assert set(groups) == {"random_hash", "sid_spm"}  # baselines are not groups
    assert set(groups["random_hash"]) == common
    # Δ vs random_hash for the slices, not for the probes
    assert set(groups["sid_spm"]) == common | {f"{k}_vs_random_hash" for k in SLICE_AUCS}
    assert set(groups["sid_spm"]["auc_overall_vs_random_hash"]) == {"mean", "std", "n",
                                                                    "significant"}
    assert summary["baselines"] == {"baseline_item_rate": {
        **{k: .6 for k in SLICE_AUCS}, "num_eval": 10, "num_new_items": 2,
        "num_existing_items": 8, "num_tail": 1, "num_new_users": 3, "num_warm_users": 7}}


def test_baselines_probes_and_new_slices_in_the_csv_and_the_table(tmp_path):
    out = str(tmp_path)
    for name, auc in (("baseline_user_rate", .61), ("baseline_item_rate", .62),
                      ("baseline_user_item_rate", .63)):
        results.append_result(out, _baseline_row(name, auc))
    for seed in (0, 1):
        for rep, auc in (("random_hash", .7), ("sid_spm", .72)):
            row = _row(rep, 512, "with", seed, auc, .5)
            row.update(auc_new_users=.55 + seed / 100, auc_warm_users=.71,
                       auc_shuffled_labels=.66, auc_shuffled_labels_new_items=.45,
                       auc_no_history=.6, auc_no_history_new_items=.44, num_new_users=3,
                       num_warm_users=7, hparams=json.dumps({"dropout": 0.2}, sort_keys=True))
            results.append_result(out, row)
            results.append_result(out, _row(rep, 512, "without", seed, auc - .05, .5))
    rows = results.read_results(out)
    base = [r for r in rows if results.is_baseline(r)]
    assert [r["representation"] for r in base] == ["baseline_user_rate", "baseline_item_rate",
                                                   "baseline_user_item_rate"]
    assert all(r["table_budget"] is None and r["history"] is None and r["seed"] is None
               and r["hparams"] is None for r in base)
    assert {results.run_key(r) for r in base} == {
        results.baseline_key(n) for n in ("baseline_user_rate", "baseline_item_rate",
                                          "baseline_user_item_rate")}
    with_hist = [r for r in rows if r["history"] == "with"]
    assert with_hist[0]["auc_shuffled_labels"] == .66 and with_hist[0]["num_new_users"] == 3
    assert json.loads(with_hist[0]["hparams"]) == {"dropout": 0.2}
    without = [r for r in rows if r["history"] == "without"]
    assert all(r["auc_shuffled_labels"] is None and r["auc_no_history"] is None for r in without)

    summary = results.summarize(out)
    assert summary["num_runs"] == 8
    sid = {(g["representation"], g["history"]): g for g in summary["groups"]}[("sid_spm", "with")]
    assert sid["auc_new_users"]["mean"] == pytest.approx(.555)
    assert sid["auc_shuffled_labels"]["mean"] == pytest.approx(.66)
    assert "auc_shuffled_labels_vs_random_hash" not in sid
    table = open(os.path.join(out, results.TABLE_FILE)).read()
    assert "AUC new users" in table and "AUC shuffled history labels" in table
    for name in ("baseline_user_rate", "baseline_item_rate", "baseline_user_item_rate"):
        # in the headline and in both history tables, beside the models
        assert table.count(f"| *{name}* |") == 3, name
    assert "| *baseline_item_rate* | – | – | – | 0.6200 | – |" in table
    assert os.path.getsize(os.path.join(out, results.PLOT_FILE)) > 10_000  # drawn with them


def test_the_plot_draws_each_baseline_but_a_constant_one():
    baselines = {"baseline_user_rate": {"auc_overall": .68, "auc_new_items": .69},
                 "baseline_item_rate": {"auc_overall": .62, "auc_new_items": .5},
                 "baseline_user_item_rate": {"auc_overall": None, "auc_new_items": .69}}
    assert results.baseline_lines(baselines, "auc_overall") == [
        ("baseline_user_rate", .68), ("baseline_item_rate", .62)]
    assert results.baseline_lines(baselines, "auc_new_items") == [
        ("baseline_user_rate", .69), ("baseline_user_item_rate", .69)]
    assert results.baseline_lines(None, "auc_overall") == []


def test_an_old_results_csv_reads_with_blank_new_columns_and_is_extended(tmp_path):
    out = str(tmp_path)
    path = os.path.join(out, results.RESULTS_FILE)
    old = _row("random_hash", 512, "with", 0, .7, .5)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(FIRST_COLUMNS))
        writer.writeheader()
        writer.writerow({c: "" if old[c] is None else old[c] for c in FIRST_COLUMNS})
    [row] = results.read_results(out)
    assert row["auc_overall"] == .7 and row["table_budget"] == 512
    assert row["auc_new_users"] is None and row["hparams"] is None and row["num_new_users"] is None
    assert results.run_key(row) == ("random_hash", 512, "with", 0)

    # The next row rewrites the header (the old row keeps its cells, the new ones blank).
    results.append_result(out, _baseline_row("baseline_user_rate", .6))
    with open(path) as f:
        assert tuple(next(csv.reader(f))) == results.COLUMNS
    rows = results.read_results(out)
    assert rows[0] == row and rows[1]["representation"] == "baseline_user_rate"
    assert not os.path.exists(path + ".tmp")

    # A file missing a column of the first version is still an error.
    with open(path, "w") as f:
        f.write("representation,seed\nrandom_hash,0\n")
    with pytest.raises(ValueError, match="missing columns"):
        results.read_results(out)
