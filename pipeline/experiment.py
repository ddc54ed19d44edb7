"""The experiment runner (`semids experiment`, `make experiment`): every item representation x
table budgets x with/without user history x seeds, one ranking model trained per combination.

    run_experiment(base, representations, budgets, histories, seeds, out_dir)
    summarize(out_dir)

1. The TFX pipeline runs once with `base` (cached when it already ran): it fixes the split, the
   Semantic IDs, the SentencePiece models and the Transform output for every budget in
   `base.all_table_budgets`. Nothing of that changes between runs.
2. The transformed train/validation/eval splits are read once into memory (per feature, only what
   the current representation needs).
3. Each (representation, budget, history, seed) trains the Trainer's model
   (models/ranking/trainer_module.train_model: early stopping on the *validation* split; the seed
   sets the initialisation, dropout and the shuffling order), scores the eval split in-process and
   appends one row to results.csv at once, so a rerun skips finished runs (resumable).

Metrics are exact ROC AUCs (sklearn) on the transformed eval split, overall and by slice: new items
(is_new_item=1), existing items (is_new_item=0) and the tail (items with 1..4 training
interactions, new items excluded). `evaluator_check` shows that this in-process path gives the
pipeline Evaluator's (TFMA) AUCs for the pipeline Trainer's own model; `run_experiment` runs it on
the base configuration and writes `evaluator_check.json`.

Outputs in out_dir (default results/experiment/): results.csv (one row per run), table.md,
summary.json, auc_vs_budget.png, base_config.json, evaluator_check.json.
"""
import csv
import dataclasses
import glob
import hashlib
import json
import math
import os
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from pipeline.config import RunConfig
from pipeline.run import fmt_duration, run_pipeline
from schemas import features

RESULTS_FILE = "results.csv"
TABLE_FILE = "table.md"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "auc_vs_budget.png"
BASE_CONFIG_FILE = "base_config.json"
EVALUATOR_CHECK_FILE = "evaluator_check.json"

WITH, WITHOUT = "with", "without"
HISTORY_SETTINGS = {WITH: True, WITHOUT: False}
DEFAULT_SEEDS = (0, 1, 2)

# The tail slice: existing items with this many training interactions (inclusive).
TAIL_MIN_INTERACTIONS, TAIL_MAX_INTERACTIONS = 1, 4
# TFMA's AUC is a bucketed approximation (10000 thresholds); the exact AUC must agree within this.
EVALUATOR_TOLERANCE = 1e-3
TFMA_NUM_THRESHOLDS = 10000  # tfma.metrics.AUC's default
# Batch size for validation and eval scoring (no effect on the metrics: dropout is off and
# Keras' AUC accumulates over batches); training keeps the config's batch_size.
SCORING_BATCH_SIZE = 4096

AUC_KEYS = ("auc_overall", "auc_new_items", "auc_existing_items", "auc_tail")
AUC_LABELS = {"auc_overall": "overall", "auc_new_items": "new items",
              "auc_existing_items": "existing items", "auc_tail": "tail (1-4 train interactions)"}
COLUMNS = ("representation", "table_budget", "history", "seed",
           "auc_overall", "auc_new_items", "auc_existing_items", "auc_tail",
           "num_eval", "num_new_items", "num_existing_items", "num_tail",
           "epochs_run", "best_epoch", "best_val_auc", "item_table_rows", "seconds",
           "dataset", "config_key", "finished_at")
RUN_KEY = ("representation", "table_budget", "history", "seed")

LABEL = features.transformed_name(features.LABEL)
IS_NEW_ITEM = features.transformed_name(features.IS_NEW_ITEM)

# RunConfig fields that do not change what a run of the experiment computes (paths, runner,
# blessing thresholds) or that the experiment sweeps itself; every other field goes into the
# config key that results.csv rows carry.
_KEY_EXCLUDED = ("pipeline_name", "output_dir", "results_dir", "artifact_root", "runner",
                 "direct_num_workers", "beam_args", "enable_cache", "min_auc",
                 "auc_regression_tolerance",
                 "representation", "item_table_size", "use_history", "table_budgets",
                 "embed_batch_size", "encoder_dir")


# --- which transformed features a run reads ------------------------------------------------------
def item_features(representation: str, budget: int) -> Tuple[str, str]:
    """(candidate feature, history feature) that `representation` embeds
    (models/ranking/representations.py)."""
    if representation == features.RANDOM_HASH:
        return features.ITEM_ID_FINGERPRINT, features.HISTORY_FINGERPRINT
    if representation == features.DENSE_CONTENT:
        return features.ITEM_CATALOG_ROW, features.HISTORY_CATALOG_ROW
    if representation in (features.SID_NGRAM_1, features.SID_NGRAM_2, features.SID_PREFIX_NGRAM):
        return features.ITEM_SID, features.HISTORY_SID
    if representation == features.SID_SPM:
        return features.item_spm_pieces(budget), features.history_spm_pieces(budget)
    raise ValueError(f"unknown representation {representation!r}; known: {features.REPRESENTATIONS}")


