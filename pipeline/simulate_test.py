"""`semids simulate`'s planning, resumable results.csv and reading, with a stand-in for the
pipeline run (tests/simulate_e2e_test.py runs the real pipelines)."""
import argparse
import csv
import datetime
import json
import os
import signal
import time

import pytest

from pipeline import simulate
from pipeline.config import RunConfig
from pipeline.interrupts import stops_like_ctrl_c
from pipeline.interrupts_test import end, stopped_while_beam_waits
from pipeline.tables import upgrade_csv_header
from schemas import features

REPS = [features.RANDOM_HASH, features.SID_PREFIX_NGRAM]


def _base(tmp_path):
    return RunConfig(dataset="synthetic", synthetic_num_users=40, synthetic_num_items=30,
                     synthetic_num_interactions=900, output_dir=str(tmp_path / "outputs"),
                     results_dir=str(tmp_path / "results"))


class _FakeRunner:
    """Records the configs it is given; fails once on `fail_on` (a (span, mode, rep) key)."""

    def __init__(self, fail_on=None, finished=None):
        self.calls, self.fail_on = [], fail_on
        self.finished = finished if finished is not None else {}  # pipeline -> newest span

    def completed(self, config: RunConfig) -> int:
        return self.finished.get(config.pipeline_name, 0)

    def __call__(self, config: RunConfig):
        span = len(config.data_dir.split(os.sep)[-2].split("-")) and int(
            config.data_dir.split(os.sep)[-2].split("-")[1])
        mode = "reuse_warm" if config.warm_start else "scratch"
        key = (span, mode, config.representation)
        if key == self.fail_on:
            self.fail_on = None
            raise RuntimeError("interrupted")
        self.calls.append((key, config))
        self.finished[config.pipeline_name] = span
        auc = 0.7 + 0.01 * span + (0.004 if config.representation != features.RANDOM_HASH else 0)
        metrics = {"auc_overall": auc, "auc_new_items": auc - 0.05, "num_new_item_eval": 10,
                   "num_train": 100 * span, "seconds": 60.0 if config.warm_start else 100.0,
                   "blessed": True,
                   "baselines": {b: {"auc_overall": 0.7, "auc_new_items": 0.6}
                                 for b in ("baseline_user_rate", "baseline_item_rate",
                                           "baseline_user_item_rate")},
                   "probes": {"auc_shuffled_labels": auc - 0.01},
                   "spans": None if span == 1 else {
                       "window": list(range(1, span + 1)), "eval": span,
                       "train": [span - 1] if config.warm_start else list(range(1, span)),
                       "base_model": {"eval": span - 1} if config.warm_start else None},
                   "warm_started": config.warm_start and span > 1}
        sid_report = {"sid_space": {"sid_changed_share": 0.0 if config.warm_start else 0.2,
                                    "new_items": 3}}
        return metrics, sid_report


def test_run_config_per_mode(tmp_path):
    base = _base(tmp_path)
    view = str(tmp_path / "views" / "span-2" / "ml1m")
    warm = simulate.run_config(base, "ml1m", view, "reuse_warm", "random_hash", 2, 6, 4096)
    assert (warm.rqvae_mode, warm.warm_start, warm.refresh_sids, warm.window_spans) == (
        "reuse", True, False, 6)
    assert warm.pipeline_name == "simulate-ml1m-reuse_warm-random_hash"
    assert warm.dataset_name == "ml1m" and warm.item_table_size == 4096
    assert warm.table_budgets == (4096,)
    first = simulate.run_config(base, "ml1m", view, "reuse_warm", "random_hash", 1, 6, 4096)
    assert first.rqvae_mode == "train"  # nothing to reuse yet
    scratch = simulate.run_config(base, "ml1m", view, "scratch", "random_hash", 3, 6, 4096)
    assert (scratch.rqvae_mode, scratch.warm_start, scratch.refresh_sids) == ("train", False, True)
    assert scratch.pipeline_name != warm.pipeline_name
    assert (warm.warm_start_replay, scratch.warm_start_replay) == (simulate.WARM_START_REPLAY, 0)
    with pytest.raises(ValueError, match="mode must be one of"):
        simulate.run_config(base, "ml1m", view, "both", "random_hash", 1, 6, 4096)


