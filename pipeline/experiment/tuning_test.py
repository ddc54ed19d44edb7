import dataclasses
import json
import os
import subprocess

import numpy as np
import pytest

from models.ranking import tuned
from models.ranking.config import TUNABLE_FIELDS, RankingConfig
from pipeline import pipeline as pipeline_lib
from pipeline.config import RunConfig
from pipeline.experiment import tuning
from pipeline.tables import upgrade_csv_header


def test_candidates_start_with_the_defaults_and_are_distinct_and_seeded():
    c = tuning.candidates(8)
    assert c[0] == {name: getattr(RankingConfig(), name) for name in TUNABLE_FIELDS}
    assert len({json.dumps(x, sort_keys=True) for x in c}) == 8 * 2
    assert c == tuning.candidates(8) and c != tuning.candidates(8, seed=1)
    space = {**tuning.SEARCH_SPACE, **tuning.CROSSED}
    for x in c:
        assert all(x[k] in space[k] for k in TUNABLE_FIELDS)


def test_crossed_switches_double_the_drawn_points_and_keep_earlier_trial_numbers():
    """The drawn points come first with the switch at its default (the trials of a tuning before
    the switch existed, numbered as then), then again with it on."""
    c = tuning.candidates(6)
    assert [x["user_rate_offset"] for x in c] == [False] * 6 + [True] * 6
    assert [dict(x, user_rate_offset=None) for x in c[:6]] == \
        [dict(x, user_rate_offset=None) for x in c[6:]]
    old_row = {"learning_rate": 0.003, "use_user_id": True}
    assert tuning.complete(old_row)["user_rate_offset"] is False
    assert tuning.complete(old_row)["learning_rate"] == 0.003


def test_objective_weighs_existing_and_new_items_equally():
    aucs = {"val_auc_overall": 0.75, "val_auc_new_items": 0.6, "val_auc_existing_items": 0.8}
    assert tuning.objective(aucs) == 0.7
    assert abs(tuning.objective(aucs, "overall_new") - 0.675) < 1e-12  # the first definition
    no_new = {"val_auc_overall": 0.8, "val_auc_new_items": None, "val_auc_existing_items": 0.8}
    assert tuning.objective(no_new) == 0.8
    with pytest.raises(ValueError, match="unknown definition"):
        tuning.objective(aucs, "overall")


def test_trial_aucs_cut_validation_into_new_and_existing_items():
    labels = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.7, 0.3])
    new = np.array([1, 1, 0, 0, 0, 0])
    aucs = tuning.trial_aucs(labels, scores, new)
    assert aucs["val_auc_new_items"] == 1.0
    assert aucs["val_auc_existing_items"] == 0.25  # 1 of its 4 pairs ordered right
    assert aucs["val_auc_overall"] == pytest.approx(6 / 9)
    assert tuning.trial_aucs(labels, scores, np.zeros(6))["val_auc_new_items"] is None


def test_best_settings_per_representation_and_merge_into_the_file(tmp_path):
    rows = [{"representation": "random_hash", "trial": "0", "objective": "0.70",
             "hparams": json.dumps({"learning_rate": 0.001})},
            {"representation": "random_hash", "trial": "1", "objective": "0.72",
             "hparams": json.dumps({"learning_rate": 0.003})},
            {"representation": "sid_spm", "trial": "0", "objective": "0.71",
             "hparams": json.dumps({"dropout": 0.3})}]
    assert tuning.best_settings(rows) == {"random_hash": {"learning_rate": 0.003},
                                          "sid_spm": {"dropout": 0.3}}
    path = str(tmp_path / "tuned.json")
    tuning.write_tuned("ml1m", rows[:1], {"objective": "o"}, path)
    tuning.write_tuned("ml100k", rows, {"objective": "o"}, path)
    everything = tuned.load_all(path)
    assert set(everything) == {"ml1m", "ml100k"}
    assert everything["ml100k"]["random_hash"] == {"learning_rate": 0.003}
    assert everything["ml100k"][tuned.META_KEY] == {"objective": "o"}
    # Retuning with only sid_spm's trials counting keeps random_hash's settings, and says so.
    tuning.write_tuned("ml100k", rows[2:], {"objective": "o2"}, path)
    entry = tuned.load_all(path)["ml100k"]
    assert entry["random_hash"] == {"learning_rate": 0.003}
    assert entry["sid_spm"] == {"dropout": 0.3}
    assert entry[tuned.META_KEY] == {"objective": "o2", "kept_from_earlier_tuning": ["random_hash"]}


def test_ranking_config_takes_tuned_settings_unless_the_run_sets_them(monkeypatch):
    monkeypatch.setattr(pipeline_lib, "tuned_hparams",
                        lambda dataset, rep: {"learning_rate": 0.0042, "attention": False})
    cfg = pipeline_lib.ranking_config(RunConfig())
    assert cfg.learning_rate == 0.0042 and cfg.attention is False
    assert cfg.dropout == RankingConfig().dropout  # not tuned: the model's default
    cfg = pipeline_lib.ranking_config(dataclasses.replace(RunConfig(), learning_rate=0.01))
    assert cfg.learning_rate == 0.01
    assert cfg.hparams()["learning_rate"] == 0.01


