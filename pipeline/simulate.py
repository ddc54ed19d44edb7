"""`semids simulate`: continuous training on a growing catalog, span by span (issue 14;
docs/continuous.md).

    simulate(dataset="ml1m", num_spans=6)

1. The dataset's flat files are cut into spans with a seeded release schedule (data/spans.py).
2. For span k = 1..K, the data of spans 1..k is laid out in a folder of its own (hard links),
   and each mode runs the pipeline on it for each representation, under a pipeline name of its
   own (so MLMD lineages never mix):
   - `reuse_warm`: the SID space of span 1 is kept (`--rqvae_mode reuse`) and the ranking model
     is warm-started from the last blessed one, trained on the newest span;
   - `scratch`: the RQ-VAE is retrained (`--refresh_sids`, which reports how many SIDs moved)
     and the ranking model trains from scratch on every earlier span.
   Each run evaluates on span k (span 1, which has nothing before it: the time split inside it).
3. Each finished run appends one row to results.csv at once (an atomic, fsynced append); a
   rerun does only the missing (span, mode, representation) rows, so an interrupted simulation
   resumes where it stopped. The runs of a span need the runs of the span before it in the
   same pipeline (its SID space, its blessed model): a span runs only once every row before it
   exists. A pipeline with a row still to write whose MLMD lacks an earlier span (another
   work_dir) rebuilds that span's state first (`replay_run`), keeping the row written first.
4. `summarize` writes the PNG of AUC per span and the reading (README.md) from results.csv.
5. Each sitting (one `semids simulate` command that runs pipelines) appends its wall time to
   sittings.csv, so the reading can add up what the whole simulation took over its sittings.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import os
import shutil
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

from data import format as data_format
from data import locking
from data import spans as spans_lib
from pipeline import baselines as baselines_lib
from pipeline import probes as probes_lib
from pipeline.config import (DEFAULT_RUNNERS, DEFAULT_TABLE_SIZES, DEFAULT_TRAINING, REPO_ROOT,
                             RunConfig)
from pipeline.tables import append_csv_row, fmt_auc, upgrade_csv_header
from schemas import features

MODES = ("reuse_warm", "scratch")
RESULTS_FILE = "results.csv"
PLOT_FILE = "auc_per_span.png"
READING_FILE = "README.md"
DEFAULT_OUT_DIR = os.path.join(REPO_ROOT, "docs", "results", "continuous")
RANDOM_HASH = features.RANDOM_HASH
# The SID representation ML-1M's study chose on validation: the best mean validation AUC at the
# largest budget with history (docs/results/ml1m/results.csv, best_val_auc; eval not used).
STUDY_RESULTS = os.path.join(REPO_ROOT, "docs", "results", "{dataset}", "results.csv")

# reuse_warm's warm starts replay the window's older spans: a seeded sample of their rows, this
# share of the newest span's train rows. A share above the older spans' rows over the newest
# span's train rows (under 5 with ML-1M's 6 spans) replays every older row: REPLAY_ALL, a warm
# start on the whole window, the rows scratch trains on. Chosen on validation
# (benchmarks/warm_start_variants.py, docs/continuous.md): over no replay, all rows gained
# +0.0042 / +0.0038 on spans 3 / 4, as much as the window from scratch; 0.5 and 1 about +0.0024.
REPLAY_ALL = 1000.0
WARM_START_REPLAY = REPLAY_ALL

KEY = ("span", "mode", "representation")
_BASELINE_COLUMNS = tuple(f"{name}{suffix}" for name in baselines_lib.BASELINES
                          for suffix in ("", "_new_items"))
COLUMNS = KEY + (
    "seed", "auc_overall", "auc_new_items", "num_new_items", "auc_existing_items", "auc_tail",
    "auc_new_users", "auc_warm_users", "num_eval", "num_new_users") + _BASELINE_COLUMNS + (
    "auc_shuffled_labels", "auc_shuffled_labels_new_items", "auc_no_history",
    "auc_no_history_new_items", "seconds", "trained_rows", "train_spans", "eval_span",
    "base_model_span", "warm_started", "sid_changed_share", "new_items_in_catalog",
    "drift_mean_ratio", "blessed", "epochs_run", "table_budget", "pipeline_name", "finished_at",
    "replay_spans", "replay_share")
_FLOAT_PREFIXES = ("auc_", "baseline_")
_FLOATS = ("seconds", "sid_changed_share", "drift_mean_ratio", "replay_share")
_INTS = ("span", "seed", "num_new_items", "num_eval", "num_new_users", "trained_rows",
         "eval_span", "base_model_span", "new_items_in_catalog", "epochs_run", "table_budget")


def chosen_sid_representation(dataset: str) -> str:
    """The SID representation with the best mean validation AUC at the largest table budget with
    history in the dataset's committed study (ties: the first in REPRESENTATIONS order)."""
    path = STUDY_RESULTS.format(dataset=dataset)
    if not os.path.exists(path):
        raise ValueError(f"simulate: no committed study for dataset {dataset!r} ({path}) to "
                         "choose its SID representation from; name one with --representations "
                         "(e.g. --representations random_hash,sid_prefix_ngram)")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f)
                if r["representation"] in features.SID_REPRESENTATIONS and r["best_val_auc"]
                and r["history"] in ("True", "true", "with", "1")]
    if not rows:
        raise ValueError(f"simulate: {path} has no SID rows with history to choose from")
    budget = max(int(float(r["table_budget"])) for r in rows)
    scores: Dict[str, List[float]] = {}
    for r in rows:
        if int(float(r["table_budget"])) == budget:
            scores.setdefault(r["representation"], []).append(float(r["best_val_auc"]))
    return max((rep for rep in features.REPRESENTATIONS if rep in scores),
               key=lambda rep: sum(scores[rep]) / len(scores[rep]))


def pipeline_name(dataset: str, mode: str, representation: str) -> str:
    return f"simulate-{dataset}-{mode}-{representation}"


