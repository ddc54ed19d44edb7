"""`semids simulate` with the real pipelines on a tiny synthetic catalog (slow: twelve small
pipeline runs, then three more). Three spans, random_hash and sid_prefix_ngram, both modes;
stopped after span 2 and resumed in two processes; then one row rerun in a new work_dir, which
rebuilds its pipeline's state first. pipeline/simulate_test.py covers the same with a stand-in
runner."""
import csv
import dataclasses
import os

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPS = ["random_hash", "sid_prefix_ngram"]


def test_a_tiny_simulation_runs_span_by_span_and_resumes(tmp_path):
    from pipeline import simulate
    from tests.conftest import e2e_config

    base = dataclasses.replace(
        e2e_config(str(tmp_path), str(tmp_path / "unused")), dataset="synthetic", data_dir=None,
        synthetic_num_users=150, synthetic_num_items=120, synthetic_num_interactions=3000)
    out, work = str(tmp_path / "results"), str(tmp_path / "work")
    kwargs = dict(out_dir=out, work_dir=work, base=base, table_budget=128)
    simulate.simulate("synthetic", 3, REPS, stop_after_span=2, **kwargs)
    assert sorted({r["span"] for r in simulate.read_rows(out)}) == [1, 2]
    # The resume runs span 3 in two processes, one per representation (--jobs 2).
    rows = {simulate.row_key(r): r
            for r in simulate.simulate("synthetic", 3, REPS, jobs=2, **kwargs)}
    assert sorted(rows) == sorted(simulate.plan(3, REPS))  # each row once

    for rep in REPS:
        warm, scratch = rows[(3, "reuse_warm", rep)], rows[(3, "scratch", rep)]
        # Evaluated on the whole new span, with the items it brings.
        assert warm["eval_span"] == scratch["eval_span"] == 3
        assert warm["num_eval"] == scratch["num_eval"] and warm["num_new_items"] > 0
        # reuse_warm: the SID space of span 1, the span-2 model, trained on span 2 only.
        assert warm["warm_started"] and warm["base_model_span"] == 2
        assert warm["train_spans"] == "2" and scratch["train_spans"] == "1 2"
        assert warm["trained_rows"] < scratch["trained_rows"]
        assert not scratch["warm_started"] and scratch["base_model_span"] is None
    assert all(r["sid_changed_share"] == 0.0 for k, r in rows.items()
               if k[1] == "reuse_warm" and k[0] > 1)
    assert rows[(2, "reuse_warm", "random_hash")]["base_model_span"] == 1
    for mode in simulate.MODES:
        for rep in REPS:
            pipeline = dataclasses.replace(base, output_dir=str(tmp_path / "work" / "runs"),
                                           pipeline_name=simulate.pipeline_name("synthetic", mode, rep))
            assert simulate.completed_span(pipeline) == 3
    checks = simulate.summarize(out)
    assert set(checks["representations"]) == set(REPS)

    # A new work_dir, one scratch row to write again: its pipeline rebuilds spans 1-2 with
    # partial runs (Examples and catalog only), the other pipelines do nothing, and the row
    # trains on the same window as before.
    key = (3, "scratch", "random_hash")
    path = os.path.join(out, simulate.RESULTS_FILE)
    with open(path, newline="") as f:
        kept = [r for r in csv.DictReader(f) if simulate.row_key(r) != key]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=simulate.COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
    again = {simulate.row_key(r): r for r in simulate.simulate(
        "synthetic", 3, REPS, **dict(kwargs, work_dir=str(tmp_path / "new")))}
    assert sorted(again) == sorted(rows)
    for column in ("train_spans", "trained_rows", "num_eval", "num_new_items"):
        assert again[key][column] == rows[key][column], column
    assert again[key]["sid_changed_share"] is not None  # compared with the rebuilt catalog
    assert not os.path.exists(os.path.join(str(tmp_path / "new"), "runs", "metadata",
                                           simulate.pipeline_name("synthetic", "reuse_warm",
                                                                  "random_hash")))