def test_an_interrupted_simulation_resumes_and_writes_each_row_once(tmp_path):
    base, out, work = _base(tmp_path), str(tmp_path / "out"), str(tmp_path / "work")
    first = _FakeRunner()
    simulate.simulate("synthetic", 3, REPS, out_dir=out, work_dir=work, base=base,
                      table_budget=64, runner=first, completed=first.completed, stop_after_span=2)
    assert [k for k, _ in first.calls] == simulate.plan(2, REPS)
    # A crash in the middle of span 3: the rows before it stay, the run raises.
    crashing = _FakeRunner(fail_on=(3, "scratch", features.RANDOM_HASH), finished=first.finished)
    with pytest.raises(RuntimeError, match="interrupted"):
        simulate.simulate("synthetic", 3, REPS, out_dir=out, work_dir=work, base=base,
                          table_budget=64, runner=crashing, completed=crashing.completed)
    assert [k for k, _ in crashing.calls] == [(3, "reuse_warm", r) for r in REPS]
    resumed = _FakeRunner(finished=crashing.finished)
    rows = simulate.simulate("synthetic", 3, REPS, out_dir=out, work_dir=work, base=base,
                             table_budget=64, runner=resumed, completed=resumed.completed)
    assert [k for k, _ in resumed.calls] == [(3, "scratch", r) for r in REPS]
    keys = [simulate.row_key(r) for r in rows]
    assert sorted(keys) == sorted(simulate.plan(3, REPS)) and len(set(keys)) == len(keys)
    with open(os.path.join(out, simulate.RESULTS_FILE)) as f:
        assert len(list(csv.DictReader(f))) == 12
    row = next(r for r in rows if simulate.row_key(r) == (3, "reuse_warm", features.RANDOM_HASH))
    assert (row["train_spans"], row["eval_span"], row["base_model_span"]) == ("2", 3, 2)
    assert row["sid_changed_share"] == 0.0 and row["warm_started"] is True
    # The views hold the spans that have arrived: span 2's has spans 1 and 2 only.
    view = os.path.join(work, "views", "span-2", "synthetic", "interactions")
    assert sorted(os.listdir(view)) == ["span-1", "span-2"]
    # Appending a row whose key is there already writes nothing.
    simulate.append_row(out, rows[0])
    assert len(simulate.read_rows(out)) == 12
    # A new work_dir (its pipelines never ran) with every row there: nothing runs.
    idle, replayed = _FakeRunner(), []
    again = simulate.simulate("synthetic", 3, REPS, out_dir=out, work_dir=work + "-new",
                              base=base, table_budget=64, runner=idle, completed=idle.completed,
                              replay=replayed.append)
    assert idle.calls == [] and replayed == [] and again == rows


def test_representations_in_processes_write_the_rows_of_one_process(tmp_path):
    base = _base(tmp_path)
    serial = _FakeRunner()
    one = simulate.simulate("synthetic", 2, REPS, out_dir=str(tmp_path / "one"),
                            work_dir=str(tmp_path / "w1"), base=base, table_budget=64,
                            runner=serial, completed=serial.completed)
    parallel = _FakeRunner()
    two = simulate.simulate("synthetic", 2, REPS, out_dir=str(tmp_path / "two"),
                            work_dir=str(tmp_path / "w2"), base=base, table_budget=64,
                            runner=parallel, completed=parallel.completed, jobs=2)
    assert parallel.calls == []  # the runs happened in the two processes

    def by_key(rows):
        return {simulate.row_key(r): dict(r, finished_at=None) for r in rows}
    assert len(two) == len(one) == 8 and by_key(two) == by_key(one)
    # A process that fails does not stop the other; its error is raised at the end.
    failing = _FakeRunner(fail_on=(2, "scratch", features.SID_PREFIX_NGRAM))
    with pytest.raises(RuntimeError, match="interrupted"):
        simulate.simulate("synthetic", 2, REPS, out_dir=str(tmp_path / "three"),
                          work_dir=str(tmp_path / "w3"), base=base, table_budget=64,
                          runner=failing, completed=failing.completed, jobs=2)
    assert len(simulate.read_rows(str(tmp_path / "three"))) == 7


