"""The experiment's grid runner (`semids experiment`, `make experiment`): every item
representation x table budgets x with/without user history x seeds, one ranking model trained per
combination, plus the must-beat baselines (pipeline/baselines.py) once per experiment. The
package's other modules: data.py (the base run's artifacts, the transformed splits in memory),
metrics.py (AUCs by slice, the Evaluator check), results.py (results.csv, table.md,
summary.json, the plot).
"""
import dataclasses
import json
import os
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from pipeline import baselines as baselines_lib
from pipeline import evaluation
from pipeline.config import RunConfig
from pipeline.experiment.data import (IS_NEW_ITEM, IS_NEW_USER, IS_TAIL_ITEM, LABEL,
                                      META_FEATURES, OPTIONAL_META_FEATURES, predict_scores,
                                      open_base_run, prepare_base_run, run_features,
                                      train_in_memory)
from pipeline.experiment.metrics import (AUC_KEYS, EVALUATOR_TOLERANCE, PROBE_KEYS,
                                         check_verdict, evaluator_check, metrics_of_masks,
                                         slice_masks)
from pipeline.experiment.results import (BASE_CONFIG_FILE, EVALUATOR_CHECK_FILE, NUM_KEYS,
                                         RESULTS_FILE, TABLE_FILE, WITH, WITHOUT, append_result,
                                         baseline_key, config_key, fmt_auc, is_baseline,
                                         read_results, run_key, summarize)
from pipeline.run import fmt_duration
from schemas import features

HISTORY_SETTINGS = {WITH: True, WITHOUT: False}
DEFAULT_SEEDS = (0, 1, 2)
# `semids experiment`'s training processes: one keeps about 1.2 of this machine's 2 cores busy.
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
# Datasets trained one model at a time: an ML-1M sid_ngram_2 worker holds ~11 GB (the splits'
# n-gram ids in numpy and in tf.data; two were OOM-killed on the 24 GB machine), and one process
# on both cores is also faster there (batch 2048: a sid_ngram_2 unit took 115 s in process and
# ~400 s in each of 2 one-thread workers).
DATASET_WORKERS = {"ml1m": 1}
# Datasets whose study runs with user history only (issue 11: ML-1M, with history, every budget,
# representation and seed, in under 3 h).
DATASET_HISTORIES = {"ml1m": (WITH,)}


def default_histories(dataset: str) -> List[str]:
    """`--histories` when not given: with and without, or the dataset's."""
    return list(DATASET_HISTORIES.get(dataset, (WITH, WITHOUT)))


def default_workers(dataset: str) -> int:
    """`--workers` when not given: one per core up to 2, or the dataset's limit."""
    return min(DEFAULT_WORKERS, DATASET_WORKERS.get(dataset, DEFAULT_WORKERS))


def _histories(histories) -> List[str]:
    out = []
    for h in histories:
        if isinstance(h, bool):
            h = WITH if h else WITHOUT
        if h not in HISTORY_SETTINGS:
            raise ValueError(f"history setting must be one of {sorted(HISTORY_SETTINGS)}, got {h!r}")
        out.append(h)
    return list(dict.fromkeys(out))


def plan_runs(representations, budgets, histories, seeds) -> List[tuple]:
    """Every (representation, budget, history, seed), representation outermost (so the features
    in memory change as rarely as possible)."""
    return [(r, int(b), h, int(s)) for r in representations for b in budgets
            for h in histories for s in seeds]


def baseline_rows(base_run, key: str) -> List[dict]:
    """results.csv's rows of the baselines (representation = the baseline's name; budget,
    history and seed blank): computed from the base run's InteractionFeatures splits, as
    metrics.json's `baselines` (evaluation.baseline_results), H = the base run's history_length."""
    result = evaluation.baseline_results(base_run.raw_examples, base_run.config.history_length)
    finished = time.strftime("%Y-%m-%dT%H:%M:%S")
    return [{"representation": name, "table_budget": None, "history": None, "seed": None,
             **{k: None if v is None else round(v, 6) for k, v in aucs.items()},
             **result["counts"], "dataset": base_run.config.dataset_name, "config_key": key,
             "finished_at": finished}
            for name, aucs in result["metrics"].items()]