def model_features(representation: str, budget: int, use_history: bool) -> Tuple[str, ...]:
    """The transformed features the ranking model reads for one run, label included."""
    item, history = item_features(representation, budget)
    names = [LABEL, features.USER_ID_HASHED, item]
    if use_history:
        names += [history, features.HISTORY_LABELS_DENSE, features.HISTORY_MASK]
    return tuple(dict.fromkeys(names))


# --- metrics -------------------------------------------------------------------------------------
def exact_auc(labels: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """ROC AUC (sklearn, exact); None when the slice is empty or has one class only."""
    from sklearn.metrics import roc_auc_score
    labels = np.asarray(labels)
    if labels.size == 0 or np.unique(labels).size < 2:
        return None
    return float(roc_auc_score(labels, np.asarray(scores, np.float64)))


def bucket_tie_bound(labels: np.ndarray, scores: np.ndarray,
                     num_thresholds: int = TFMA_NUM_THRESHOLDS) -> Optional[float]:
    """An upper bound on |exact AUC - TFMA's AUC| for one slice. TFMA bins the scores into a
    histogram of `num_thresholds` buckets, rebins it onto thresholds 1/(num_thresholds-1) apart and
    sums trapezoids: binning keeps the order of scores, so a positive/negative pair either keeps
    its order or lands in one bin and counts 1/2 instead of 0 or 1. Pairs closer than two bin
    widths can share a bin. The bound is large only on small slices (one pair among P x N)."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    pos, neg = np.sort(scores[labels == 1]), np.sort(scores[labels == 0])
    if pos.size == 0 or neg.size == 0:
        return None
    width = 1.0 / (num_thresholds - 1) + 1.0 / num_thresholds
    close = (np.searchsorted(neg, pos + width, side="right")
             - np.searchsorted(neg, pos - width, side="left"))
    return float(0.5 * close.sum() / (pos.size * neg.size))


def count_interactions(train_fingerprints: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(sorted unique item fingerprints, their training interaction counts)."""
    return np.unique(np.asarray(train_fingerprints, np.int64), return_counts=True)


def lookup_counts(counts: Tuple[np.ndarray, np.ndarray], fingerprints: np.ndarray) -> np.ndarray:
    keys, n = counts
    fingerprints = np.asarray(fingerprints, np.int64)
    if keys.size == 0:
        return np.zeros(fingerprints.shape, np.int64)
    pos = np.clip(np.searchsorted(keys, fingerprints), 0, keys.size - 1)
    return np.where(keys[pos] == fingerprints, n[pos], 0)


def slice_masks(is_new: np.ndarray, train_counts: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    is_new = np.asarray(is_new).reshape(-1)
    masks = {"overall": np.ones(is_new.shape, bool), "new_items": is_new == 1,
             "existing_items": is_new == 0}
    if train_counts is not None:
        train_counts = np.asarray(train_counts).reshape(-1)
        masks["tail"] = ((is_new == 0) & (train_counts >= TAIL_MIN_INTERACTIONS)
                         & (train_counts <= TAIL_MAX_INTERACTIONS))
    return masks


def slice_metrics(labels: np.ndarray, scores: np.ndarray, is_new: np.ndarray,
                  train_counts: Optional[np.ndarray] = None) -> dict:
    """{auc_<slice>, num_<slice>} for overall, new_items, existing_items (and tail when the
    per-row training interaction counts of the eval rows' items are given)."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores).reshape(-1)
    out = {}
    for name, mask in slice_masks(is_new, train_counts).items():
        out[f"auc_{name}"] = exact_auc(labels[mask], scores[mask])
        out["num_eval" if name == "overall" else f"num_{name}"] = int(mask.sum())
    return out


# --- data ----------------------------------------------------------------------------------------
class TransformedSplits:
    """The Transform output's splits held in memory as numpy arrays, feature by feature: a
    feature is parsed from the gzipped TFRecords the first time it is asked for, and `keep`
    frees those no longer needed (history_spm_<B> is [rows, H, S] int64 per budget)."""

    def __init__(self, transformed_examples_uri: str, transform_graph_uri: str):
        import tensorflow_transform as tft
        self.uri = transformed_examples_uri
        self.spec = tft.TFTransformOutput(transform_graph_uri).transformed_feature_spec()
        self._data: Dict[str, Dict[str, np.ndarray]] = {s: {} for s in features.SPLITS}

    def files(self, split: str) -> List[str]:
        files = sorted(glob.glob(os.path.join(self.uri, f"Split-{split}", "*")))
        if not files:
            raise RuntimeError(f"no transformed examples for split {split!r} under {self.uri}")
        return files

    def get(self, split: str, names: Iterable[str]) -> Dict[str, np.ndarray]:
        import tensorflow as tf
        names = list(dict.fromkeys(names))
        unknown = [n for n in names if n not in self.spec]
        if unknown:
            raise ValueError(f"features {unknown} are not in the Transform output "
                             f"(has {sorted(self.spec)})")
        cache = self._data[split]
        missing = [n for n in names if n not in cache]
        if missing:
            spec = {n: self.spec[n] for n in missing}
            parts: Dict[str, list] = {n: [] for n in missing}
            ds = (tf.data.TFRecordDataset(self.files(split), compression_type="GZIP")
                  .batch(8192).map(lambda x: tf.io.parse_example(x, spec)))
            for batch in ds:
                for n in missing:
                    parts[n].append(batch[n].numpy())
            for n in missing:
                cache[n] = np.concatenate(parts[n]) if parts[n] else np.zeros([0], np.int64)
        return {n: cache[n] for n in names}

    def keep(self, names: Iterable[str]) -> None:
        names = set(names)
        for cache in self._data.values():
            for n in [n for n in cache if n not in names]:
                del cache[n]

    def num_rows(self, split: str) -> int:
        return int(len(self.get(split, [LABEL])[LABEL]))

    def nbytes(self) -> int:
        return int(sum(a.nbytes for cache in self._data.values() for a in cache.values()))


def make_dataset(arrays: Dict[str, np.ndarray], batch_size: int, shuffle_seed: Optional[int] = None):
    """Batches of `arrays` (row-aligned): reshuffled every epoch with `shuffle_seed`, or in order.
    Shuffles row indices and gathers whole batches (cheaper than shuffling row structures)."""
    import tensorflow as tf
    n = len(next(iter(arrays.values())))
    tensors = {k: tf.constant(v) for k, v in arrays.items()}
    ds = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        ds = ds.shuffle(n, seed=int(shuffle_seed), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda idx: {k: tf.gather(t, idx) for k, t in tensors.items()})
    return ds.prefetch(tf.data.AUTOTUNE)


def predict_scores(model, arrays: Dict[str, np.ndarray]) -> np.ndarray:
    """Probabilities of a positive label, in row order."""
    import tensorflow as tf
    logits = model.predict(make_dataset(arrays, SCORING_BATCH_SIZE), verbose=0)
    return tf.sigmoid(tf.reshape(logits, [-1])).numpy()


# --- pipeline artifacts --------------------------------------------------------------------------
@dataclasses.dataclass
class BaseRun:
    """What the base pipeline run fixed for every run of the experiment."""
    config: RunConfig
    metrics: dict
    transformed_examples_uri: str
    transform_graph_uri: str
    raw_examples_uri: str
    trainer_model_uri: str
    evaluation_uri: str


def base_run_artifacts(config: RunConfig, metrics: dict) -> BaseRun:
    from pipeline import report
    outputs = report.latest_run_outputs(config)

    def uri(component, key):
        try:
            return outputs[component][key][0].uri
        except (KeyError, IndexError):
            raise RuntimeError(f"the latest run of pipeline {config.pipeline_name!r} has no "
                               f"{component}.{key} output") from None

    evaluation = uri("Evaluator", "evaluation")
    if metrics.get("evaluation_uri") and metrics["evaluation_uri"] != evaluation:
        raise RuntimeError(
            f"another run of pipeline {config.pipeline_name!r} finished while the experiment's "
            f"base run was read ({metrics['evaluation_uri']} vs {evaluation}); rerun the experiment")
    return BaseRun(config=config, metrics=metrics,
                   transformed_examples_uri=uri("Transform", "transformed_examples"),
                   transform_graph_uri=uri("Transform", "transform_graph"),
                   raw_examples_uri=uri("InteractionFeatures", "examples"),
                   trainer_model_uri=uri("Trainer", "model"), evaluation_uri=evaluation)


def _serving_scores(model_dir: str, raw_eval_files: Sequence[str], batch_size: int = 2048):
    """Scores the raw eval rows with the exported `serving_tf_example` signature (what TFMA
    calls); returns (labels, is_new_item, scores)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops of the Transform graph)
    loaded = tf.saved_model.load(model_dir)
    serve = loaded.signatures[features.SERVING_TF_EXAMPLE_SIGNATURE]
    spec = {features.LABEL: tf.io.FixedLenFeature([], tf.int64),
            features.IS_NEW_ITEM: tf.io.FixedLenFeature([], tf.int64)}
    labels, is_new, scores = [], [], []
    for batch in tf.data.TFRecordDataset(list(raw_eval_files), compression_type="GZIP").batch(batch_size):
        parsed = tf.io.parse_example(batch, spec)
        labels.append(parsed[features.LABEL].numpy())
        is_new.append(parsed[features.IS_NEW_ITEM].numpy())
        scores.append(serve(examples=batch)[features.PREDICTION_KEY].numpy().reshape(-1))
    return np.concatenate(labels), np.concatenate(is_new), np.concatenate(scores)


def load_trainer_model(base: BaseRun, data: TransformedSplits, catalog_embeddings=None):
    """The pipeline Trainer's model as a Keras model taking transformed features: built from the
    Trainer's config and given the exported SavedModel's weights."""
    import tensorflow as tf
    from models.ranking import trainer_module
    from pipeline import pipeline as pipeline_lib
    cfg = pipeline_lib.ranking_config(base.config)
    model = trainer_module.build_model(cfg, catalog_embeddings)
    names = model_features(base.config.representation, base.config.item_table_size,
                           base.config.use_history)
    sample = {k: v[:2] for k, v in data.get(features.VALIDATION, names).items()}
    model({k: tf.constant(v) for k, v in sample.items()}, training=False)
    variables = os.path.join(base.trainer_model_uri, "Format-Serving", "variables", "variables")
    model.load_weights(variables).expect_partial()
    return model, names


def evaluator_check(base: BaseRun, data: Optional[TransformedSplits] = None,
                    catalog_embeddings=None) -> dict:
    """Compares, for the pipeline Trainer's own model, the Evaluator's (TFMA) AUC overall / on new
    items / on existing items with (1) sklearn's exact AUC of the serving_tf_example scores of the
    raw eval split and (2) the experiment's in-process path: the model on the transformed eval
    split (TransformedSplits + predict_scores + slice_metrics). `ok` when every difference is
    within EVALUATOR_TOLERANCE."""
    from pipeline import report
    ev = report.read_evaluation(base.evaluation_uri)
    tfma_aucs = {"auc_overall": ev.get("", {}).get("auc"),
                 "auc_new_items": ev.get(f"{features.IS_NEW_ITEM}=1", {}).get("auc"),
                 "auc_existing_items": ev.get(f"{features.IS_NEW_ITEM}=0", {}).get("auc")}
    raw_files = sorted(glob.glob(os.path.join(base.raw_examples_uri, f"Split-{features.EVAL}", "*")))
    labels, is_new, scores = _serving_scores(
        os.path.join(base.trainer_model_uri, "Format-Serving"), raw_files)
    serving = slice_metrics(labels, scores, is_new)

    data = data or TransformedSplits(base.transformed_examples_uri, base.transform_graph_uri)
    if catalog_embeddings is None:
        from models.ranking import trainer_module
        catalog_embeddings = trainer_module.load_catalog_embeddings(base.transform_graph_uri)
    model, names = load_trainer_model(base, data, catalog_embeddings)
    eval_arrays = data.get(features.EVAL, list(names) + [IS_NEW_ITEM])
    in_process_scores = predict_scores(model, {k: eval_arrays[k] for k in names})
    in_process = slice_metrics(eval_arrays[LABEL], in_process_scores, eval_arrays[IS_NEW_ITEM])

    # How far TFMA's binning alone can move each slice's AUC (matters on tiny slices only).
    masks = slice_masks(is_new)
    slice_of = {"auc_overall": "overall", "auc_new_items": "new_items",
                "auc_existing_items": "existing_items"}
    tie_bound = {k: bucket_tie_bound(labels[masks[s]], scores[masks[s]]) for k, s in slice_of.items()}
    diffs = {name: {k: None if v is None or ours[k] is None else abs(ours[k] - v)
                    for k, v in tfma_aucs.items()}
             for name, ours in (("serving_signature", serving), ("in_process", in_process))}
    within_tolerance = all(d is not None and d <= EVALUATOR_TOLERANCE
                           for per in diffs.values() for d in per.values())
    # A difference above the tolerance (small slices) is still explained when bucketing alone
    # can cause it.
    explained = all(d is not None and d <= max(EVALUATOR_TOLERANCE, tie_bound[k] or 0.0) + 1e-9
                    for per in diffs.values() for k, d in per.items())
    return {"ok": within_tolerance, "explained_by_bucketing": explained,
            "tolerance": EVALUATOR_TOLERANCE, "evaluator": tfma_aucs,
            "serving_signature": serving, "in_process": in_process, "abs_diff": diffs,
            "bucket_tie_bound": tie_bound,
            "max_abs_score_diff_sorted": float(np.max(np.abs(
                np.sort(scores) - np.sort(in_process_scores)))) if scores.size == in_process_scores.size else None,
            "representation": base.config.representation,
            "item_table_size": base.config.item_table_size,
            "evaluation_uri": base.evaluation_uri, "trainer_model_uri": base.trainer_model_uri}


# --- results.csv ---------------------------------------------------------------------------------
def config_key(base: RunConfig) -> str:
    """A short fingerprint of everything in the base config that changes what a run computes
    (model defaults, data, split, SIDs); rows written under another key are not mixed in."""
    d = {k: v for k, v in base.to_dict().items() if k not in _KEY_EXCLUDED}
    d["dataset"] = base.dataset_name
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _parse_value(column: str, value: str):
    if value in ("", None):
        return None
    if column in ("table_budget", "seed", "num_eval", "num_new_items", "num_existing_items",
                  "num_tail", "epochs_run", "best_epoch", "item_table_rows"):
        return int(value)
    if column.startswith("auc_") or column in ("best_val_auc", "seconds"):
        return float(value)
    return value


def read_results(out_dir: str) -> List[dict]:
    path = os.path.join(out_dir, RESULTS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; move it away to start afresh")
        return [{c: _parse_value(c, row.get(c)) for c in reader.fieldnames} for row in reader]


def append_result(out_dir: str, row: dict) -> None:
    """Appends one row (header first when the file is new) and flushes it to disk."""
    path = os.path.join(out_dir, RESULTS_FILE)
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def run_key(row: dict) -> tuple:
    return (row["representation"], int(row["table_budget"]), row["history"], int(row["seed"]))


# --- the runner ----------------------------------------------------------------------------------
def _histories(histories) -> List[str]:
    out = []
    for h in histories:
        if isinstance(h, bool):
            h = WITH if h else WITHOUT
        if h not in HISTORY_SETTINGS:
            raise ValueError(f"history setting must be one of {sorted(HISTORY_SETTINGS)}, got {h!r}")
        out.append(h)
    return list(dict.fromkeys(out))


def _check_verdict(check: dict) -> str:
    if check.get("ok"):
        return "OK"
    if check.get("explained_by_bucketing"):
        return "within what TFMA's threshold bucketing can cause on a small slice"
    return "MISMATCH"


def _fmt(x, digits=4):
    return "n/a" if x is None else f"{x:.{digits}f}"


def plan_runs(representations, budgets, histories, seeds) -> List[tuple]:
    """Every (representation, budget, history, seed), representation outermost (so the features
    in memory change as rarely as possible)."""
    return [(r, int(b), h, int(s)) for r in representations for b in budgets
            for h in histories for s in seeds]


def run_experiment(base: RunConfig, representations: Sequence[str] = features.REPRESENTATIONS,
                   budgets: Optional[Sequence[int]] = None, histories=(True, False),
                   seeds: Sequence[int] = DEFAULT_SEEDS, out_dir: Optional[str] = None,
                   quiet: bool = False, check_evaluator: bool = True, log=print) -> List[dict]:
    """Runs what results.csv in out_dir does not hold yet; returns every row of results.csv.
    Writes table.md / summary.json / auc_vs_budget.png at the end (summarize)."""
    start = time.time()
    out_dir = out_dir or os.path.join(base.results_dir, "experiment")
    budgets = [int(b) for b in (budgets if budgets is not None else base.table_budgets)]
    histories = _histories(histories)
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
    log(f"experiment: {len(plan)} runs planned ({len(representations)} representations x "
        f"{len(budgets)} budgets x {len(histories)} history settings x {len(seeds)} seeds), "
        f"{len(plan) - len(todo)} already in {os.path.join(out_dir, RESULTS_FILE)}, {len(todo)} to run")

    if not todo and (not check_evaluator
                     or os.path.exists(os.path.join(out_dir, EVALUATOR_CHECK_FILE))):
        summary = summarize(out_dir)
        log(f"experiment: nothing to run; {os.path.join(out_dir, TABLE_FILE)}, {summary['plot']}")
        return read_results(out_dir)

    import tensorflow as tf

    from models.ranking import trainer_module
    from pipeline import pipeline as pipeline_lib

    # 1) The base pipeline run (cached when done before): split, SIDs, SPM models, Transform.
    log(f"experiment: base pipeline run ({base.dataset_name}, {base.representation}, "
        f"B={base.item_table_size})")
    metrics = run_pipeline(base, quiet=quiet)
    base_run = base_run_artifacts(base, metrics)
    data = TransformedSplits(base_run.transformed_examples_uri, base_run.transform_graph_uri)
    catalog_embeddings = trainer_module.load_catalog_embeddings(base_run.transform_graph_uri)

    if check_evaluator and (todo or not os.path.exists(os.path.join(out_dir, EVALUATOR_CHECK_FILE))):
        check = evaluator_check(base_run, data, catalog_embeddings)
        with open(os.path.join(out_dir, EVALUATOR_CHECK_FILE), "w") as f:
            json.dump(check, f, indent=2, sort_keys=True)
        log("experiment: in-process AUC vs the Evaluator's on the base run: " + ", ".join(
            f"{k} {_fmt(check['evaluator'][k])} vs {_fmt(check['in_process'][k])}"
            for k in check["evaluator"]) + f" -> {_check_verdict(check)} "
            f"(tolerance {EVALUATOR_TOLERANCE})")
        if not check["explained_by_bucketing"]:
            raise RuntimeError(f"in-process metrics differ from the Evaluator's: "
                               f"{json.dumps(check['abs_diff'])} (see {EVALUATOR_CHECK_FILE})")
        if not check["ok"]:
            log(f"experiment: a difference exceeds {EVALUATOR_TOLERANCE} but is within what "
                f"TFMA's bucketing can cause on that slice ({json.dumps(check['bucket_tie_bound'])})")

    # 2) Training interactions per item (tail slice), on the train split.
    counts = count_interactions(data.get(features.TRAIN, [features.ITEM_ID_FINGERPRINT])
                                [features.ITEM_ID_FINGERPRINT])
    eval_meta = data.get(features.EVAL, [LABEL, IS_NEW_ITEM, features.ITEM_ID_FINGERPRINT])
    eval_counts = lookup_counts(counts, eval_meta[features.ITEM_ID_FINGERPRINT])
    slices = slice_masks(eval_meta[IS_NEW_ITEM], eval_counts)
    log(f"experiment: train {data.num_rows(features.TRAIN)} rows ({counts[0].size} items), "
        f"validation {data.num_rows(features.VALIDATION)}, eval {len(eval_meta[LABEL])} "
        f"(new items {int(slices['new_items'].sum())}, tail {int(slices['tail'].sum())})")

    # 3) The runs.
    meta_names = [LABEL, IS_NEW_ITEM, features.ITEM_ID_FINGERPRINT]
    run_seconds: List[float] = []
    loop_start = time.time()
    for i, (rep, budget, hist, seed) in enumerate(todo):
        t0 = time.time()
        use_history = HISTORY_SETTINGS[hist]
        names = model_features(rep, budget, use_history)
        data.keep(set(names) | set(meta_names) | set(model_features(rep, budget, True)))
        train = data.get(features.TRAIN, names)
        val = data.get(features.VALIDATION, names)
        ev = data.get(features.EVAL, names)

        cfg = pipeline_lib.ranking_config(dataclasses.replace(
            base, representation=rep, item_table_size=budget, use_history=use_history, seed=seed))
        tf.keras.backend.clear_session()
        # The seed fixes the shuffling order (set before the datasets are built) and, again in
        # train_model, the initialisation.
        tf.keras.utils.set_random_seed(seed)
        train_ds = make_dataset(train, cfg.batch_size, shuffle_seed=seed)
        val_ds = make_dataset(val, SCORING_BATCH_SIZE)
        model, summary = trainer_module.train_model(
            cfg, train_ds, val_ds, verbose=0,
            catalog_embeddings=catalog_embeddings if rep == features.DENSE_CONTENT else None)
        scores = predict_scores(model, ev)
        row = {"representation": rep, "table_budget": budget, "history": hist, "seed": seed,
               **slice_metrics(eval_meta[LABEL], scores, eval_meta[IS_NEW_ITEM], eval_counts),
               "epochs_run": summary["epochs_run"], "best_epoch": summary["best_epoch"],
               "best_val_auc": round(summary["best_val_auc"], 6),
               "item_table_rows": summary["item_table_rows"],
               "seconds": round(time.time() - t0, 1), "dataset": base.dataset_name,
               "config_key": key, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for k in AUC_KEYS:
            row[k] = None if row[k] is None else round(row[k], 6)
        append_result(out_dir, row)
        done_rows.append(row)
        del model, train_ds, val_ds

        run_seconds.append(time.time() - t0)
        elapsed = time.time() - loop_start
        eta = elapsed / (i + 1) * (len(todo) - i - 1)
        log(f"  [{i + 1}/{len(todo)}] {rep:<16} B={budget:<6} history={hist:<7} seed={seed}: "
            f"auc {_fmt(row['auc_overall'])} new {_fmt(row['auc_new_items'])} "
            f"tail {_fmt(row['auc_tail'])} ({summary['epochs_run']} epochs, "
            f"{run_seconds[-1]:.0f}s) elapsed {fmt_duration(elapsed)}, ETA {fmt_duration(eta)}")

    summary = summarize(out_dir)
    log(f"experiment: {len(todo)} runs in {fmt_duration(time.time() - start)}"
        + (f" ({np.mean(run_seconds):.0f}s per run)" if run_seconds else "")
        + f"; {os.path.join(out_dir, TABLE_FILE)}, {summary['plot']}")
    return read_results(out_dir)


# --- summary -------------------------------------------------------------------------------------
def _mean_std(values: List[float]) -> Tuple[Optional[float], Optional[float], int]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None, 0
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return mean, std, len(values)


def significant(mean: Optional[float], std: Optional[float], n: int) -> bool:
    """The table's mark: at least 2 seeds and |mean paired difference| > 2 x its std."""
    return mean is not None and std is not None and n >= 2 and abs(mean) > 2 * std


def aggregate(rows: List[dict]) -> List[dict]:
    """One entry per (representation, budget, history): mean/std/n over seeds of each AUC and of
    the per-seed paired difference against random_hash at the same budget, history and seed."""
    by_key = {run_key(r): r for r in rows}
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        groups.setdefault((r["representation"], int(r["table_budget"]), r["history"]), []).append(r)
    order = {r: i for i, r in enumerate(features.REPRESENTATIONS)}
    out = []
    for (rep, budget, hist), members in sorted(
            groups.items(), key=lambda kv: (kv[0][2] != WITH, order.get(kv[0][0], 99), kv[0][1])):
        entry = {"representation": rep, "table_budget": budget, "history": hist,
                 "seeds": sorted(int(m["seed"]) for m in members),
                 "item_table_rows": members[0].get("item_table_rows"),
                 "epochs_run_mean": _mean_std([m.get("epochs_run") for m in members])[0],
                 "seconds_mean": _mean_std([m.get("seconds") for m in members])[0]}
        for k in AUC_KEYS:
            mean, std, n = _mean_std([m.get(k) for m in members])
            entry[k] = {"mean": mean, "std": std, "n": n}
            if rep != features.RANDOM_HASH:
                diffs = []
                for m in members:
                    ref = by_key.get((features.RANDOM_HASH, budget, hist, int(m["seed"])))
                    if ref is not None and ref.get(k) is not None and m.get(k) is not None:
                        diffs.append(m[k] - ref[k])
                mean, std, n = _mean_std(diffs)
                entry[f"{k}_vs_random_hash"] = {"mean": mean, "std": std, "n": n,
                                                "significant": significant(mean, std, n)}
        out.append(entry)
    return out


def _pm(stat: Optional[dict], signed: bool = False) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    fmt = "{:+.4f}" if signed else "{:.4f}"
    s = fmt.format(stat["mean"])
    s += " ± " + ("n/a" if stat.get("std") is None else f"{stat['std']:.4f}")
    if stat.get("significant"):
        s = f"**{s}** ✱"
    return s


def format_table(entries: List[dict], history: str) -> str:
    head = ["representation", "budget B", "table rows", "seeds"]
    for k in AUC_KEYS:
        head += [f"AUC {AUC_LABELS[k].split(' (')[0]}", "Δ vs random_hash"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        if e["history"] != history:
            continue
        cells = [e["representation"], str(e["table_budget"]), str(e["item_table_rows"]),
                 str(e["auc_overall"]["n"])]
        for k in AUC_KEYS:
            cells += [_pm(e[k]), _pm(e.get(f"{k}_vs_random_hash"), signed=True)
                      if e["representation"] != features.RANDOM_HASH else "(reference)"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline(entries: List[dict]) -> Tuple[Optional[int], List[dict]]:
    """The entries at the largest budget with history (the paper's main setting)."""
    with_hist = [e for e in entries if e["history"] == WITH]
    if not with_hist:
        return None, []
    budget = max(e["table_budget"] for e in with_hist)
    return budget, [e for e in with_hist if e["table_budget"] == budget]


def plot(entries: List[dict], path: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hist_settings = [h for h in (WITH, WITHOUT) if any(e["history"] == h for e in entries)]
    metrics = ("auc_overall", "auc_new_items")
    fig, axes = plt.subplots(len(hist_settings), 2, figsize=(12, 4.5 * len(hist_settings)),
                             squeeze=False)
    reps = [r for r in features.REPRESENTATIONS if any(e["representation"] == r for e in entries)]
    reps += sorted({e["representation"] for e in entries} - set(reps))
    for row, hist in enumerate(hist_settings):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            for i, rep in enumerate(reps):
                pts = sorted((e["table_budget"], e[metric]["mean"], e[metric]["std"] or 0.0)
                             for e in entries if e["representation"] == rep
                             and e["history"] == hist and e[metric]["mean"] is not None)
                if not pts:
                    continue
                x, y, err = zip(*pts)
                ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=rep,
                            linestyle="--" if rep == features.DENSE_CONTENT else "-")
            ax.set_xscale("log")
            budgets = sorted({e["table_budget"] for e in entries})
            ax.set_xticks(budgets)
            ax.set_xticklabels([str(b) for b in budgets])
            ax.minorticks_off()
            ax.set_xlabel("item table budget B (rows)")
            ax.set_ylabel("AUC")
            ax.set_title(f"{AUC_LABELS[metric]} AUC, {hist} user history")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Eval AUC against table budget (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summarize(out_dir: str) -> dict:
    """results.csv -> table.md, summary.json and auc_vs_budget.png; returns the summary."""
    rows = read_results(out_dir)
    if not rows:
        raise ValueError(f"no results in {os.path.join(out_dir, RESULTS_FILE)}")
    entries = aggregate(rows)
    check = None
    check_path = os.path.join(out_dir, EVALUATOR_CHECK_FILE)
    if os.path.exists(check_path):
        with open(check_path) as f:
            check = json.load(f)
    plot_path = plot(entries, os.path.join(out_dir, PLOT_FILE))
    budget, head = headline(entries)
    datasets = sorted({r.get("dataset") or "?" for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    summary = {"dataset": datasets, "num_runs": len(rows), "seeds": seeds,
               "config_keys": sorted({r.get("config_key") or "" for r in rows}),
               "total_run_seconds": float(sum(r.get("seconds") or 0.0 for r in rows)),
               "headline_budget": budget, "groups": entries, "evaluator_check": check,
               "plot": plot_path,
               "significance_rule": "|mean paired difference| > 2 x std of the paired "
                                    "differences over seeds (sample std), at least 2 seeds"}
    with open(os.path.join(out_dir, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)

    lines = [f"# Experiment: item representations x table budget x user history "
             f"({', '.join(datasets)})", "",
             f"{len(rows)} training runs; seeds {seeds} (a seed changes the ranking model's "
             f"initialisation, dropout and the shuffling order only: the split, the Semantic IDs "
             f"and the SentencePiece models are the base pipeline run's, fixed). Early stopping "
             f"uses the validation split; nothing is tuned on eval. Total training time "
             f"{fmt_duration(summary['total_run_seconds'])}.", "",
             "AUC: exact ROC AUC on the eval split (the end of the timeline) — overall, "
             "on new items (held out, never in train), on existing items, and on the tail: "
             f"items with {TAIL_MIN_INTERACTIONS} to {TAIL_MAX_INTERACTIONS} training "
             "interactions (new items excluded). Cells: mean ± sample std over seeds.", "",
             "Δ vs random_hash: the per-seed paired difference (representation's AUC − "
             "random_hash's AUC at the same budget, history setting and seed), mean ± std over "
             "seeds. **Bold ✱** marks a difference whose |mean| exceeds 2× its std across seeds "
             "(at least 2 seeds) — a rough screen, not a formal test with 3 seeds.", ""]
    if check:
        lines += [f"Metric check: on the base run ({check.get('representation')}, "
                  f"B={check.get('item_table_size')}) the in-process AUCs equal the pipeline "
                  f"Evaluator's (TFMA) within {check.get('tolerance')}: "
                  + ", ".join(f"{AUC_LABELS[k]} {_fmt(check['evaluator'].get(k))} (TFMA) vs "
                              f"{_fmt(check['in_process'].get(k))}" for k in check["evaluator"])
                  + f" — {_check_verdict(check)}.", ""]
    if head:
        lines += [f"## Headline: largest budget (B={budget}) with user history", "",
                  "| representation | AUC overall | AUC new items | Δ overall vs random_hash "
                  "| Δ new items vs random_hash |", "|---|---|---|---|---|"]
        for e in head:
            ref = e["representation"] == features.RANDOM_HASH
            lines.append(f"| {e['representation']} | {_pm(e['auc_overall'])} | "
                         f"{_pm(e['auc_new_items'])} | "
                         f"{'(reference)' if ref else _pm(e.get('auc_overall_vs_random_hash'), True)} | "
                         f"{'(reference)' if ref else _pm(e.get('auc_new_items_vs_random_hash'), True)} |")
        lines.append("")
    for hist in (WITH, WITHOUT):
        if any(e["history"] == hist for e in entries):
            lines += [f"## {hist.capitalize()} user history", "", format_table(entries, hist), ""]
    lines += [f"Plot: `{os.path.basename(plot_path)}`; per-run rows: `{RESULTS_FILE}`; "
              f"aggregates: `{SUMMARY_FILE}`.", ""]
    with open(os.path.join(out_dir, TABLE_FILE), "w") as f:
        f.write("\n".join(lines))
    return summary