def span_view(spans_dir: str, views_dir: str, dataset: str, span: int) -> str:
    """<views_dir>/span-<span>/<dataset>/: spans 1..span of spans_dir as hard links (the data
    that has arrived by then; the folder's name is the dataset's, which picks its tuned
    settings). Idempotent."""
    view = os.path.join(views_dir, f"span-{span}", dataset)
    for table in data_format.TABLES:
        for s in range(1, span + 1):
            src = data_format.span_file(spans_dir, table, s)
            dst = data_format.span_file(view, table, s)
            if os.path.exists(dst) and os.path.samefile(src, dst):
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.exists(dst):
                os.remove(dst)
            try:
                os.link(src, dst)
            except OSError:  # another file system: a copy (same bytes, same row order)
                shutil.copy2(src, dst)
    return view


def run_config(base: RunConfig, dataset: str, view: str, mode: str, representation: str,
               span: int, num_spans: int, table_budget: int) -> RunConfig:
    """The RunConfig of one (span, mode, representation) run."""
    if mode not in MODES:
        raise ValueError(f"simulate: mode must be one of {MODES}, got {mode!r}")
    first = span == 1
    training = DEFAULT_TRAINING.get(dataset, {})
    return dataclasses.replace(
        base, dataset="csv", data_dir=view, pipeline_name=pipeline_name(dataset, mode,
                                                                        representation),
        representation=representation, item_table_size=table_budget,
        table_budgets=(table_budget,), window_spans=num_spans,
        runner=base.runner or DEFAULT_RUNNERS.get(dataset, "direct"),
        batch_size=base.batch_size or training.get("batch_size"),
        max_epochs=base.max_epochs or training.get("max_epochs"),
        rqvae_mode="reuse" if mode == "reuse_warm" and not first else "train",
        refresh_sids=mode == "scratch" and not first,
        warm_start=mode == "reuse_warm",
        warm_start_replay=WARM_START_REPLAY if mode == "reuse_warm" else 0.0)


def result_row(span: int, mode: str, representation: str, config: RunConfig, metrics: dict,
               sid_report: Optional[dict]) -> dict:
    """One results.csv row from a run's metrics.json content and SID report."""
    row = {"span": span, "mode": mode, "representation": representation, "seed": config.seed,
           "table_budget": config.item_table_size, "pipeline_name": config.pipeline_name}
    for key in ("auc_overall", "auc_new_items", "auc_existing_items", "auc_tail",
                "auc_new_users", "auc_warm_users", "num_eval", "blessed", "epochs_run",
                "seconds"):
        row[key] = metrics.get(key)
    row["num_new_items"] = metrics.get("num_new_item_eval")
    row["num_new_users"] = metrics.get("num_new_user_eval")
    row["trained_rows"] = metrics.get("num_train")
    for name, aucs in (metrics.get("baselines") or {}).items():
        row[name] = aucs.get("auc_overall")
        row[f"{name}_new_items"] = aucs.get("auc_new_items")
    row.update({k: v for k, v in (metrics.get("probes") or {}).items()
                if k in probes_lib.PROBE_KEYS})
    spans = metrics.get("spans") or {}
    row["train_spans"] = " ".join(str(s) for s in spans.get("train") or ([span] if span == 1
                                                                           else []))
    row["eval_span"] = spans.get("eval", span)
    row["replay_spans"] = " ".join(str(s) for s in spans.get("replay") or [])
    row["replay_share"] = spans.get("replay_share") if spans.get("replay") else None
    base_spans = spans.get("base_model") or {}
    row["base_model_span"] = base_spans.get("eval")
    row["warm_started"] = metrics.get("warm_started")
    space = (sid_report or {}).get("sid_space") or {}
    row["sid_changed_share"] = space.get("sid_changed_share")
    row["new_items_in_catalog"] = space.get("new_items")
    row["drift_mean_ratio"] = (space.get("drift") or {}).get("mean_ratio")
    row["finished_at"] = datetime.datetime.now().isoformat(timespec="seconds")
    return row


def _parse(column: str, value: str):
    if value in ("", None):
        return None
    if column in _INTS:
        return int(float(value))
    if column.startswith(_FLOAT_PREFIXES) or column in _FLOATS:
        return float(value)
    if column in ("blessed", "warm_started"):
        return value in ("True", "true", "1")
    return value


def read_rows(out_dir: str, file_name: str = RESULTS_FILE) -> List[dict]:
    path = os.path.join(out_dir, file_name)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [{c: _parse(c, r.get(c)) for c in COLUMNS} for r in csv.DictReader(f)]


def append_row(out_dir: str, row: dict) -> None:
    """Appends one row (the header first when the file is new), flushed to disk, under an
    exclusive lock on out_dir; a row whose key is already there is not written again."""
    with locking.exclusive(out_dir):
        upgrade_csv_header(os.path.join(out_dir, RESULTS_FILE), COLUMNS)
        if all(row_key(r) != row_key(row) for r in read_rows(out_dir)):
            append_csv_row(os.path.join(out_dir, RESULTS_FILE), COLUMNS, row)


# --- the sittings: one `semids simulate` command each, for the total wall time --------------------
SITTINGS_FILE = "sittings.csv"
SITTING_COLUMNS = ("started_at", "finished_at", "seconds", "rows_before", "rows_after", "jobs",
                   "representations")
# Issue 14's "done when": the whole simulation on this 2-core machine, over all its sittings.
WALL_TIME_LIMIT_HOURS = 3.0


def record_sitting(out_dir: str, started: float, rows_before: int, jobs: int,
                   representations: Sequence[str]) -> dict:
    """Appends one sitting (from `started`, a time.time(), to now) to sittings.csv."""
    now = time.time()
    sitting = {"started_at": _iso(started), "finished_at": _iso(now),
               "seconds": round(now - started, 1), "rows_before": rows_before,
               "rows_after": len(read_rows(out_dir)), "jobs": jobs,
               "representations": " ".join(representations)}
    with locking.exclusive(out_dir):
        append_csv_row(os.path.join(out_dir, SITTINGS_FILE), SITTING_COLUMNS, sitting)
    return sitting


