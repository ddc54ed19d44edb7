"""Must-beat baselines and the AUC-by-slice machinery every result uses (numpy and sklearn only:
no model, no TensorFlow).

Baselines: three scores per eval row, with mu = the global positive rate of the train split:
  * baseline_user_rate:      (pos + 1) / (n + 2) over the row's history labels, at most H of them
                             (H = the run's history_length; the history is most recent first, so
                             the first H);
  * baseline_item_rate:      (pos + 5 mu) / (n + 5) over the item's rows in the train split (a new
                             item, with none, gets mu);
  * baseline_user_item_rate: the sum of the two rates' log-odds.
`baseline_scores` computes them, `baseline_metrics` their AUCs by slice (BASELINE_AUC_KEYS).

Slices (`slice_masks`): overall, new items (is_new_item=1), existing items (is_new_item=0), the
tail (is_tail_item=1: items with 1..4 train rows, new items excluded), new users (is_new_user=1:
no row in the train split) and warm users (is_new_user=0). pipeline/report.py (metrics.json) and
the experiment (results.csv) both use these.
"""
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

BASELINE_USER_RATE = "baseline_user_rate"
BASELINE_ITEM_RATE = "baseline_item_rate"
BASELINE_USER_ITEM_RATE = "baseline_user_item_rate"
BASELINES = (BASELINE_USER_RATE, BASELINE_ITEM_RATE, BASELINE_USER_ITEM_RATE)
# Pseudo-rows of the global rate in the item rate's prior.
ITEM_PRIOR_ROWS = 5.0
# Rates are clipped this far inside (0, 1) before taking log-odds.
_LOGIT_EPS = 1e-9

# slice name -> its AUC key; the order of every table.
SLICES = ("overall", "new_items", "existing_items", "tail", "new_users", "warm_users")
SLICE_AUC_KEYS = tuple(f"auc_{s}" for s in SLICES)
BASELINE_AUC_KEYS = SLICE_AUC_KEYS


def num_key(slice_name: str) -> str:
    """The count key of a slice in results rows: num_eval (overall) or num_<slice>."""
    return "num_eval" if slice_name == "overall" else f"num_{slice_name}"


