"""Probes of how a trained model uses the user history: its eval inputs perturbed, numpy only (on
the dict of transformed eval arrays, {feature: [rows, ...]}), scored by the model elsewhere
(pipeline/report.py for metrics.json, the experiment for results.csv).

  * shuffled labels (`shuffle_history_labels`): each row's history labels permuted among its own
    non-padded positions (a fixed seed); items, mask and the number of positives stay. A model
    that reads which history item was liked loses that; one that reads only counts does not.
    A row's permutation follows its contents, not its position: Transform may write the eval
    rows in another order on a rerun, and the probe must not move with it.
  * no history (`remove_history`): the history emptied as a user without one looks: mask and
    labels all 0, every history item input at its padding value (PAD_VALUE, or for
    history_fingerprint the fingerprint of the empty id: `history_pad_values`).

PROBE_KEYS are the AUC keys (metrics.json's `probes`, results.csv's columns).
"""
from typing import Dict, Iterable, Mapping

import numpy as np

from schemas import features

SHUFFLED_LABELS = "shuffled_labels"
NO_HISTORY = "no_history"
PROBES = (SHUFFLED_LABELS, NO_HISTORY)
PROBE_KEYS = ("auc_shuffled_labels", "auc_shuffled_labels_new_items",
              "auc_no_history", "auc_no_history_new_items")
SHUFFLE_SEED = 0
# The padding of the history item inputs of the catalog (catalog rows, SID codes, SentencePiece
# pieces: models/ranking/preprocessing.py); history_fingerprint pads with the empty id's.
PAD_VALUE = -1


def probe_keys(probe: str) -> tuple:
    """(overall AUC key, new-items AUC key) of a probe."""
    return f"auc_{probe}", f"auc_{probe}_new_items"


def history_pad_values(history_item_keys: Iterable[str],
                       empty_id_fingerprint: int) -> Dict[str, int]:
    """{history item input: its padding value}: the fingerprint of the empty id (features.
    HISTORY_PAD) for history_fingerprint, PAD_VALUE for the others."""
    return {k: int(empty_id_fingerprint) if k == features.HISTORY_FINGERPRINT else PAD_VALUE
            for k in history_item_keys}


def _check_history(arrays: Mapping[str, np.ndarray], labels_key: str, mask_key: str):
    for k in (labels_key, mask_key):
        if k not in arrays:
            raise KeyError(f"the probe needs {k!r}; the arrays hold {sorted(arrays)}")
    labels, mask = np.asarray(arrays[labels_key]), np.asarray(arrays[mask_key])
    if labels.ndim != 2 or labels.shape != mask.shape:
        raise ValueError(f"{labels_key} {labels.shape} and {mask_key} {mask.shape} must be the "
                         f"same [rows, H]")
    return labels, mask


def row_order(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Row indices sorted by a 64-bit hash of each row's contents (every array, by name): the
    same rows in any order come out as the same sequence of rows."""
    rows = len(next(iter(arrays.values())))
    h = np.zeros(rows, np.uint64)
    for name in sorted(arrays):
        a = np.asarray(arrays[name]).reshape(rows, -1)
        if np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float64).view(np.int64)
        a = a.astype(np.int64).view(np.uint64)
        for j in range(a.shape[1]):  # FNV-1a over the row's values (uint64 wraps around)
            h = (h ^ a[:, j]) * np.uint64(0x100000001B3)
    return np.argsort(h, kind="stable")


def shuffle_history_labels(arrays: Mapping[str, np.ndarray], seed: int = SHUFFLE_SEED,
                           labels_key: str = features.HISTORY_LABELS_DENSE,
                           mask_key: str = features.HISTORY_MASK) -> Dict[str, np.ndarray]:
    """A copy of `arrays` (others shared, not copied) with each row's history labels permuted
    among the row's non-padded positions (mask != 0), with np.random.default_rng(seed)'s draws
    dealt to the rows in `row_order` (so a row's permutation does not depend on where it sits).
    Padded positions keep their value."""
    labels, mask = _check_history(arrays, labels_key, mask_key)
    present = mask != 0
    rows, width = labels.shape
    draws = np.empty((rows, width))
    draws[row_order(arrays)] = np.random.default_rng(seed).random((rows, width))
    # Per row: the present positions in ascending order, and the same set in a random order
    # (both first in their row, padding after).
    position = np.broadcast_to(np.arange(width), (rows, width))
    targets = np.argsort(np.where(present, position, width), axis=1, kind="stable")
    sources = np.argsort(np.where(present, draws, 2.0), axis=1, kind="stable")
    take = np.arange(width)[None, :] < present.sum(axis=1, keepdims=True)
    r, j = np.nonzero(take)
    shuffled = labels.copy()
    shuffled[r, targets[r, j]] = labels[r, sources[r, j]]
    return {**arrays, labels_key: shuffled}


def remove_history(arrays: Mapping[str, np.ndarray], pad_values: Mapping[str, int],
                   labels_key: str = features.HISTORY_LABELS_DENSE,
                   mask_key: str = features.HISTORY_MASK) -> Dict[str, np.ndarray]:
    """A copy of `arrays` with the history emptied: mask and labels zeros, and every history item
    input of `pad_values` ({key: padding value}) filled with its padding value. Each key of
    `pad_values` must be in `arrays`."""
    labels, mask = _check_history(arrays, labels_key, mask_key)
    missing = [k for k in pad_values if k not in arrays]
    if missing:
        raise KeyError(f"history inputs {missing} are not in the arrays ({sorted(arrays)})")
    out = dict(arrays)
    out[labels_key] = np.zeros_like(labels)
    out[mask_key] = np.zeros_like(mask)
    for k, pad in pad_values.items():
        values = np.asarray(arrays[k])  # may be held in a small dtype the pad does not fit in
        info = np.iinfo(values.dtype) if values.dtype.kind == "i" else None
        fits = info is not None and info.min <= pad <= info.max
        out[k] = np.full(values.shape, pad, values.dtype if fits else np.int64)
    return out