def read_sittings(out_dir: str) -> List[dict]:
    path = os.path.join(out_dir, SITTINGS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [{**r, "seconds": float(r["seconds"]), "rows_before": int(r["rows_before"]),
                 "rows_after": int(r["rows_after"]),
                 "jobs": int(r["jobs"])} for r in csv.DictReader(f)]


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).isoformat(timespec="seconds")


def wall_time(rows: List[dict], sittings: List[dict], superseded: Sequence[dict] = ()) -> dict:
    """The simulation's wall time: the recorded sittings' seconds, less the runs of their rows
    that a later change of configuration replaced (`superseded`, SUPERSEDED_FILE; subtracted in
    sittings of one process, whose runs did not overlap), plus, for rows that no recorded sitting
    covers (written before sittings were recorded), the union of their runs' intervals
    (finished_at − seconds to finished_at), which leaves out what ran between runs (the spans'
    views, the seed spread)."""
    spans = [(datetime.datetime.fromisoformat(s["started_at"]),
              datetime.datetime.fromisoformat(s["finished_at"])) for s in sittings]

    def sitting_of(row: dict) -> Optional[dict]:
        """The recorded sitting that wrote `row` (its finished_at inside the sitting), or None."""
        end = datetime.datetime.fromisoformat(row["finished_at"])
        return next((s for (a, b), s in zip(spans, sittings) if a <= end <= b), None)

    replaced = [r["seconds"] for r in superseded if r.get("finished_at") and r.get("seconds")
                and (sitting_of(r) or {}).get("jobs") == 1]
    intervals = []
    for r in rows:
        if not r.get("finished_at") or r.get("seconds") is None:
            continue
        if sitting_of(r) is None:
            end = datetime.datetime.fromisoformat(r["finished_at"])
            intervals.append((end - datetime.timedelta(seconds=r["seconds"]), end))
    unrecorded = 0.0
    current = None
    for a, b in sorted(intervals):
        if current and a <= current[1]:
            current = (current[0], max(current[1], b))
            continue
        if current:
            unrecorded += (current[1] - current[0]).total_seconds()
        current = (a, b)
    if current:
        unrecorded += (current[1] - current[0]).total_seconds()
    recorded = sum(s["seconds"] for s in sittings)
    return {"sittings": len(sittings), "recorded_seconds": recorded,
            "superseded_rows": len(replaced), "superseded_seconds": float(sum(replaced)),
            "unrecorded_rows": len(intervals), "unrecorded_seconds": unrecorded,
            "total_hours": (recorded - sum(replaced) + unrecorded) / 3600}


def row_key(row: dict) -> tuple:
    return (int(row["span"]), row["mode"], row["representation"])


def plan(num_spans: int, representations: Sequence[str], modes: Sequence[str] = MODES
         ) -> List[tuple]:
    """Every (span, mode, representation), in the order they run."""
    return [(span, mode, rep) for span in range(1, num_spans + 1) for mode in modes
            for rep in representations]


def completed_span(config: RunConfig) -> int:
    """The newest span this pipeline finished: the largest evaluated span over its runs, or the
    span before when that run has no Pusher output (it was stopped); 0 when none did. A run
    without InteractionFeatures output (stopped before it, or a partial run) does not count, so
    a run stopped at a span's start does not hide the spans finished before it."""
    from components.interaction_features import core as interaction_features_core
    from pipeline import mlmd
    finished = 0
    for outputs in mlmd.run_outputs(config):
        examples = outputs.get("InteractionFeatures", {}).get("examples")
        if not examples:
            continue
        path = os.path.join(examples[0].uri, interaction_features_core.SUMMARY_FILE)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            span = json.load(f).get(interaction_features_core.EVAL_SPAN) or 0
        finished = max(finished, span if outputs.get("Pusher") else span - 1)
    return finished


def replay_run(config: RunConfig) -> None:
    """Rebuilds, in a new work_dir, the MLMD state that a pipeline's next span needs from a span
    whose row exists. reuse_warm reruns the whole pipeline: its SID space and its blessed model
    carry over. scratch trains from scratch on the window, so a TFX partial run up to
    SCRATCH_STATE_NODES is enough, and its model is the same. Only the Evaluator's comparison
    with a blessed model is then skipped (there is none)."""
    from components.example_gen.component import COMPONENT_IDS
    from pipeline.pipeline import SEMANTIC_ID_GEN_ID
    from pipeline.run import run_pipeline
    # What a scratch pipeline's next run reads from its MLMD: the span's interactions (the
    # training window) and the catalog (what --refresh_sids compares the new SIDs with).
    state_nodes = (COMPONENT_IDS[data_format.INTERACTIONS_TABLE], SEMANTIC_ID_GEN_ID)
    run_pipeline(config, to_nodes=None if config.warm_start else state_nodes)


def run_one(config: RunConfig) -> tuple:
    """Runs the pipeline for one config; (metrics.json content, SID report or None)."""
    from pipeline import report
    from pipeline.run import run_pipeline
    metrics = run_pipeline(config)
    return metrics, report.copy_sid_report(config)