def test_a_new_work_dir_rebuilds_only_the_pipelines_with_rows_to_write(tmp_path):
    base, out = _base(tmp_path), str(tmp_path / "out")
    first = _FakeRunner()
    simulate.simulate("synthetic", 3, REPS, out_dir=out, work_dir=str(tmp_path / "work"),
                      base=base, table_budget=64, runner=first, completed=first.completed,
                      stop_after_span=2)
    first_rows = simulate.read_rows(out)
    warm_hash = (3, "reuse_warm", features.RANDOM_HASH)
    simulate.append_row(out, dict(first_rows[0], span=3, finished_at="x"))  # warm_hash's row
    assert simulate.row_key(simulate.read_rows(out)[-1]) == warm_hash
    # In another work_dir: a pipeline whose rows all exist is left alone; the others rebuild
    # spans 1-2 (replay), then run span 3.
    runner, replayed = _FakeRunner(), []
    rows = simulate.simulate("synthetic", 3, REPS, out_dir=out, work_dir=str(tmp_path / "new"),
                             base=base, table_budget=64, runner=runner,
                             completed=runner.completed,
                             replay=lambda c: replayed.append((c.pipeline_name, c.data_dir)))
    assert [k for k, _ in runner.calls] == [k for k in simulate.plan(3, REPS)
                                            if k[0] == 3 and k != warm_hash]
    rebuilt = [(span, mode, rep) for span in (1, 2) for mode, rep in (
        ("reuse_warm", features.SID_PREFIX_NGRAM), ("scratch", features.RANDOM_HASH),
        ("scratch", features.SID_PREFIX_NGRAM))]
    assert [name for name, _ in replayed] == [
        simulate.pipeline_name("synthetic", mode, rep) for _, mode, rep in rebuilt]
    assert [d.split(os.sep)[-2] for _, d in replayed] == [f"span-{s}" for s, _, _ in rebuilt]
    assert rows[:len(first_rows)] == first_rows and len(rows) == 12


def test_replay_runs_the_whole_pipeline_for_reuse_warm_and_a_partial_run_for_scratch(
        tmp_path, monkeypatch):
    from pipeline import run as run_lib
    calls = []
    monkeypatch.setattr(run_lib, "run_pipeline",
                        lambda config, to_nodes=None: calls.append(to_nodes) or {})
    base, view = _base(tmp_path), str(tmp_path / "views" / "span-2" / "ml1m")
    for mode in simulate.MODES:
        simulate.replay_run(simulate.run_config(base, "ml1m", view, mode, "random_hash", 2, 6, 64))
    assert calls == [None, ("InteractionExampleGen", "SemanticIdGen")]


def test_summarize_writes_the_reading_and_the_checks(tmp_path):
    base, out = _base(tmp_path), str(tmp_path / "out")
    simulate.simulate("synthetic", 3, REPS, out_dir=out, work_dir=str(tmp_path / "work"),
                      base=base, table_budget=64, runner=_FakeRunner())
    checks = simulate.summarize(out)
    c = checks["representations"][features.RANDOM_HASH]
    assert c["spans"] == [2, 3] and c["mean_ok"] and c["per_span_ok"]
    assert c["time_ratio"] == pytest.approx(0.6)
    assert checks["reuse_sid_changed_share_max"] == 0.0
    assert all(n["beats"] is False for n in checks["new_items"])  # +0.004 is within 0.005
    assert [(n["span"], n["mode"], n["verdict"]) for n in checks["overall_vs_random_hash"]] == [
        (s, m, "is within the tolerance of") for m in simulate.MODES for s in (2, 3)]
    assert os.path.getsize(os.path.join(out, simulate.PLOT_FILE)) > 0
    with open(os.path.join(out, simulate.READING_FILE)) as f:
        text = f.read()
    assert "span 2, reuse_warm: sid_prefix_ngram is within the tolerance of random_hash" in text
    assert "## Overall: the SID representation against random_hash" in text
    assert "- scratch: within the tolerance on 2 of 2 spans." in text
    assert "Seed spread: not measured" in text
    assert "- overall: 8 of 8 rows above `baseline_user_item_rate`" in text
    # With σ measured: the new-item verdicts use the new-item AUCs' own seed spread.
    with open(os.path.join(out, simulate.SEED_SPREAD_FILE), "w") as f:
        json.dump({"span": 2, "representation": features.SID_PREFIX_NGRAM, "std": 0.001,
                   "aucs": [0.7, 0.701, 0.702], "auc_new_items": [0.6, 0.604, 0.608]}, f)
    checks = simulate.summarize(out)
    assert checks["per_span_tolerance"] == 0.005
    assert checks["new_item_tolerance"] == pytest.approx(0.008)


