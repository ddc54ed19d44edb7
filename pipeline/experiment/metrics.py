"""The experiment's metrics: exact ROC AUCs (sklearn) overall and by slice, and the check that
this in-process path gives the pipeline Evaluator's (TFMA) AUCs for the pipeline Trainer's model.

Slices: new items (is_new_item=1), existing items (is_new_item=0) and the tail (items with 1..4
training interactions, new items excluded).
"""
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from pipeline.experiment.data import (IS_NEW_ITEM, LABEL, BaseRun, TransformedSplits,
                                      predict_scores, run_features, split_files)
from schemas import features

AUC_KEYS = ("auc_overall", "auc_new_items", "auc_existing_items", "auc_tail")
# The tail slice: existing items with this many training interactions (inclusive).
TAIL_MIN_INTERACTIONS, TAIL_MAX_INTERACTIONS = 1, 4
# TFMA's AUC is a bucketed approximation (10000 thresholds); the exact AUC must agree within this.
EVALUATOR_TOLERANCE = 1e-3
TFMA_NUM_THRESHOLDS = 10000  # tfma.metrics.AUC's default


# --- AUCs and slices -----------------------------------------------------------------------------
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


# --- the Evaluator check -------------------------------------------------------------------------
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
    names = run_features(base.config.representation, base.config.item_table_size,
                         base.config.use_history)
    sample = {k: v[:2] for k, v in data.get(features.VALIDATION, names).items()}
    model({k: tf.constant(v) for k, v in sample.items()}, training=False)
    variables = os.path.join(base.serving_model_dir, tf.saved_model.VARIABLES_DIRECTORY,
                             tf.saved_model.VARIABLES_FILENAME)
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
    raw_files = split_files(base.raw_examples, features.EVAL)
    labels, is_new, scores = _serving_scores(base.serving_model_dir, raw_files)
    serving = slice_metrics(labels, scores, is_new)

    data = data or TransformedSplits(base.transformed_examples, base.transform_graph_uri)
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


def check_verdict(check: dict) -> str:
    if check.get("ok"):
        return "OK"
    if check.get("explained_by_bucketing"):
        return "within what TFMA's threshold bucketing can cause on a small slice"
    return "MISMATCH"