def simulate(dataset: str = "ml1m", num_spans: int = 6,
             representations: Optional[Sequence[str]] = None, out_dir: str = DEFAULT_OUT_DIR,
             work_dir: Optional[str] = None, seed: int = 0, table_budget: Optional[int] = None,
             base: Optional[RunConfig] = None, stop_after_span: Optional[int] = None,
             runner: Callable[[RunConfig], tuple] = run_one,
             seed_spread_span: Optional[int] = None,
             completed: Callable[[RunConfig], int] = completed_span,
             replay: Callable[[RunConfig], None] = replay_run, jobs: int = 1) -> List[dict]:
    """Runs every missing (span, mode, representation) row (module docstring); returns the rows
    of results.csv. base: RunConfig fields shared by every run (output_dir is replaced by
    work_dir's); stop_after_span: stop once that span's rows exist (a test's interruption);
    runner / completed / replay: run a config / the newest span its pipeline finished /
    rebuild a finished span's state (tests stand in);
    seed_spread_span: measure σ (`seed_spread`) on that span's scratch run of the first SID
    representation, right after it (its artifacts are then the pipeline's newest);
    jobs: run the representations in up to that many processes (`_simulate_in_processes`)."""
    base = base or RunConfig(dataset=dataset, seed=seed)
    work_dir = work_dir or os.path.join(base.output_dir, "simulate", f"{dataset}-{num_spans}")
    representations = list(representations or (RANDOM_HASH, chosen_sid_representation(dataset)))
    table_budget = table_budget or DEFAULT_TABLE_SIZES.get(dataset, (base.item_table_size,))[0]

    from pipeline.inputs import prepare_dataset
    flat = prepare_dataset(dataclasses.replace(base, dataset=dataset, seed=seed))
    spans_dir = os.path.join(work_dir, "spans")
    summary = spans_lib.write_spans(flat, spans_dir, num_spans, seed)
    _say(f"simulate: {num_spans} spans of {summary['rows_per_span']} interactions; items "
         f"released per span {summary['new_items_per_span']}; {summary['dropped_rows']:,} rows "
         "dropped before their item's release")
    run_base = dataclasses.replace(base, output_dir=os.path.join(work_dir, "runs"),
                                   results_dir=os.path.join(work_dir, "results"), seed=seed)
    sid_reps = [r for r in representations if r != RANDOM_HASH] or representations
    if jobs > 1 and len(representations) > 1:
        for span in range(1, num_spans + 1):  # made once here: the processes share them
            span_view(spans_dir, os.path.join(work_dir, "views"), dataset, span)
        return _simulate_in_processes(
            jobs, [dict(dataset=dataset, num_spans=num_spans, representations=[rep],
                        out_dir=out_dir, work_dir=work_dir, seed=seed, table_budget=table_budget,
                        base=base, stop_after_span=stop_after_span, runner=runner,
                        seed_spread_span=seed_spread_span if rep == sid_reps[0] else None,
                        completed=completed, replay=replay) for rep in representations])
    done = {row_key(r) for r in read_rows(out_dir)}
    spread_key = (seed_spread_span, "scratch", sid_reps[0]) if seed_spread_span else None
    if spread_key in done and _read_sigma(out_dir) is None:
        # Stopped between the run and its σ: the run is repeated (mostly cached) first.
        view = span_view(spans_dir, os.path.join(work_dir, "views"), dataset, seed_spread_span)
        seed_spread(run_config(run_base, dataset, view, "scratch", sid_reps[0], seed_spread_span,
                               num_spans, table_budget), None, out_dir, work_dir,
                    seed_spread_span)
    keys = [k for k in plan(num_spans, representations)
            if stop_after_span is None or k[0] <= stop_after_span]
    pending = {(mode, rep) for _, mode, rep in set(keys) - done}  # pipelines with rows to write
    for span, mode, rep in keys:
        if (span, mode, rep) in done and (mode, rep) not in pending:
            continue
        view = span_view(spans_dir, os.path.join(work_dir, "views"), dataset, span)
        config = run_config(run_base, dataset, view, mode, rep, span, num_spans, table_budget)
        if (span, mode, rep) in done:
            if completed(config) < span:
                # The row exists, but this pipeline's state does not (a new work_dir), and a
                # later span needs it; the row stays the first.
                _say(f"simulate: span {span} {mode} {rep}: the row exists; rebuilding pipeline "
                     f"{config.pipeline_name}'s state for the spans after it"
                     + ("" if config.warm_start else " (a partial run: the span's Examples and "
                        "catalog)"))
                replay(config)
            continue
        start = time.time()
        _say(f"simulate: span {span}/{num_spans}, {mode}, {rep} (pipeline {config.pipeline_name})")
        metrics, sid_report = runner(config)
        row = result_row(span, mode, rep, config, metrics, sid_report)
        append_row(out_dir, row)
        if (span, mode, rep) == spread_key and _read_sigma(out_dir) is None:
            _say(f"simulate: seed spread on span {span} ({rep}, scratch, seeds 0-2)")
            seed_spread(config, metrics, out_dir, work_dir, span)
        _say(f"simulate: span {span} {mode} {rep} done in {time.time() - start:.0f}s: AUC "
             f"{fmt_auc(row['auc_overall'])} overall, {fmt_auc(row['auc_new_items'])} new items")
    return read_rows(out_dir)


def _simulate_in_processes(jobs: int, calls: List[dict]) -> List[dict]:
    """Runs `simulate(**call)` for each call, each on one representation, in up to `jobs`
    processes. A representation's pipelines (one per mode) read only their own MLMD and
    artifacts, and results.csv takes each row under a lock, so the processes share out_dir and
    work_dir. Each row's `seconds` is then measured beside the other processes. A process that
    fails does not stop the others; the first error is raised once all have ended (a rerun
    resumes)."""
    import concurrent.futures
    import multiprocessing
    out_dir = calls[0]["out_dir"]
    _say(f"simulate: {len(calls)} representations in {min(jobs, len(calls))} processes; each "
         "line starts with its representation")
    # spawn: a forked child would inherit TensorFlow's threads and locks.
    pool = concurrent.futures.ProcessPoolExecutor(
        min(jobs, len(calls)), mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_simulate_one, call) for call in calls]
        errors = [f.exception() for f in futures]
    except BaseException:
        # An interrupted sitting (Ctrl-C, SIGTERM) stops its workers too: waiting for them would
        # keep the sitting running, and its record unwritten.
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for error in errors:
        if error is not None:
            raise error
    return read_rows(out_dir)


def _simulate_one(call: dict) -> None:
    """One process of `_simulate_in_processes`: its lines start with its representation."""
    from pipeline.run import CONSOLE
    CONSOLE.prefix = f"[{call['representations'][0]}] "
    simulate(**call)


# --- the reading ---------------------------------------------------------------------------------
# Rows of results.csv run again in another sitting (same columns), to measure run-to-run noise.
RERUN_FILE = "rerun.csv"
# Rows a recorded sitting wrote that a later change of configuration replaced (same columns):
# their runs' time is not the simulation's (`wall_time`).
SUPERSEDED_FILE = "superseded.csv"
SEED_SPREAD_FILE = "seed_spread.json"  # {"span": S, "representation": R, "std": σ, "aucs": [...]}
# reuse_warm's overall AUC may trail scratch's by this much on the span mean, and per span by
# max(PER_SPAN_TOLERANCE, 2σ) (issue 14's "done when").
MEAN_TOLERANCE = 0.002
PER_SPAN_TOLERANCE = 0.005


