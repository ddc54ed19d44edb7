"""The experiment's metrics: exact ROC AUCs (sklearn) overall and by slice, and the check that
this in-process path gives the pipeline Evaluator's (TFMA) AUCs for the pipeline Trainer's model.

Slices (pipeline/baselines.py, shared with metrics.json's baselines): new items (is_new_item=1),
existing items (is_new_item=0), the tail (is_tail_item=1: items with 1..4 train rows, new items
excluded; from the train split's counts when the Transform output lacks the flag), new users
(is_new_user=1) and warm users (is_new_user=0).
"""
from typing import Dict, Optional, Sequence

import numpy as np

from pipeline import baselines as baselines_lib
from pipeline import probes as probes_lib
from pipeline import evaluation, report
from pipeline.baselines import exact_auc  # noqa: F401  (the experiment's AUC, re-exported)
from pipeline.experiment.data import (IS_NEW_ITEM, IS_NEW_USER, IS_TAIL_ITEM, LABEL, BaseRun,
                                      TransformedSplits, predict_scores, run_features, split_files)
from schemas import features

# results.csv's AUC columns of a model run: by slice, then the probes (runs with history).
SLICE_AUC_KEYS = baselines_lib.SLICE_AUC_KEYS
PROBE_KEYS = probes_lib.PROBE_KEYS
AUC_KEYS = SLICE_AUC_KEYS + PROBE_KEYS
# The tail slice: existing items with this many training interactions (inclusive).
TAIL_MIN_INTERACTIONS = features.TAIL_MIN_TRAIN_ROWS
TAIL_MAX_INTERACTIONS = features.TAIL_MAX_TRAIN_ROWS
# TFMA's AUC is a bucketed approximation (10000 thresholds); the exact AUC must agree within this.
EVALUATOR_TOLERANCE = 1e-3
TFMA_NUM_THRESHOLDS = 10000  # tfma.metrics.AUC's default
# The Evaluator's (TFMA) slices evaluator_check compares: {AUC key: slice name}.
EVALUATOR_SLICES = report.EVALUATOR_SLICES


# --- AUCs and slices -----------------------------------------------------------------------------
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