def test_the_reading_counts_the_rows_still_to_come_and_keeps_the_spans(tmp_path):
    base, out, work = _base(tmp_path), str(tmp_path / "out"), str(tmp_path / "work")
    simulate.simulate("synthetic", 2, [features.SID_PREFIX_NGRAM], out_dir=out, work_dir=work,
                      base=base, table_budget=64, runner=_FakeRunner())
    summary = simulate._spans_summary(work, out)  # copied beside results.csv, paths left out
    assert summary["num_spans"] == 2 and "source" not in summary
    simulate.summarize(out, summary, REPS)
    with open(os.path.join(out, simulate.READING_FILE)) as f:
        assert "**In progress: 4 of 8 runs done**" in f.read()
    # On another machine (no work folder) the copy is read.
    assert simulate._spans_summary(str(tmp_path / "elsewhere"), out) == summary
    simulate.summarize(out, summary, [features.SID_PREFIX_NGRAM])
    with open(os.path.join(out, simulate.READING_FILE)) as f:
        assert "In progress" not in f.read()


def test_chosen_sid_representation_is_the_best_on_validation(tmp_path, monkeypatch):
    path = tmp_path / "docs" / "results" / "toy" / "results.csv"
    path.parent.mkdir(parents=True)
    rows = [("sid_spm", 512, "with", 0.80), ("sid_prefix_ngram", 4096, "with", 0.79),
            ("sid_ngram_2", 4096, "with", 0.78), ("sid_spm", 4096, "without", 0.9),
            ("random_hash", 4096, "with", 0.95), ("sid_ngram_1", 4096, "with", "")]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["representation", "table_budget", "history", "best_val_auc"])
        w.writerows(rows)
    monkeypatch.setattr(simulate, "STUDY_RESULTS",
                        str(tmp_path / "docs" / "results" / "{dataset}" / "results.csv"))
    assert simulate.chosen_sid_representation("toy") == "sid_prefix_ngram"
    with pytest.raises(ValueError, match="no committed study for dataset 'other'.*--repres"):
        simulate.chosen_sid_representation("other")


def test_ml1m_study_chooses_sid_prefix_ngram():
    # docs/results/ml1m/results.csv: best mean validation AUC at B = 4096 with history (the study
    # of ML-1M's second tuning objective, 0.8026 against sid_spm's 0.7994; the first objective's
    # study chose sid_spm, the one before it sid_prefix_ngram, which docs/results/continuous/
    # ran with).
    assert simulate.chosen_sid_representation("ml1m") == features.SID_PREFIX_NGRAM


def test_the_cli_has_the_simulate_command():
    from pipeline import cli
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])



def test_the_seed_spread_is_measured_once_right_after_its_run(tmp_path, monkeypatch):
    base, out, work = _base(tmp_path), str(tmp_path / "out"), str(tmp_path / "work")
    calls = []

    def fake_spread(config, metrics, out_dir, work_dir, span):
        calls.append((span, config.representation, config.warm_start, metrics is not None,
                      len(simulate.read_rows(out_dir))))
        with open(os.path.join(out_dir, simulate.SEED_SPREAD_FILE), "w") as f:
            f.write('{"span": 2, "representation": "sid_prefix_ngram", "std": 0.004}')

    monkeypatch.setattr(simulate, "seed_spread", fake_spread)
    runner = _FakeRunner()
    for _ in range(2):
        simulate.simulate("synthetic", 3, REPS, out_dir=out, work_dir=work, base=base,
                          table_budget=64, runner=runner, completed=runner.completed,
                          seed_spread_span=2)
    # Once, on the SID representation's scratch run of span 2, just after its row (the 8th).
    assert calls == [(2, features.SID_PREFIX_NGRAM, False, True, 8)]
    checks = simulate.summarize(out)
    assert checks["sigma"] == 0.004 and checks["per_span_tolerance"] == 0.008
    assert simulate.default_seed_spread_span(6) == 4