def _replay_words(rows: List[dict]) -> str:
    shares = sorted({r["replay_share"] for r in rows
                     if r["mode"] == "reuse_warm" and r.get("replay_share")})
    if not shares:
        return ""
    if shares == [REPLAY_ALL]:
        return (", plus every row of the older spans (the rows `scratch` trains on; replay "
                f"share {REPLAY_ALL:g}, more than they hold; column `replay_spans`)")
    return (", plus a seeded sample of the older spans' rows ("
            + " / ".join(f"{s:g}" for s in shares) + "x the newest span's train rows; column "
            "`replay_spans`)")


def _by_key(rows: List[dict]) -> Dict[tuple, dict]:
    return {row_key(r): r for r in rows}


def run_to_run(rows: List[dict], rerun: List[dict]) -> Optional[dict]:
    """The differences (rerun − results.csv) of the rows run again in another sitting with the
    same code, data and seed (rerun.csv), overall and on new items; None without a rerun."""
    keyed = _by_key(rows)
    # A row of another configuration (another replay share) is no rerun of the committed one.
    pairs = [(keyed[row_key(r)], r) for r in rerun if row_key(r) in keyed
             and keyed[row_key(r)].get("replay_share") == r.get("replay_share")]
    if not pairs:
        return None
    out: dict = {"rows": [row_key(r) for _, r in pairs],
                 # Bit-for-bit equal AUCs: on one machine a run repeats exactly, so these are
                 # the rows rerun on the same machine.
                 "identical": sum(all(a[k] == b[k] for k in ("auc_overall", "auc_new_items"))
                                  for a, b in pairs)}
    for key, name in (("auc_overall", "overall"), ("auc_new_items", "new_items")):
        out[name] = [b[key] - a[key] for a, b in pairs
                     if a[key] is not None and b[key] is not None]
    return out


def compare(rows: List[dict], sigma: Optional[float] = None,
            sigma_new_items: Optional[float] = None, rerun: Sequence[dict] = ()) -> dict:
    """The checks the reading reports, over the spans after the first (span 1 has nothing before
    it: both modes train the same model there). sigma / sigma_new_items: the seed std of the
    overall / new-item AUC, which set the tolerances; rerun: rows run again in another sitting
    (`run_to_run`), whose differences widen the tolerance of the SID-against-random_hash
    verdicts."""
    keyed = _by_key(rows)
    reps = sorted({r["representation"] for r in rows},
                  key=lambda r: features.REPRESENTATIONS.index(r))
    spans = sorted({r["span"] for r in rows if r["span"] > 1})
    tol = max(PER_SPAN_TOLERANCE, 2 * sigma) if sigma is not None else PER_SPAN_TOLERANCE
    # New-item AUCs rest on fewer rows and vary more with the seed than the overall AUC.
    tol_new = (max(PER_SPAN_TOLERANCE, 2 * sigma_new_items) if sigma_new_items is not None
               else PER_SPAN_TOLERANCE)
    out: dict = {"spans": spans, "per_span_tolerance": tol, "sigma": sigma,
                 "new_item_tolerance": tol_new, "sigma_new_items": sigma_new_items,
                 "reuse_sid_changed_share_max": max(
                     (r["sid_changed_share"] or 0.0 for r in rows if r["mode"] == "reuse_warm"),
                     default=None),
                 "representations": {}}
    for rep in reps:
        pairs = [(keyed.get((s, "reuse_warm", rep)), keyed.get((s, "scratch", rep))) for s in spans]
        pairs = [(w, c) for w, c in pairs if w and c and w["auc_overall"] is not None
                 and c["auc_overall"] is not None]
        if not pairs:
            continue
        diffs = [w["auc_overall"] - c["auc_overall"] for w, c in pairs]
        mean_w = sum(w["auc_overall"] for w, _ in pairs) / len(pairs)
        mean_c = sum(c["auc_overall"] for _, c in pairs) / len(pairs)
        secs_w = sum(w["seconds"] for w, _ in pairs) / len(pairs)
        secs_c = sum(c["seconds"] for _, c in pairs) / len(pairs)
        out["representations"][rep] = {
            "spans": [w["span"] for w, _ in pairs],
            "overall_diff": diffs,
            "mean_reuse_warm": mean_w, "mean_scratch": mean_c,
            "mean_ok": mean_w >= mean_c - MEAN_TOLERANCE,
            "per_span_ok": all(d >= -tol for d in diffs),
            "seconds_reuse_warm": secs_w, "seconds_scratch": secs_c,
            "time_ratio": secs_w / secs_c if secs_c else None}
    # Span 1 runs the same configuration in both modes: their difference shows whether a whole
    # pipeline run repeats within a sitting (σ varies only the seed).
    out["span1_mode_diffs"] = {
        rep: (keyed[(1, "reuse_warm", rep)]["auc_overall"]
              - keyed[(1, "scratch", rep)]["auc_overall"])
        for rep in reps if (1, "reuse_warm", rep) in keyed and (1, "scratch", rep) in keyed}
    sid_reps = [r for r in reps if r != RANDOM_HASH]
    # The SID representation against random_hash on the same span and mode: on new items (the
    # paper's claim) and overall (that overall quality holds). σ holds the data and the run
    # fixed; a rerun in another sitting varies more, so a difference must also pass that.
    noise = run_to_run(rows, list(rerun))
    out["run_to_run"] = noise
    largest = {k: max((abs(d) for d in (noise or {}).get(k, [])), default=0.0)
               for k in ("overall", "new_items")}
    out["sid_vs_random_hash_tolerance"] = {"overall": max(tol, largest["overall"]),
                                           "new_items": max(tol_new, largest["new_items"])}
    for name, key, tolerance in (
            ("new_items", "auc_new_items", out["sid_vs_random_hash_tolerance"]["new_items"]),
            ("overall_vs_random_hash", "auc_overall",
             out["sid_vs_random_hash_tolerance"]["overall"])):
        out[name] = []
        for mode in MODES:
            for rep in sid_reps:
                for s in spans:
                    sid, rnd = keyed.get((s, mode, rep)), keyed.get((s, mode, RANDOM_HASH))
                    if not (sid and rnd) or sid[key] is None or rnd[key] is None:
                        continue
                    diff = sid[key] - rnd[key]
                    out[name].append({"span": s, "mode": mode, "representation": rep,
                                      "diff": diff, "beats": diff > tolerance,
                                      "verdict": ("beats" if diff > tolerance else
                                                  "is below" if diff < -tolerance else
                                                  "is within the tolerance of")})
    return out