# --- AUCs and slices -----------------------------------------------------------------------------
def exact_auc(labels: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """ROC AUC (sklearn, exact); None when the slice is empty or has one class only."""
    from sklearn.metrics import roc_auc_score
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0 or np.unique(labels).size < 2:
        return None
    return float(roc_auc_score(labels, np.asarray(scores, np.float64).reshape(-1)))


def slice_masks(is_new_item: np.ndarray, is_tail_item: Optional[np.ndarray] = None,
                is_new_user: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """{slice: boolean row mask} for the slices whose flags are given (overall, new_items and
    existing_items always; tail with is_tail_item; new_users and warm_users with is_new_user)."""
    is_new_item = np.asarray(is_new_item).reshape(-1)
    masks = {"overall": np.ones(is_new_item.shape, bool), "new_items": is_new_item == 1,
             "existing_items": is_new_item == 0}
    if is_tail_item is not None:
        masks["tail"] = np.asarray(is_tail_item).reshape(-1) == 1
    if is_new_user is not None:
        is_new_user = np.asarray(is_new_user).reshape(-1)
        masks["new_users"] = is_new_user == 1
        masks["warm_users"] = is_new_user == 0
    for name, mask in masks.items():
        if mask.shape != is_new_item.shape:
            raise ValueError(f"slice {name}: {mask.shape[0]} rows, is_new_item has "
                             f"{is_new_item.shape[0]}")
    return masks


def slice_aucs(labels: np.ndarray, scores: np.ndarray,
               masks: Mapping[str, np.ndarray]) -> Dict[str, Optional[float]]:
    """{auc_<slice>: exact AUC} for every slice in SLICES (None where the slice is not in `masks`,
    is empty or has one class)."""
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.shape[0]} labels but {scores.shape[0]} scores")
    return {f"auc_{s}": exact_auc(labels[masks[s]], scores[masks[s]]) if s in masks else None
            for s in SLICES}


def slice_counts(masks: Mapping[str, np.ndarray]) -> Dict[str, Optional[int]]:
    """{num_eval / num_<slice>: rows} for every slice in SLICES (None where not in `masks`)."""
    return {num_key(s): int(masks[s].sum()) if s in masks else None for s in SLICES}


# --- the baselines -------------------------------------------------------------------------------
def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return np.log(p) - np.log1p(-p)


def _item_stats(train_item_ids: np.ndarray, train_labels: np.ndarray, item_ids: np.ndarray):
    """(positives, rows) in the train split of each of `item_ids` (0, 0 for an item with none)."""
    keys, inverse = np.unique(train_item_ids, return_inverse=True)
    pos = np.bincount(inverse, weights=train_labels, minlength=keys.size)
    rows = np.bincount(inverse, minlength=keys.size).astype(np.float64)
    if keys.size == 0:
        zeros = np.zeros(item_ids.shape, np.float64)
        return zeros, zeros.copy()
    at = np.clip(np.searchsorted(keys, item_ids), 0, keys.size - 1)
    found = keys[at] == item_ids
    return np.where(found, pos[at], 0.0), np.where(found, rows[at], 0.0)


def baseline_scores(history_labels: np.ndarray, history_mask: np.ndarray,
                    item_ids: np.ndarray, train_item_ids: np.ndarray,
                    train_labels: np.ndarray,
                    history_length: Optional[int] = None) -> Dict[str, np.ndarray]:
    """{baseline name: [N] score} for N eval rows.

    history_labels, history_mask: [N, H'] 0/1, the rows' history labels (most recent first) and
      1 where a position holds a history item (e.g. Transform's history_labels_dense and
      history_mask); only the first `history_length` positions count (all when None).
    item_ids: [N] the rows' items (ids or fingerprints; any type np.unique sorts).
    train_item_ids, train_labels: [M] every row of the train split.
    """
    labels = np.asarray(history_labels)
    mask = np.asarray(history_mask)
    if labels.ndim != 2 or labels.shape != mask.shape:
        raise ValueError(f"history labels {labels.shape} and mask {mask.shape} must be the same "
                         f"[rows, positions]")
    if history_length is not None:
        labels, mask = labels[:, :int(history_length)], mask[:, :int(history_length)]
    present = mask != 0
    n_user = present.sum(axis=1).astype(np.float64)
    pos_user = ((labels == 1) & present).sum(axis=1).astype(np.float64)
    user_rate = (pos_user + 1.0) / (n_user + 2.0)

    item_ids = np.asarray(item_ids).reshape(-1)
    if item_ids.shape[0] != labels.shape[0]:
        raise ValueError(f"{item_ids.shape[0]} item ids for {labels.shape[0]} history rows")
    train_item_ids = np.asarray(train_item_ids).reshape(-1)
    train_labels = np.asarray(train_labels, np.float64).reshape(-1)
    if train_item_ids.shape != train_labels.shape:
        raise ValueError(f"{train_item_ids.shape[0]} train item ids but "
                         f"{train_labels.shape[0]} train labels")
    if train_labels.size == 0:
        raise ValueError("the train split is empty: no global positive rate")
    mu = float(train_labels.mean())
    pos_item, n_item = _item_stats(train_item_ids, train_labels, item_ids)
    item_rate = (pos_item + ITEM_PRIOR_ROWS * mu) / (n_item + ITEM_PRIOR_ROWS)
    return {BASELINE_USER_RATE: user_rate, BASELINE_ITEM_RATE: item_rate,
            BASELINE_USER_ITEM_RATE: _logit(user_rate) + _logit(item_rate)}


def baseline_metrics(labels: np.ndarray, scores: Mapping[str, np.ndarray],
                     masks: Mapping[str, np.ndarray]) -> Dict[str, Dict[str, Optional[float]]]:
    """{baseline name: {auc_<slice>: AUC}} (keys BASELINE_AUC_KEYS, in BASELINES order)."""
    return {name: slice_aucs(labels, scores[name], masks) for name in BASELINES if name in scores}


def tail_from_counts(is_new_item: np.ndarray, train_rows: np.ndarray,
                     tail_min: int, tail_max: int) -> np.ndarray:
    """is_tail_item from per-row train row counts of the rows' items: existing items with
    tail_min..tail_max train rows (what InteractionFeatures' is_tail_item holds)."""
    is_new_item = np.asarray(is_new_item).reshape(-1)
    train_rows = np.asarray(train_rows).reshape(-1)
    tail = (is_new_item == 0) & (train_rows >= tail_min) & (train_rows <= tail_max)
    return tail.astype(np.int64)


def train_rows(train_item_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """The number of train rows of each of `item_ids` (0 for an item with none)."""
    train_item_ids = np.asarray(train_item_ids).reshape(-1)
    item_ids = np.asarray(item_ids).reshape(-1)
    return _item_stats(train_item_ids, np.zeros(train_item_ids.shape), item_ids)[1].astype(np.int64)


def new_users(user_ids: np.ndarray, train_user_ids: Sequence) -> np.ndarray:
    """is_new_user: 1 where the row's user has no row in the train split."""
    user_ids = np.asarray(user_ids).reshape(-1)
    keys = np.unique(np.asarray(train_user_ids).reshape(-1))  # sorted (np.isin is quadratic
    if keys.size == 0:                                        # on object arrays of ids)
        return np.ones(user_ids.shape, np.int64)
    at = np.clip(np.searchsorted(keys, user_ids), 0, keys.size - 1)
    return (keys[at] != user_ids).astype(np.int64)