def test_completed_span_skips_runs_stopped_before_interaction_features(tmp_path, monkeypatch):
    """A stop at a span's start (ExampleGen only), or a partial run, leaves the spans finished
    before it finished: resuming in the same work_dir must not rebuild them."""
    import types

    from components.interaction_features import core as interaction_features_core
    from pipeline import mlmd

    def features_of(span, pushed=True):
        folder = tmp_path / f"span-{span}-{len(runs)}"
        folder.mkdir()
        (folder / interaction_features_core.SUMMARY_FILE).write_text(
            json.dumps({interaction_features_core.EVAL_SPAN: span}))
        outputs = {"InteractionFeatures": {"examples": [types.SimpleNamespace(uri=str(folder))]}}
        return dict(outputs, Pusher={"pushed_model": ["pushed"]}) if pushed else outputs

    runs = []
    monkeypatch.setattr(mlmd, "run_outputs", lambda config: runs)
    assert simulate.completed_span(RunConfig()) == 0
    runs += [features_of(1), features_of(2)]
    runs.append({"InteractionExampleGen": {"examples": ["span 3"]}})  # stopped at span 3's start
    assert simulate.completed_span(RunConfig()) == 2
    runs.append(features_of(3, pushed=False))  # stopped between InteractionFeatures and Pusher
    assert simulate.completed_span(RunConfig()) == 2
    runs.append(features_of(3))
    assert simulate.completed_span(RunConfig()) == 3