def test_the_tuning_run_holds_out_items_new_in_validation_in_its_own_pipeline():
    cfg = tuning.tuning_config(RunConfig())
    assert cfg.validation_new_item_fraction == tuning.VALIDATION_NEW_ITEM_FRACTION > 0
    assert cfg.pipeline_name == f"{RunConfig().pipeline_name}_tune30"
    assert tuning.tuning_config(RunConfig(), 0.1).pipeline_name.endswith("_tune10")


def test_a_trial_is_scored_by_its_objective_averaged_over_its_seeds():
    lr1, lr3 = json.dumps({"learning_rate": 0.001}), json.dumps({"learning_rate": 0.003})
    rows = [{"representation": "random_hash", "trial": "0", "seed": "0", "objective": "0.74",
             "hparams": lr1},
            {"representation": "random_hash", "trial": "0", "seed": "1", "objective": "0.68",
             "hparams": lr1},
            {"representation": "random_hash", "trial": "1", "seed": "0", "objective": "0.72",
             "hparams": lr3},
            {"representation": "random_hash", "trial": "1", "seed": "1", "objective": "0.72",
             "hparams": lr3}]
    # Trial 0 has the best single row, trial 1 the best mean.
    assert tuning.best_settings(rows) == {"random_hash": {"learning_rate": 0.003}}


def test_a_trials_file_from_before_the_seed_column_is_upgraded_in_place(tmp_path):
    path = str(tmp_path / "tuning.csv")
    old = [c for c in tuning.COLUMNS
           if c not in tuning.EARLIER_PROTOCOL and c != "val_auc_existing_items"]
    with open(path, "w") as f:
        f.write(",".join(old) + "\n")
        f.write("ml100k,sid_spm,10000,0,\"{}\",0.7,0.75,0.65,3,1,10.0\n")
    upgrade_csv_header(path, tuning.COLUMNS, tuning.EARLIER_PROTOCOL)
    with open(path) as f:
        assert f.readline().strip() == ",".join(tuning.COLUMNS)
    (row,) = tuning.read_trials(path)
    assert row["seed"] == "0" and row["validation_new_item_fraction"] == "0.1"
    assert row["codebook_size"] == "64" and row["objective_definition"] == "overall_new"
    assert row["representation_revision"] == "1"
    assert row["objective"] == "0.7" and row["val_auc_existing_items"] == ""
    upgrade_csv_header(path, tuning.COLUMNS, tuning.EARLIER_PROTOCOL)  # unchanged now
    assert tuning.read_trials(path) == [row]


def test_a_trial_claimed_by_a_live_process_is_skipped_and_a_stopped_ones_is_taken_over(tmp_path):
    out = str(tmp_path)
    claim = tuning.claim_trial(out, "trial a")
    assert claim is not None and open(claim).read() == str(os.getpid())
    tuning.release_trial(claim)
    assert not os.path.exists(claim)
    # Another process holds "trial b" while it lives; once it has stopped, its claim is stale.
    other = subprocess.Popen(["sleep", "30"])
    try:
        held = tuning.claim_trial(out, "trial b")
        with open(held, "w") as f:
            f.write(str(other.pid))
        assert tuning.claim_trial(out, "trial b") is None
    finally:
        other.kill()
        other.wait()
    assert tuning.claim_trial(out, "trial b") == held
    # No temporary files are left beside the claims.
    assert os.listdir(os.path.join(out, tuning.CLAIMS_DIR)) == [os.path.basename(held)]


def test_trials_count_only_at_the_tuning_runs_codebook_size_objective_and_revision():
    def row(rep, k, fraction="0.3", dataset="ml100k", definition=tuning.OBJECTIVE_DEFINITION,
            revision=None):
        return {"dataset": dataset, "representation": rep, "hparams": "{}", "objective": "0.7",
                "trial": "0", "seed": "0", "validation_new_item_fraction": fraction,
                "codebook_size": k, "objective_definition": definition,
                "representation_revision": revision or tuning.representation_revision(rep)}
    rows = [row("sid_spm", "64"), row("sid_spm", "16"), row("random_hash", "64"),
            row("dense_content", "64"), row("sid_spm", "16", fraction="0.1"),
            row("sid_spm", "16", dataset="ml1m"), row("sid_spm", "16", definition="overall_new"),
            row("random_hash", "64", definition="overall_new"),
            # random_hash hashed every id in revision 1: its trials tuned another model.
            row("random_hash", "64", revision="1")]
    kept = tuning.protocol_trials(rows, "ml100k", "0.3", "16")
    assert [(r["representation"], r["codebook_size"]) for r in kept] == [
        ("sid_spm", "16"), ("random_hash", "64"), ("dense_content", "64")]
    assert json.loads(kept[0]["hparams"]) == tuning.complete({})