def _range_of(diffs: Sequence[float]) -> str:
    """The range of the non-zero differences, e.g. "-0.0067 to +0.0012"."""
    nonzero = [d for d in diffs if d != 0] or [0.0]
    low, high = min(nonzero), max(nonzero)
    return f"{low:+.4f}" if low == high else f"{low:+.4f} to {high:+.4f}"


def _read_sigma(out_dir: str) -> Optional[dict]:
    path = os.path.join(out_dir, SEED_SPREAD_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def plot(rows: List[dict], path: str) -> str:
    """AUC per span, overall and on new items, for each mode and representation, with the
    must-beat baselines (from the scratch rows)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    styles = {"reuse_warm": "-", "scratch": "--"}
    reps = sorted({r["representation"] for r in rows}, key=features.REPRESENTATIONS.index)
    colors = dict(zip(reps, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    for ax, (key, title, baseline) in zip(axes, (
            ("auc_overall", "overall", baselines_lib.BASELINE_USER_ITEM_RATE),
            ("auc_new_items", "items new in the span", baselines_lib.BASELINE_USER_RATE))):
        for mode in MODES:
            for rep in reps:
                pts = sorted((r["span"], r[key]) for r in rows if r["mode"] == mode
                             and r["representation"] == rep and r[key] is not None)
                if pts:
                    ax.plot(*zip(*pts), styles[mode], marker="o", color=colors[rep],
                            label=f"{rep}, {mode}")
        column = baseline if key == "auc_overall" else f"{baseline}_new_items"
        pts = sorted({r["span"]: r[column] for r in rows if r["mode"] == "scratch"
                      and r.get(column) is not None}.items())
        if pts:
            ax.plot(*zip(*pts), ":", color="gray", label=f"{baseline} (scratch's train split)")
        ax.set_title(f"AUC, {title}")
        ax.set_xlabel("span (evaluated)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reading(rows: List[dict], checks: dict, spread: Optional[dict], spans_summary: Optional[dict],
            representations: Sequence[str] = ()) -> str:
    """README.md of the results folder: the table, the checks, and a span-by-span reading of
    the SID representation against random_hash on new items."""
    lines = ["# Continuous training on a growing catalog (`semids simulate`)", "",
             "Generated by `semids simulate` from results.csv (pipeline/simulate.py); "
             "docs/continuous.md describes the modes.", ""]
    complete = False
    if spans_summary:
        planned = spans_summary["num_spans"] * len(MODES) * len(
            {r["representation"] for r in rows} | set(representations))
        complete = len(rows) >= planned
        if not complete:
            lines += [f"**In progress: {len(rows)} of {planned} runs done** (`semids "
                      "simulate` resumes with the missing ones).", ""]
        lines += [f"Spans: {spans_summary['num_spans']}, interactions per span "
                  f"{spans_summary['rows_per_span']}, items released per span "
                  f"{spans_summary['new_items_per_span']} (seed {spans_summary['seed']}); "
                  f"{spans_summary['dropped_rows']:,} ratings before their item's release "
                  "dropped.", ""]
    lines += ["Span 1 has nothing before it: both modes train from scratch there and evaluate on "
              "the last 20% of span 1. From span 2 on, each run evaluates on the whole new span: "
              "`reuse_warm` trains on the span before it from the last blessed model"
              + _replay_words(rows) + ", `scratch` on every earlier span.", "",
              "| span | mode | representation | overall | new items (rows) | new users | "
              "user_item_rate | user_rate new items | shuffled labels | trained rows | base "
              "model span | seconds | SIDs changed |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["span"], MODES.index(r["mode"]),
                                         features.REPRESENTATIONS.index(r["representation"]))):
        lines.append(
            f"| {r['span']} | {r['mode']} | {r['representation']} | {fmt_auc(r['auc_overall'])} | "
            f"{fmt_auc(r['auc_new_items'])} ({r['num_new_items'] or 0:,}) | "
            f"{fmt_auc(r['auc_new_users'])} | {fmt_auc(r['baseline_user_item_rate'])} | "
            f"{fmt_auc(r['baseline_user_rate_new_items'])} | {fmt_auc(r['auc_shuffled_labels'])} | "
            f"{r['trained_rows'] or 0:,} | {r['base_model_span'] or ''} | "
            f"{fmt_auc(r['seconds'], 0)} | "
            f"{fmt_auc(r['sid_changed_share'], 3) if r['sid_changed_share'] is not None else ''} |")
    lines += ["", "## Checks (spans 2 on)", ""]
    sigma = checks["sigma"]
    lines.append(
        f"- Seed spread: σ = {sigma:.4f} (3 seeds of the ranking model, span {spread['span']}, "
        f"{spread['representation']}), so the per-span tolerance is "
        f"{checks['per_span_tolerance']:.4f}" + (
            f"; on new items σ = {checks['sigma_new_items']:.4f}, tolerance "
            f"{checks['new_item_tolerance']:.4f}." if checks.get("sigma_new_items") is not None
            else ".") if sigma is not None and spread else
        f"- Seed spread: not measured; the per-span tolerance is {PER_SPAN_TOLERANCE}.")
    if checks["span1_mode_diffs"]:
        diffs = checks["span1_mode_diffs"]
        lines.append(
            "- Run-to-run noise: span 1 trains the same configuration in both modes, and their "
            "overall AUCs differ by " + ", ".join(f"{d:+.4f} ({rep})" for rep, d in diffs.items())
            + (": run-to-run noise that σ does not include."
               if any(d != 0 for d in diffs.values()) else "."))
    noise = checks.get("run_to_run")
    if noise:
        differ = len(noise["rows"]) - noise["identical"]
        lines.append(
            f"- Run-to-run noise between sittings: {len(noise['rows'])} rows were also run in "
            f"another sitting with the same code, data and seed ({RERUN_FILE}). "
            + (f"{noise['identical']} of them have the same AUCs to the last digit. "
               if noise["identical"] else "")
            + (f"{f'The other {differ}' if noise['identical'] else 'They'} differ by "
               f"{_range_of(noise['overall'])} overall and {_range_of(noise['new_items'])} on new "
               "items, more than σ says; the SID-against-random_hash verdicts below take the "
               "largest difference as their tolerance when it is wider." if differ else
               "A rerun repeats the run exactly.")
            + (" Within a sitting, two runs of one configuration agree (span 1's two modes)."
               if checks["span1_mode_diffs"] and not any(checks["span1_mode_diffs"].values())
               else ""))
    share = checks["reuse_sid_changed_share_max"]
    lines.append(f"- `sid_changed_share` on `reuse_warm` rows: at most {fmt_auc(share, 3)}.")
    for rep, c in checks["representations"].items():
        lines.append(
            f"- {rep}: span mean overall AUC reuse_warm {c['mean_reuse_warm']:.4f} vs scratch "
            f"{c['mean_scratch']:.4f} ({'meets' if c['mean_ok'] else 'misses'} ≥ scratch − "
            f"{MEAN_TOLERANCE}); per span "
            f"{', '.join(f'{d:+.4f}' for d in c['overall_diff'])} "
            f"({'all' if c['per_span_ok'] else 'not all'} within the tolerance); wall time per "
            f"span {c['seconds_reuse_warm']:.0f} s vs {c['seconds_scratch']:.0f} s, ratio "
            f"{fmt_auc(c['time_ratio'], 2)}.")
    if checks.get("wall_time"):
        lines.append(_wall_time_words(checks["wall_time"], complete))
    lines.append("- The warm start's own settings (learning rate, epochs, none, and the replay "
                 "share) are checked on validation by benchmarks/warm_start_variants.py "
                 "(warm_start_variants.csv, warm_start_replay.csv; docs/continuous.md).")
    lines += ["", "## Against the must-beat baselines (spans 2 on)", "",
              "Each row is held to its span's strongest baseline value over both modes: "
              "`reuse_warm`'s own baselines see only its own train rows (the newest span and what "
              "it replays), and the floor should "
              "not depend on how the model trains.", ""]
    for key, column, what in (
            ("auc_overall", baselines_lib.BASELINE_USER_ITEM_RATE, "overall"),
            ("auc_new_items", f"{baselines_lib.BASELINE_USER_RATE}_new_items", "new items")):
        floor: Dict[int, float] = {}
        for r in rows:
            if r.get(column) is not None:
                floor[r["span"]] = max(floor.get(r["span"], r[column]), r[column])
        later = [r for r in rows if r["span"] > 1 and r[key] is not None and r["span"] in floor]
        margins = [r[key] - floor[r["span"]] for r in later]
        lines.append(f"- {what}: {sum(m > 0 for m in margins)} of {len(later)} rows above "
                     f"`{column}`" + (f" (margins {min(margins):+.4f} to {max(margins):+.4f})."
                                      if later else "."))
        for rep in sorted({r["representation"] for r in later},
                          key=features.REPRESENTATIONS.index):
            for mode in MODES:
                mine = [(r["span"], m) for r, m in zip(later, margins)
                        if r["representation"] == rep and r["mode"] == mode]
                if mine:
                    lines.append(f"  - {rep}, {mode}: " + ", ".join(
                        f"span {s} {m:+.4f}" for s, m in sorted(mine)))
    tolerances = checks["sid_vs_random_hash_tolerance"]
    for name, what, tolerance in (
            ("new_items", "New items", tolerances["new_items"]),
            ("overall_vs_random_hash", "Overall", tolerances["overall"])):
        found = checks[name]
        lines += ["", f"## {what}: the SID representation against random_hash, span by span", ""]
        if not found:
            lines.append("No span has both representations yet.")
            continue
        # σ is the SID representation's; random_hash's seed spread is taken to be alike.
        for mode in MODES:
            mine = [c for c in found if c["mode"] == mode]
            if mine:
                lines.append(f"- {mode}: {_tally(mine)} of {len(mine)} spans.")
        for c in found:
            lines.append(f"- span {c['span']}, {c['mode']}: {c['representation']} {c['verdict']} "
                         f"random_hash {what.lower() if what == 'Overall' else 'on new items'} "
                         f"({c['diff']:+.4f}; tolerance {tolerance:.4f}).")
    return "\n".join(lines) + "\n"


def _tally(found: List[dict]) -> str:
    """The verdicts of `found` counted, e.g. 'beats on 2, within the tolerance on 2, below on
    1'."""
    words = {"beats": "beats on", "is within the tolerance of": "within the tolerance on",
             "is below": "below on"}  # compare's verdicts, in this order
    counts = {v: sum(c["verdict"] == v for c in found) for v in words}
    return ", ".join(f"{words[v]} {n}" for v, n in counts.items() if n)


def _wall_time_words(wall: dict, complete: bool) -> str:
    parts = []
    if wall["sittings"]:
        parts.append(f"{wall['recorded_seconds'] / 3600:.2f} h over {wall['sittings']} recorded "
                     f"sitting(s) ({SITTINGS_FILE})")
    if wall.get("superseded_rows"):
        parts.append(f"less {wall['superseded_seconds'] / 3600:.2f} h of their runs of the "
                     f"{wall['superseded_rows']} rows that a later configuration replaced "
                     f"({SUPERSEDED_FILE}; each run's own seconds)")
    if wall["unrecorded_rows"]:
        parts.append(f"{wall['unrecorded_seconds'] / 3600:.2f} h for the {wall['unrecorded_rows']}"
                     " rows written before sittings were recorded (their runs' own intervals: "
                     "the time between runs is left out)")
    total = wall["total_hours"]
    verdict = (("meets" if total < WALL_TIME_LIMIT_HOURS else "misses")
               + f" the < {WALL_TIME_LIMIT_HOURS:g} h of issue 14" if complete
               else "so far; the simulation is not complete")
    return f"- Wall time: {total:.2f} h in all ({verdict}): " + "; ".join(parts) + "."


def summarize(out_dir: str = DEFAULT_OUT_DIR, spans_summary: Optional[dict] = None,
              representations: Sequence[str] = ()) -> dict:
    """Writes the PNG and README.md from results.csv; returns the checks. representations: the
    ones the simulation runs, so the reading can say which rows are still to come."""
    rows = read_rows(out_dir)
    spread = _read_sigma(out_dir)
    new_item_aucs = [a for a in (spread or {}).get("auc_new_items", []) if a is not None]
    checks = compare(rows, spread["std"] if spread else None,
                     statistics.stdev(new_item_aucs) if len(new_item_aucs) > 1 else None,
                     read_rows(out_dir, RERUN_FILE))
    checks["wall_time"] = (wall_time(rows, read_sittings(out_dir),
                                     read_rows(out_dir, SUPERSEDED_FILE)) if rows else None)
    if rows:
        plot(rows, os.path.join(out_dir, PLOT_FILE))
    with open(os.path.join(out_dir, READING_FILE), "w") as f:
        f.write(reading(rows, checks, spread, spans_summary, representations))
    return checks


def seed_spread(config: RunConfig, metrics: Optional[dict], out_dir: str, work_dir: str,
                span: int, seeds=(0, 1, 2)) -> dict:
    """σ: the sample std (ddof 1) of the overall AUC of the ranking model over `seeds`, trained
    in-process (the experiment runner) on the Transform output of `config`'s newest run, span
    `span`'s scratch run (the split and SIDs fixed), whose `metrics` it was (None: the run is
    repeated first, mostly from the cache). Written to out_dir/seed_spread.json."""
    from pipeline.experiment import run_experiment
    rep, budget = config.representation, config.item_table_size
    rows = run_experiment(config, representations=[rep], budgets=[budget], histories=["with"],
                          seeds=list(seeds), check_evaluator=False, log=_say,
                          out_dir=os.path.join(work_dir, "seed_spread", rep),
                          base_metrics=metrics)
    aucs = [r["auc_overall"] for r in rows
            if r["representation"] == rep and r["auc_overall"] is not None]
    spread = {"span": span, "mode": "scratch", "representation": rep, "seeds": list(seeds),
              "aucs": aucs, "auc_new_items": [r["auc_new_items"] for r in rows
                                              if r["representation"] == rep],
              "std": statistics.stdev(aucs)}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, SEED_SPREAD_FILE), "w") as f:
        json.dump(spread, f, indent=2)
    return spread