def model_key(run: tuple, layout) -> tuple:
    """What decides the model a run (representation, budget, history, seed) trains: the budget
    only through `layout(representation, budget)` (representations.table_layout)."""
    rep, budget, hist, seed = run
    return rep, hist, seed, layout(rep, budget)


def plan_units(todo, layout) -> List[List[tuple]]:
    """Groups the runs of `todo` that train the same model: runs of one representation, history
    setting and seed whose budgets give the same `layout(representation, budget)`
    (representations.table_layout: dense_content has no table, and sid_ngram_1's tables are
    exact at every budget above L x K) train once and are written for each budget. Order is
    kept."""
    units: List[List[tuple]] = []
    first = {}
    for run in todo:
        same = model_key(run, layout)
        if same in first:
            units[first[same]].append(run)
        else:
            first[same] = len(units)
            units.append([run])
    return units


def reuse_finished(todo, done_rows, layout) -> Tuple[List[dict], List[tuple]]:
    """The rows a run of `todo` can take from a finished run that trained the same model
    (model_key, as in plan_units): a copy of that row with the run's budget and `seconds` 0. So
    adding budgets later does not retrain dense_content or sid_ngram_1. Returns (copied rows,
    the runs still to train)."""
    finished = {}
    for row in done_rows:
        if not is_baseline(row):
            finished.setdefault(model_key(run_key(row), layout), row)
    copies, left = [], []
    for run in todo:
        row = finished.get(model_key(run, layout))
        if row is None:
            left.append(run)
        else:
            copies.append({**row, "table_budget": run[1], "seconds": 0.0})
    return copies, left


class _EvalRows:
    """What every run scores against: the eval rows' meta features and slice masks."""

    def __init__(self, data):
        self.meta = list(META_FEATURES) + [f for f in OPTIONAL_META_FEATURES if data.has(f)]
        train_items = data.get(features.TRAIN, [features.ITEM_ID_FINGERPRINT])[
            features.ITEM_ID_FINGERPRINT]
        self.eval_meta = data.get(features.EVAL, self.meta)
        eval_counts = baselines_lib.train_rows(train_items,
                                               self.eval_meta[features.ITEM_ID_FINGERPRINT])
        # New items and, when the Transform output passes them through, new users and the tail
        # (else the tail from the train split's interaction counts per item).
        self.slices = slice_masks(self.eval_meta[IS_NEW_ITEM], eval_counts,
                                  is_new_user=self.eval_meta.get(IS_NEW_USER),
                                  is_tail_item=self.eval_meta.get(IS_TAIL_ITEM))
        self.num_train_items = int(np.unique(train_items).size)

    def describe(self, data) -> str:
        s = self.slices
        return (f"train {data.num_rows(features.TRAIN)} rows ({self.num_train_items} items), "
                f"validation {data.num_rows(features.VALIDATION)}, eval "
                f"{len(self.eval_meta[LABEL])} (new items {int(s['new_items'].sum())}, tail "
                f"{int(s['tail'].sum())}"
                + (f", new users {int(s['new_users'].sum())})" if "new_users" in s else ")"))