def test_a_results_csv_from_before_added_columns_gets_the_new_header(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    old_columns = [c for c in simulate.COLUMNS if c not in ("replay_spans", "replay_share")]
    old = {c: "" for c in old_columns}
    old.update(span="1", mode="scratch", representation="random_hash", auc_overall="0.75")
    with open(out / simulate.RESULTS_FILE, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=old_columns)
        writer.writeheader()
        writer.writerow(old)
    simulate.append_row(str(out), {"span": 2, "mode": "reuse_warm",
                                   "representation": "random_hash", "auc_overall": 0.76,
                                   "replay_spans": "1", "replay_share": 0.5})
    rows = simulate.read_rows(str(out))
    assert [(r["span"], r["auc_overall"], r["replay_spans"], r["replay_share"]) for r in rows] == [
        (1, 0.75, None, None), (2, 0.76, "1", 0.5)]
    with open(out / simulate.RESULTS_FILE, newline="") as f:
        assert tuple(next(csv.reader(f))) == simulate.COLUMNS
    newer = tmp_path / "newer.csv"  # a header with a column this version does not know: kept
    newer.write_text(",".join(simulate.COLUMNS + ("from_a_later_version",)) + "\n")
    upgrade_csv_header(str(newer), simulate.COLUMNS)
    assert newer.read_text().startswith("span,") and "from_a_later_version" in newer.read_text()


def test_a_sitting_stopped_by_sigterm_records_its_time(tmp_path, monkeypatch):
    workers = []
    monkeypatch.setattr(simulate, "simulate", lambda *args, **kwargs: stopped_while_beam_waits(
        signal.SIGTERM, workers))  # a session stopped, or `kill PID`, while Beam's workers run
    out = str(tmp_path / "out")
    args = argparse.Namespace(out_dir=out, work_dir=str(tmp_path / "work"), spans=2,
                              representations=REPS, summarize_only=False, jobs=1,
                              seed_spread_span=None)
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(KeyboardInterrupt):
            with stops_like_ctrl_c():  # as the CLI runs every command
                simulate.simulate_command(args, _base(tmp_path))
        assert signal.getsignal(signal.SIGTERM) is before
        [sitting] = simulate.read_sittings(out)
        assert (sitting["rows_before"], sitting["rows_after"], sitting["jobs"]) == (0, 0, 1)
        assert workers[0].returncode == -signal.SIGTERM  # the handler ended the worker
    finally:
        end(workers)


def test_wall_time_adds_recorded_sittings_and_the_runs_of_unrecorded_rows(tmp_path):
    out = str(tmp_path)

    def row(span, finished, seconds):
        return {"span": span, "mode": "scratch", "representation": "random_hash",
                "finished_at": finished, "seconds": seconds}

    # Two rows before sittings were recorded (overlapping runs: 09:00-09:10 and 09:05-09:20),
    # one inside a recorded sitting.
    rows = [row(1, "2026-12-01T09:10:00", 600), row(2, "2026-12-01T09:20:00", 900),
            row(3, "2026-12-02T10:30:00", 1200)]
    t0 = datetime.datetime(2026, 12, 2, 10, 0).timestamp()
    for r in rows:
        simulate.append_row(out, r)
    sitting = simulate.record_sitting(out, t0, 2, 2, ["random_hash"])
    assert sitting["rows_after"] == 3 and sitting["seconds"] >= time.time() - t0 - 5
    recorded = [{**sitting, "finished_at": "2026-12-02T11:00:00", "seconds": 3600.0}]
    wall = simulate.wall_time(simulate.read_rows(out), recorded)
    assert (wall["unrecorded_rows"], wall["unrecorded_seconds"]) == (2, 1200.0)
    assert wall["total_hours"] == pytest.approx((3600 + 1200) / 3600)
    words = simulate._wall_time_words(wall, complete=True)
    assert "1.33 h in all (meets the < 3 h" in words and "1 recorded sitting" in words
    assert "so far" in simulate._wall_time_words(wall, complete=False)
    assert simulate.read_sittings(out)[0]["rows_before"] == 2


def test_wall_time_leaves_out_the_runs_of_rows_a_later_configuration_replaced():
    def row(finished, seconds):
        return {"span": 2, "mode": "reuse_warm", "representation": "random_hash",
                "finished_at": finished, "seconds": seconds}

    def sitting(start, end, jobs):
        return {"started_at": start, "finished_at": end, "jobs": jobs, "seconds": 3600.0}

    sittings = [sitting("2026-12-02T10:00:00", "2026-12-02T11:00:00", 1),
                sitting("2026-12-03T10:00:00", "2026-12-03T11:00:00", 2)]
    replaced = [row("2026-12-02T10:20:00", 900), row("2026-12-03T10:20:00", 900),
                row("2026-12-01T10:20:00", 900)]  # the last in no recorded sitting
    wall = simulate.wall_time([], sittings, replaced)
    # Only the one-process sitting's replaced run comes off: two processes' runs overlapped.
    assert (wall["superseded_rows"], wall["superseded_seconds"]) == (1, 900)
    assert wall["total_hours"] == pytest.approx((7200 - 900) / 3600)
    assert "less 0.25 h of their runs of the 1 rows" in simulate._wall_time_words(wall, True)


def test_a_rerun_in_another_sitting_widens_the_sid_against_random_hash_tolerance():
    def row(span, mode, rep, overall, new):
        return {"span": span, "mode": mode, "representation": rep, "auc_overall": overall,
                "auc_new_items": new, "seconds": 1.0, "sid_changed_share": 0.0}

    rows = [row(s, m, r, 0.75 + (0.01 if r != "random_hash" else 0), 0.65)
            for s in (1, 2) for m in simulate.MODES
            for r in ("random_hash", features.SID_PREFIX_NGRAM)]
    rerun = [row(1, "scratch", features.SID_PREFIX_NGRAM, 0.748, 0.67)]
    noise = simulate.run_to_run(rows, rerun)
    assert noise["rows"] == [(1, "scratch", features.SID_PREFIX_NGRAM)]
    assert noise["identical"] == 0
    assert simulate.run_to_run(rows, [rows[0]])["identical"] == 1
    assert simulate._range_of([0.0, -0.012, 0.003]) == "-0.0120 to +0.0030"
    assert noise["overall"] == [pytest.approx(-0.012)] and noise["new_items"] == [
        pytest.approx(0.02)]
    plain, widened = simulate.compare(rows), simulate.compare(rows, rerun=rerun)
    assert [c["verdict"] for c in plain["overall_vs_random_hash"]] == ["beats"] * 2
    assert widened["sid_vs_random_hash_tolerance"]["overall"] == pytest.approx(0.012)
    assert [c["verdict"] for c in widened["overall_vs_random_hash"]] == [
        "is within the tolerance of"] * 2
    assert simulate.run_to_run(rows, []) is None
    # A row of another configuration (another replay share) is no rerun.
    assert simulate.run_to_run(rows, [{**rerun[0], "replay_share": 0.5}]) is None