def slice_masks(is_new: np.ndarray, train_counts: Optional[np.ndarray] = None,
                is_new_user: Optional[np.ndarray] = None,
                is_tail_item: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """{slice: row mask} (pipeline/baselines.slice_masks): the tail from is_tail_item, or else
    from the per-row train interaction counts of the rows' items; new / warm users with
    is_new_user."""
    if is_tail_item is None and train_counts is not None:
        is_tail_item = baselines_lib.tail_from_counts(is_new, train_counts, TAIL_MIN_INTERACTIONS,
                                                      TAIL_MAX_INTERACTIONS)
    return baselines_lib.slice_masks(is_new, is_tail_item, is_new_user)


def metrics_of_masks(labels: np.ndarray, scores: np.ndarray,
                     masks: Dict[str, np.ndarray]) -> dict:
    """{auc_<slice>, num_<slice>} of the slices in `masks` (num_eval for overall)."""
    aucs = baselines_lib.slice_aucs(labels, scores, masks)
    out = {}
    for name in masks:
        out[f"auc_{name}"] = aucs[f"auc_{name}"]
        out[baselines_lib.num_key(name)] = int(masks[name].sum())
    return out


def slice_metrics(labels: np.ndarray, scores: np.ndarray, is_new: np.ndarray,
                  train_counts: Optional[np.ndarray] = None,
                  is_new_user: Optional[np.ndarray] = None,
                  is_tail_item: Optional[np.ndarray] = None) -> dict:
    """{auc_<slice>, num_<slice>} for overall, new_items, existing_items, the tail (given
    is_tail_item, or the per-row training interaction counts of the eval rows' items) and new /
    warm users (given is_new_user)."""
    return metrics_of_masks(labels, scores,
                            slice_masks(is_new, train_counts, is_new_user, is_tail_item))


# --- the Evaluator check -------------------------------------------------------------------------
def _serving_scores(model_dir: str, raw_eval_files: Sequence[str], batch_size: int = 2048):
    """Scores the raw eval rows with the exported `serving_tf_example` signature (what TFMA
    calls); returns (labels, {slicing feature: values}, scores). A slicing feature the examples
    lack is None (is_new_user, is_tail_item)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops of the Transform graph)
    loaded = tf.saved_model.load(model_dir)
    serve = loaded.signatures[features.SERVING_TF_EXAMPLE_SIGNATURE]
    flags = (features.IS_NEW_ITEM, features.IS_NEW_USER, features.IS_TAIL_ITEM)
    spec = {features.LABEL: tf.io.FixedLenFeature([], tf.int64),
            features.IS_NEW_ITEM: tf.io.FixedLenFeature([], tf.int64),
            **{f: tf.io.FixedLenFeature([], tf.int64, default_value=-1) for f in flags[1:]}}
    labels, parts, scores = [], {f: [] for f in flags}, []
    for batch in tf.data.TFRecordDataset(list(raw_eval_files), compression_type="GZIP").batch(batch_size):
        parsed = tf.io.parse_example(batch, spec)
        labels.append(parsed[features.LABEL].numpy())
        for f in flags:
            parts[f].append(parsed[f].numpy())
        scores.append(serve(examples=batch)[features.PREDICTION_KEY].numpy().reshape(-1))
    values = {f: np.concatenate(v) for f, v in parts.items()}
    values = {f: None if np.any(v < 0) else v for f, v in values.items()}
    return np.concatenate(labels), values, np.concatenate(scores)


def load_trainer_model(base: BaseRun, data: TransformedSplits, catalog_embeddings=None):
    """The pipeline Trainer's model as a Keras model taking transformed features: built from the
    Trainer's config and given the exported SavedModel's weights (evaluation.load_ranking_model)."""
    from pipeline import pipeline as pipeline_lib
    cfg = pipeline_lib.ranking_config(base.config)
    names = run_features(base.config.representation, base.config.item_table_size,
                         base.config.use_history)
    sample = {k: v[:2] for k, v in data.get(features.VALIDATION, names).items()}
    return evaluation.load_ranking_model(cfg, base.serving_model_dir, sample, catalog_embeddings), names


# The slices every check compares; the others (tail, new / warm users) when the Evaluator has
# them and both in-process paths can cut them.
REQUIRED_SLICES = ("auc_overall", "auc_new_items", "auc_existing_items")


def _flag(data: TransformedSplits, name: str):
    return data.get(features.EVAL, [name])[name] if data.has(name) else None


def evaluator_check(base: BaseRun, data: Optional[TransformedSplits] = None,
                    catalog_embeddings=None) -> dict:
    """Compares, for the pipeline Trainer's own model, the Evaluator's (TFMA) AUC by slice
    (EVALUATOR_SLICES: overall, new / existing items, the tail, new / warm users) with (1)
    sklearn's exact AUC of the serving_tf_example scores of the raw eval split and (2) the
    experiment's in-process path: the model on the transformed eval split (TransformedSplits +
    predict_scores + slice_metrics). `ok` when every difference is within EVALUATOR_TOLERANCE.
    Overall and new / existing items are always compared; another slice is when the Evaluator
    reports it and both paths can cut it (else it is listed in `not_compared` with the reason)."""
    ev = report.read_evaluation(base.evaluation_uri)
    tfma_all = {k: ev.get(name, {}).get("auc") for k, name in EVALUATOR_SLICES.items()}
    raw_files = split_files(base.raw_examples, features.EVAL)
    labels, flags, scores = _serving_scores(base.serving_model_dir, raw_files)
    masks = slice_masks(flags[features.IS_NEW_ITEM], is_new_user=flags[features.IS_NEW_USER],
                        is_tail_item=flags[features.IS_TAIL_ITEM])
    serving = metrics_of_masks(labels, scores, masks)

    data = data or TransformedSplits(base.transformed_examples, base.transform_graph_uri)
    if catalog_embeddings is None:
        from models.ranking import training
        catalog_embeddings = training.load_catalog_embeddings(base.transform_graph_uri)
    model, names = load_trainer_model(base, data, catalog_embeddings)
    eval_arrays = data.get(features.EVAL, list(names) + [IS_NEW_ITEM])
    in_process_scores = predict_scores(model, {k: eval_arrays[k] for k in names})
    in_process = slice_metrics(eval_arrays[LABEL], in_process_scores, eval_arrays[IS_NEW_ITEM],
                               is_new_user=_flag(data, IS_NEW_USER),
                               is_tail_item=_flag(data, IS_TAIL_ITEM))

    tfma_aucs, not_compared = {}, {}
    for k, v in tfma_all.items():
        if k in REQUIRED_SLICES:
            tfma_aucs[k] = v
        elif v is None or np.isnan(v):
            not_compared[k] = "the Evaluator has no AUC on this slice"
        elif serving.get(k) is None or in_process.get(k) is None:
            not_compared[k] = ("no exact AUC on this slice (the flag is missing from the "
                               "examples or the Transform output, or one class only)")
        else:
            tfma_aucs[k] = v
    # How far TFMA's binning alone can move each slice's AUC (matters on tiny slices only).
    tie_bound = {k: bucket_tie_bound(labels[masks[k[len("auc_"):]]], scores[masks[k[len("auc_"):]]])
                 for k in tfma_aucs}
    diffs = {name: {k: None if v is None or ours.get(k) is None else abs(ours[k] - v)
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
            "not_compared": not_compared,
            "serving_signature": serving, "in_process": in_process, "abs_diff": diffs,
            "bucket_tie_bound": tie_bound,
            "max_abs_score_diff_sorted": float(np.max(np.abs(
                np.sort(scores) - np.sort(in_process_scores)))) if scores.size == in_process_scores.size else None,
            "representation": base.config.representation,
            "item_table_size": base.config.item_table_size,
            "evaluation_uri": base.evaluation_uri, "trainer_model_uri": base.trainer_model_uri}


def check_verdict(check: dict) -> str:
    if check.get("ok"):
        return "OK"
    if check.get("explained_by_bucketing"):
        return "within what TFMA's threshold bucketing can cause on a small slice"
    return "MISMATCH"