def _run_unit(base: RunConfig, unit, out_dir: str, key: str, data, catalog_embeddings,
              eval_rows: _EvalRows) -> str:
    """Trains and scores one model (a unit of plan_units) and appends a row per run of the unit
    to results.csv at once (the unit's later rows carry `seconds` 0: the model was trained
    once); returns its log line."""
    from pipeline import pipeline as pipeline_lib

    t0 = time.time()
    rep, budget, hist, seed = unit[0]
    use_history = HISTORY_SETTINGS[hist]
    names = run_features(rep, budget, use_history)
    # Frees the rest; what this representation and budget read with history stays for their
    # other runs.
    data.keep(set(names) | set(eval_rows.meta) | set(run_features(rep, budget, True)))
    train = data.get(features.TRAIN, names)
    val = data.get(features.VALIDATION, names)
    ev = data.get(features.EVAL, names)

    cfg = pipeline_lib.ranking_config(dataclasses.replace(
        base, representation=rep, item_table_size=budget, use_history=use_history, seed=seed))
    model, summary = train_in_memory(cfg, train, val, catalog_embeddings)
    scores = predict_scores(model, ev)
    eval_meta = eval_rows.eval_meta
    # Probes (runs with history): the model on the eval rows with the history labels shuffled
    # and with no history.
    probes = (evaluation.probe_metrics(model, {**ev, IS_NEW_ITEM: eval_meta[IS_NEW_ITEM]},
                                       rep, budget)
              if use_history else dict.fromkeys(PROBE_KEYS))
    row = {"representation": rep, "table_budget": budget, "history": hist, "seed": seed,
           **dict.fromkeys(AUC_KEYS + NUM_KEYS),
           **metrics_of_masks(eval_meta[LABEL], scores, eval_rows.slices), **probes,
           "epochs_run": summary["epochs_run"], "best_epoch": summary["best_epoch"],
           "best_val_auc": round(summary["best_val_auc"], 6),
           "item_table_rows": summary["item_table_rows"],
           "seconds": round(time.time() - t0, 1), "dataset": base.dataset_name,
           "config_key": key, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "hparams": json.dumps(cfg.hparams(), sort_keys=True)}
    for k in AUC_KEYS:
        row[k] = None if row[k] is None else round(row[k], 6)
    for j, (_, run_budget, _, _) in enumerate(unit):
        append_result(out_dir, {**row, "table_budget": run_budget,
                                **({"seconds": 0.0} if j else {})})
    del model
    budgets = "/".join(str(b) for _, b, _, _ in unit)
    return (f"{rep:<16} B={budgets:<6} history={hist:<7} seed={seed}: "
            f"auc {fmt_auc(row['auc_overall'])} new {fmt_auc(row['auc_new_items'])} "
            f"tail {fmt_auc(row['auc_tail'])}"
            + (f" shuffled-labels {fmt_auc(row['auc_shuffled_labels'])}" if use_history else "")
            + f" ({summary['epochs_run']} epochs, {time.time() - t0:.0f}s)")


def _progress(log, done: int, total: int, line: str, loop_start: float) -> None:
    elapsed = time.time() - loop_start
    eta = elapsed / done * (total - done)
    log(f"  [{done}/{total}] {line} elapsed {fmt_duration(elapsed)}, ETA {fmt_duration(eta)}")


# A worker process's state (_init_worker): the base run's splits in memory, read once.
_WORKER_STATE: dict = {}