def default_seed_spread_span(num_spans: int) -> int:
    """The span σ is measured on: the middle of spans 2..K (4 of 6)."""
    return min(num_spans, num_spans // 2 + 1)


def default_jobs(num_representations: int) -> int:
    """One process per representation, at most one per two cores: a pipeline run already keeps
    about two cores busy (two Beam workers, TensorFlow's threads), so on the 2-core machine two
    processes gained almost nothing (docs/continuous.md, "Processes"), and one keeps each row's
    `seconds` its own."""
    return max(1, min(num_representations, (os.cpu_count() or 1) // 2))


def _say(line: str) -> None:
    """A progress line on the run's console (with its process's prefix, `_simulate_one`)."""
    from pipeline.run import CONSOLE
    CONSOLE.line(line)


def _spans_summary(work_dir: str, out_dir: str) -> Optional[dict]:
    """The spans' summary (spans.json): the work folder's, copied beside results.csv without
    its machine's source paths, so a reading rewritten elsewhere (`--summarize_only`) has it."""
    kept = os.path.join(out_dir, spans_lib.SPANS_FILE)
    for path in (os.path.join(work_dir, "spans", spans_lib.SPANS_FILE), kept):
        if os.path.exists(path):
            with open(path) as f:
                summary = {k: v for k, v in json.load(f).items() if k != "source"}
            if path != kept:
                os.makedirs(out_dir, exist_ok=True)
                with open(kept, "w") as f:
                    json.dump(summary, f, indent=2)
            return summary
    return None


def simulate_command(args, config: RunConfig) -> None:
    """`semids simulate` (pipeline/cli.py)."""
    start = time.time()
    out_dir = args.out_dir or DEFAULT_OUT_DIR
    dataset = config.dataset if config.dataset != "csv" else config.dataset_name
    work_dir = args.work_dir or os.path.join(config.output_dir, "simulate",
                                             f"{dataset}-{args.spans}")
    representations = args.representations or [RANDOM_HASH, chosen_sid_representation(dataset)]
    if not args.summarize_only:
        rows_before = len(read_rows(out_dir))
        jobs = args.jobs or default_jobs(len(representations))
        # SIGTERM (a stopped session, `kill`) reaches here as KeyboardInterrupt, also while
        # Beam's workers run (the CLI's stops_like_ctrl_c), so the finally still records the time.
        try:
            simulate(dataset, args.spans, representations, out_dir=out_dir, work_dir=work_dir,
                     seed=config.seed, base=config,
                     seed_spread_span=args.seed_spread_span or default_seed_spread_span(
                         args.spans), jobs=jobs)
        finally:
            # A sitting with rows to write counts, also when it is interrupted or fails (its
            # time went into the simulation); one with nothing left to do does not.
            if rows_before < len(plan(args.spans, representations)):
                record_sitting(out_dir, start, rows_before, jobs, representations)
    checks = summarize(out_dir, _spans_summary(work_dir, out_dir), representations)
    with open(os.path.join(out_dir, READING_FILE)) as f:
        _say("\n" + f.read())
    _say(f"semids simulate: {len(read_rows(out_dir))} rows in {os.path.join(out_dir, RESULTS_FILE)}"
         f"; {time.time() - start:.0f}s this sitting; checks: "
         f"{json.dumps(checks['representations'], default=str)[:400]}")