def _init_worker(base_dict: dict, metrics: dict) -> None:
    """Starts a worker of `_run_in_workers`: one TF thread; reads the base run's artifacts (the
    parent ran it)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        base = RunConfig.from_dict(base_dict)
        _, data, catalog_embeddings = open_base_run(base, metrics)
        _WORKER_STATE.update(base=base, data=data, eval_rows=_EvalRows(data),
                             catalog_embeddings=catalog_embeddings)
    except Exception as e:  # noqa: BLE001 - an exception here would break the pool unexplained
        _WORKER_STATE["error"] = f"the worker could not read the base run: {type(e).__name__}: {e}"


def _worker_unit(unit, out_dir: str, key: str) -> Tuple[str, float]:
    t0 = time.time()
    w = _WORKER_STATE
    if "error" in w:
        raise RuntimeError(w["error"])
    line = _run_unit(w["base"], unit, out_dir, key, w["data"], w["catalog_embeddings"],
                     w["eval_rows"])
    return line, time.time() - t0


def _run_in_workers(base: RunConfig, units, out_dir: str, key: str, metrics: dict, workers: int,
                    log=print) -> List[float]:
    """Runs `units` (plan_units) on `workers` spawned processes, each taking the next unit when
    it is free; each appends its rows to results.csv (append_result locks the file). A failed
    unit fails the experiment after the others finish: what they wrote stays, and a rerun
    resumes."""
    import concurrent.futures
    import multiprocessing

    log(f"experiment: {len(units)} models to train over {workers} worker processes "
        f"(one TF thread each)")
    context = multiprocessing.get_context("spawn")
    run_seconds, errors = [], []
    loop_start = time.time()
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker,
            initargs=(base.to_dict(), metrics)) as pool:
        futures = {pool.submit(_worker_unit, unit, out_dir, key): unit for unit in units}
        for future in concurrent.futures.as_completed(futures):
            try:
                line, seconds = future.result()
            except Exception as e:  # noqa: BLE001 - reported below, after every unit ends
                errors.append(f"{futures[future][0]}: {type(e).__name__}: {e}")
                continue
            run_seconds.append(seconds)
            _progress(log, len(run_seconds), len(units), line, loop_start)
    if errors:
        # A worker that could not start fails every unit it takes, the same way.
        shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        raise RuntimeError(f"experiment: {len(errors)} of {len(units)} models failed: {shown}; "
                           f"finished runs are in {os.path.join(out_dir, RESULTS_FILE)} and a "
                           f"rerun resumes")
    return run_seconds


def run_experiment(base: RunConfig, representations: Sequence[str] = features.REPRESENTATIONS,
                   budgets: Optional[Sequence[int]] = None, histories=None,
                   seeds: Sequence[int] = DEFAULT_SEEDS, out_dir: Optional[str] = None,
                   quiet: bool = False, check_evaluator: bool = True, log=print,
                   workers: int = 1, base_metrics: Optional[dict] = None) -> List[dict]:
    """Runs what results.csv in out_dir does not hold yet; returns every row of results.csv.
    Writes table.md / summary.json / auc_vs_budget.png at the end (summarize). base_metrics:
    the metrics of the base pipeline's newest run, which then is not run again (its artifacts
    are read as they are). histories None: the dataset's (default_histories)."""
    start = time.time()
    out_dir = out_dir or os.path.join(base.results_dir, "experiment", base.dataset_name)
    budgets = [int(b) for b in (budgets if budgets is not None else base.table_budgets)]
    histories = _histories(default_histories(base.dataset_name) if histories is None
                           else histories)
    seeds = [int(s) for s in seeds]
    representations = list(dict.fromkeys(representations))
    for r in representations:
        if r not in features.REPRESENTATIONS:
            raise ValueError(f"unknown representation {r!r}; known: {features.REPRESENTATIONS}")
    not_prepared = [b for b in budgets if b not in base.all_table_budgets]
    if not_prepared:
        raise ValueError(
            f"table budget(s) {not_prepared} are not prepared by the base run's Transform "
            f"(it prepares {list(base.all_table_budgets)}: table_budgets + item_table_size); "
            f"add them with --table_budgets")
    if not (representations and budgets and histories and seeds):
        raise ValueError("nothing to run: representations, budgets, histories and seeds must be non-empty")

    os.makedirs(out_dir, exist_ok=True)
    key = config_key(base)
    done_rows = read_results(out_dir)
    foreign = sorted({r.get("config_key") for r in done_rows if r.get("config_key") != key})
    if foreign:
        raise ValueError(
            f"{os.path.join(out_dir, RESULTS_FILE)} holds runs of another base config (key(s) "
            f"{foreign}, this one is {key}; see {BASE_CONFIG_FILE}); use another --out_dir or "
            f"move the file away")
    with open(os.path.join(out_dir, BASE_CONFIG_FILE), "w") as f:
        json.dump({"config_key": key, "config": base.to_dict()}, f, indent=2, sort_keys=True)

    plan = plan_runs(representations, budgets, histories, seeds)
    done = {run_key(r) for r in done_rows}
    todo = [p for p in plan if p not in done]
    from models.ranking import representations as representations_lib

    def layout(rep, budget):
        return representations_lib.table_layout(rep, budget, base.sid_length,
                                                base.rqvae_codebook_size)
    # A run whose model was trained at another budget (same table layout) is a copy of its row.
    copies, todo = reuse_finished(todo, done_rows, layout)
    for row in copies:
        append_result(out_dir, row)
    # The baselines: written once per experiment (a rerun finds them by their key).
    baselines_todo = [b for b in baselines_lib.BASELINES if baseline_key(b) not in done]
    log(f"experiment: {len(plan)} runs planned ({len(representations)} representations x "
        f"{len(budgets)} budgets x {len(histories)} history settings x {len(seeds)} seeds), "
        f"{len(plan) - len(todo) - len(copies)} already in {os.path.join(out_dir, RESULTS_FILE)}, "
        f"{len(copies)} copied from a finished run of the same model, {len(todo)} to run"
        + (f"; baselines {', '.join(baselines_todo)} to compute" if baselines_todo else ""))

    if not todo and not baselines_todo and (not check_evaluator
                     or os.path.exists(os.path.join(out_dir, EVALUATOR_CHECK_FILE))):
        summary = summarize(out_dir)
        log(f"experiment: nothing to run; {os.path.join(out_dir, TABLE_FILE)}, {summary['plot']}")
        return read_results(out_dir)

    # 1) The base pipeline run (cached when done before): split, SIDs, SPM models, Transform.
    log(f"experiment: base pipeline run ({base.dataset_name}, {base.representation}, "
        f"B={base.item_table_size})")
    base_run, data, catalog_embeddings = (prepare_base_run(base, quiet=quiet)
                                          if base_metrics is None else
                                          open_base_run(base, base_metrics))

    if check_evaluator and (todo or not os.path.exists(os.path.join(out_dir, EVALUATOR_CHECK_FILE))):
        check = evaluator_check(base_run, data, catalog_embeddings)
        with open(os.path.join(out_dir, EVALUATOR_CHECK_FILE), "w") as f:
            json.dump(check, f, indent=2, sort_keys=True)
        log("experiment: in-process AUC vs the Evaluator's on the base run: " + ", ".join(
            f"{k} {fmt_auc(check['evaluator'][k])} vs {fmt_auc(check['in_process'][k])}"
            for k in check["evaluator"]) + f" -> {check_verdict(check)} "
            f"(tolerance {EVALUATOR_TOLERANCE})")
        if not check["explained_by_bucketing"]:
            raise RuntimeError(f"in-process metrics differ from the Evaluator's: "
                               f"{json.dumps(check['abs_diff'])} (see {EVALUATOR_CHECK_FILE})")
        if not check["ok"]:
            log(f"experiment: a difference exceeds {EVALUATOR_TOLERANCE} but is within what "
                f"TFMA's bucketing can cause on that slice ({json.dumps(check['bucket_tie_bound'])})")

    # 2) The must-beat baselines, once (from the base run's InteractionFeatures splits).
    if baselines_todo:
        for row in baseline_rows(base_run, key):
            if row["representation"] in baselines_todo:
                append_result(out_dir, row)
                done_rows.append(row)
                log(f"  {row['representation']:<24}: auc {fmt_auc(row['auc_overall'])} new "
                    f"{fmt_auc(row['auc_new_items'])} tail {fmt_auc(row['auc_tail'])} new users "
                    f"{fmt_auc(row['auc_new_users'])}")

    # 3) The runs: in this process, or split over `workers` processes of one TF thread each
    # (one training process keeps about 1.2 of 2 cores busy).
    units = plan_units(todo, layout)
    workers = max(1, min(int(workers), len(units)))
    eval_rows = _EvalRows(data)
    log(f"experiment: {eval_rows.describe(data)}")
    if workers == 1:
        run_seconds, loop_start = [], time.time()
        for unit in units:
            t0 = time.time()
            line = _run_unit(base, unit, out_dir, key, data, catalog_embeddings, eval_rows)
            run_seconds.append(time.time() - t0)
            _progress(log, len(run_seconds), len(units), line, loop_start)
    else:
        data.keep(())  # each worker reads its own copy
        run_seconds = _run_in_workers(base, units, out_dir, key, base_run.metrics, workers, log)

    summary = summarize(out_dir)
    log(f"experiment: {len(todo)} runs in {fmt_duration(time.time() - start)}"
        + (f" ({np.mean(run_seconds):.0f}s per model"
           + (f", {workers} workers)" if workers > 1 else ")") if run_seconds else "")
        + f"; {os.path.join(out_dir, TABLE_FILE)}, {summary['plot']}")
    return read_results(out_dir)
