"""Pure logic of InteractionFeatures: time cuts, held-out items, histories, split summary.

Nothing here imports TFX, Beam or TensorFlow; the executor wires these functions into Beam.

Rules
-----
Time split (exact, by count of rows):
  * Sort all n interactions by timestamp. Let m = floor(n * eval_fraction) (the fraction is
    taken as the decimal the user wrote, so 0.2 * 100000 is exactly 20000) and k = n - m.
    The eval cut T_e is the timestamp of the k-th row (1-based), i.e. the (1 - eval_fraction)
    quantile by count. Rows with timestamp > T_e are eval; rows with timestamp <= T_e form the
    train period. Ties at the cut stay in the train period, so eval holds at most m rows
    (MovieLens-100K, eval_fraction 0.2: 19,997 eval rows out of 100,000).
  * The same rule applied to the n_tp train-period rows with validation_fraction gives the
    validation cut T_v <= T_e: rows with T_v < timestamp <= T_e are validation, rows with
    timestamp <= T_v are train. validation_fraction = 0 gives T_v = T_e and no validation rows.
  * Cuts are computed before held-out rows are dropped (they depend on timestamps only).
  * Errors: no rows; an empty eval period (all rows tie at or before the cut); a validation
    period that is empty although validation_fraction > 0.
Held-out ("new") items: u = item_hash_unit(seed, item_id), a stable hash of (seed, item_id)
mapped to [0, 1) (blake2b): no global item list, the same answer on every runner and worker.
  * Eval-held-out iff u < new_item_fraction. Its interactions at or before T_e are dropped
    entirely: from train, validation and from every history. Its eval-period interactions stay
    as eval rows and may appear in the histories of later eval rows.
  * Validation-held-out iff new_item_fraction <= u < new_item_fraction +
    validation_new_item_fraction (a second, disjoint share; default 0: none). Its interactions
    at or before T_v are dropped entirely (from train and every history), so it is new in
    validation and in eval. Its validation- and eval-period interactions stay and may appear in
    the histories of later rows. The two fractions must sum to less than 1. With
    validation_fraction 0 (T_v = T_e) it acts like the eval holdout.
Splits: train = rows <= T_v minus dropped; validation = (T_v, T_e] minus dropped; eval = > T_e.
Features added to every kept row:
  * history: the same user's item ids strictly earlier in time (same-second interactions are
    NOT history), most recent first, at most history_length, computed over the whole kept
    timeline (eval rows see earlier eval rows). Variable length, no padding. Rows of a user
    are ordered by (timestamp, item_id, label), so the output is deterministic.
  * history_labels: the labels of those interactions, aligned with history.
  * is_new_item: 1 on rows whose item never appears in the train split, else 0 (so 0 on every
    train row; 1 on validation and eval rows of items first seen after T_v, held out or not).
  * is_new_user: 1 on rows whose user has no row in the train split, else 0 (0 on train rows).
  * is_tail_item: 1 on rows whose item has TAIL_MIN_TRAIN_ROWS..TAIL_MAX_TRAIN_ROWS (1..4,
    schemas/features.py) rows in the train split, else 0 (new items are never tail).
  See `row_flags`; all three are int64, one value, on every row of every split.
Span mode (the input holds several spans, newest = the eval span; docs/continuous.md):
  * eval = every row of the newest span; the training spans are the window's earlier spans
    (train_newest_span_only: only the newest of them, as a warm start trains). Validation = the
    rows of the newest training span after T_v, the same rule as above over that span's rows
    with validation_fraction; train = the training spans' rows at or before T_v. Rows of the
    other earlier spans (`CONTEXT`) are not written: they only feed histories and the flags.
  * No held-out items: a span's new items are the ones it brings.
  * Flags look back over everything before the row's period (`reference_splits`): on eval rows,
    is_new_item = the item has no row in any earlier span of the window, is_new_user likewise,
    is_tail_item = 1..4 rows there; on validation rows, the rows at or before T_v.
  * eval_cut_timestamp is the last timestamp of the training spans.
split_summary.json (see `make_split_summary`): num_train, num_validation, num_eval,
  num_new_item_eval, num_heldout_items (eval-held-out items seen in the data), num_dropped_rows
  (rows dropped by either holdout), eval_cut_timestamp, validation_cut_timestamp,
  eval_rows_from_users_absent_from_train, history_length; and (added later) num_new_item_validation,
  num_new_user_validation, num_new_user_eval, num_tail_item_validation, num_tail_item_eval
  (rows with the flag set, per split) and num_heldout_validation_items (validation-held-out
  items seen in the data).
"""
from __future__ import annotations

import collections
import fractions
import hashlib
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from schemas import artifact_layout, features

# --- exec property keys of the component -------------------------------------------------
EVAL_FRACTION_KEY = "eval_fraction"
VALIDATION_FRACTION_KEY = "validation_fraction"
NEW_ITEM_FRACTION_KEY = "new_item_fraction"
VALIDATION_NEW_ITEM_FRACTION_KEY = "validation_new_item_fraction"
SEED_KEY = "seed"
HISTORY_LENGTH_KEY = "history_length"
WINDOW_SPANS_KEY = "window_spans"
TRAIN_NEWEST_SPAN_ONLY_KEY = "train_newest_span_only"
REPLAY_SHARE_KEY = "replay_share"

# Span mode: a row of an earlier span outside the training spans (history and flags only).
CONTEXT = "context"

SUMMARY_FILE = artifact_layout.InteractionExamples.SPLIT_SUMMARY_FILE

# --- split_summary.json keys ----------------------------------------------------------------
NUM_TRAIN = "num_train"
NUM_VALIDATION = "num_validation"
NUM_EVAL = "num_eval"
NUM_NEW_ITEM_EVAL = "num_new_item_eval"
NUM_HELDOUT_ITEMS = "num_heldout_items"
NUM_DROPPED_ROWS = "num_dropped_rows"
EVAL_CUT_TIMESTAMP = "eval_cut_timestamp"
VALIDATION_CUT_TIMESTAMP = "validation_cut_timestamp"
EVAL_ROWS_FROM_USERS_ABSENT_FROM_TRAIN = "eval_rows_from_users_absent_from_train"
HISTORY_LENGTH = "history_length"
NUM_NEW_ITEM_VALIDATION = "num_new_item_validation"
NUM_NEW_USER_VALIDATION = "num_new_user_validation"
NUM_NEW_USER_EVAL = "num_new_user_eval"
NUM_TAIL_ITEM_VALIDATION = "num_tail_item_validation"
NUM_TAIL_ITEM_EVAL = "num_tail_item_eval"
NUM_HELDOUT_VALIDATION_ITEMS = "num_heldout_validation_items"
NUM_HISTORY_ONLY_ROWS = "num_history_only_rows"
# Span mode (absent otherwise): the spans read, the evaluated one and the trained ones.
WINDOW_SPANS = artifact_layout.InteractionExamples.WINDOW_SPANS
EVAL_SPAN = artifact_layout.InteractionExamples.EVAL_SPAN
TRAIN_SPANS = artifact_layout.InteractionExamples.TRAIN_SPANS
REPLAY_SPANS = artifact_layout.InteractionExamples.REPLAY_SPANS
REPLAY_SHARE = artifact_layout.InteractionExamples.REPLAY_SHARE

# Counts the executor computes in Beam (everything in the summary but the cuts and H).
COUNT_KEYS = (NUM_TRAIN, NUM_VALIDATION, NUM_EVAL, NUM_NEW_ITEM_EVAL, NUM_HELDOUT_ITEMS,
              NUM_DROPPED_ROWS, EVAL_ROWS_FROM_USERS_ABSENT_FROM_TRAIN,
              NUM_NEW_ITEM_VALIDATION, NUM_NEW_USER_VALIDATION, NUM_NEW_USER_EVAL,
              NUM_TAIL_ITEM_VALIDATION, NUM_TAIL_ITEM_EVAL, NUM_HELDOUT_VALIDATION_ITEMS,
              NUM_HISTORY_ONLY_ROWS)
SUMMARY_KEYS = COUNT_KEYS + (EVAL_CUT_TIMESTAMP, VALIDATION_CUT_TIMESTAMP, HISTORY_LENGTH)
SPLIT_COUNT_KEYS = {features.TRAIN: NUM_TRAIN, features.VALIDATION: NUM_VALIDATION,
                    features.EVAL: NUM_EVAL, CONTEXT: NUM_HISTORY_ONLY_ROWS}
# Per-split counts of rows with a flag set (feature name -> {split: summary key}); train rows
# are not counted (is_new_item and is_new_user are always 0 there).
FLAG_COUNT_KEYS = {
    features.IS_NEW_ITEM: {features.VALIDATION: NUM_NEW_ITEM_VALIDATION,
                           features.EVAL: NUM_NEW_ITEM_EVAL},
    features.IS_NEW_USER: {features.VALIDATION: NUM_NEW_USER_VALIDATION,
                           features.EVAL: NUM_NEW_USER_EVAL},
    features.IS_TAIL_ITEM: {features.VALIDATION: NUM_TAIL_ITEM_VALIDATION,
                            features.EVAL: NUM_TAIL_ITEM_EVAL},
}


class TimeCuts(collections.namedtuple(
        "TimeCuts", ["eval_cut", "validation_cut", "num_rows", "num_train", "num_validation",
                     "num_eval", "replay_probability"], defaults=(0.0,))):
    """The two cuts and the row counts they give (before held-out rows are dropped).

    eval_cut: T_e; eval is timestamp > T_e.  validation_cut: T_v <= T_e; validation is
    T_v < timestamp <= T_e (empty when T_v == T_e).  num_train + num_validation + num_eval ==
    num_rows (replayed rows aside).  replay_probability: span mode's chance that a row of a
    replay span joins train (`compute_span_cuts`).
    """
    __slots__ = ()


class Interaction(collections.namedtuple(
        "Interaction", ["user_id", "item_id", "timestamp", "label", "split", "payload", "span"])):
    """One interaction row. item_id/user_id are bytes; split is a features split name, CONTEXT
    or None; payload is opaque to this module (the executor keeps the serialized tf.Example
    there); span: the Examples span the row came from (span mode), else None."""
    __slots__ = ()

    def __new__(cls, user_id, item_id, timestamp, label, split=None, payload=None, span=None):
        return super().__new__(cls, user_id, item_id, int(timestamp), int(label), split, payload,
                               None if span is None else int(span))


def validate_params(eval_fraction: float, validation_fraction: float, new_item_fraction: float,
                    history_length: int, validation_new_item_fraction: float = 0.0) -> None:
    """Raises ValueError on parameters the split rules cannot honour."""
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"InteractionFeatures: eval_fraction must be in (0, 1), got {eval_fraction}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"InteractionFeatures: validation_fraction must be in [0, 1), got {validation_fraction}")
    if not 0.0 <= new_item_fraction < 1.0:
        raise ValueError(
            f"InteractionFeatures: new_item_fraction must be in [0, 1), got {new_item_fraction}")
    if not 0.0 <= validation_new_item_fraction < 1.0:
        raise ValueError(
            "InteractionFeatures: validation_new_item_fraction must be in [0, 1), got "
            f"{validation_new_item_fraction}")
    if not new_item_fraction + validation_new_item_fraction < 1.0:
        raise ValueError(
            "InteractionFeatures: new_item_fraction + validation_new_item_fraction must be below "
            f"1 (every item would be held out), got {new_item_fraction} + "
            f"{validation_new_item_fraction}")
    if isinstance(history_length, bool) or int(history_length) != history_length or history_length < 1:
        raise ValueError(
            f"InteractionFeatures: history_length must be a positive integer, got {history_length}")


def _num_tail(n: int, fraction: float) -> int:
    """floor(n * fraction), exact for the decimal the user wrote (no float round-off)."""
    return math.floor(n * fractions.Fraction(repr(float(fraction))))


def _cut(sorted_counts: Sequence[Tuple[int, int]], n: int, fraction: float) -> int:
    """Timestamp of the k-th row, k = n - floor(n * fraction), over sorted (ts, count) pairs."""
    k = n - _num_tail(n, fraction)
    seen = 0
    for ts, c in sorted_counts:
        seen += c
        if seen >= k:
            return ts
    raise AssertionError("unreachable: k <= n")  # pragma: no cover


def compute_time_cuts(timestamp_counts: Iterable[Tuple[int, int]], eval_fraction: float,
                      validation_fraction: float) -> TimeCuts:
    """Both cuts from (timestamp, row count) pairs (a timestamp may repeat; counts are summed).

    See the module docstring for the rule. Raises ValueError on bad fractions, no rows, an
    empty eval period, or an empty validation period while validation_fraction > 0.
    """
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"InteractionFeatures: eval_fraction must be in (0, 1), got {eval_fraction}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"InteractionFeatures: validation_fraction must be in [0, 1), got {validation_fraction}")
    totals: Dict[int, int] = collections.defaultdict(int)
    for ts, c in timestamp_counts:
        if c < 0:
            raise ValueError(f"InteractionFeatures: negative row count {c} for timestamp {ts}")
        totals[int(ts)] += int(c)
    counts = sorted((ts, c) for ts, c in totals.items() if c > 0)
    n = sum(c for _, c in counts)
    if n == 0:
        raise ValueError("InteractionFeatures: no interactions in the input split "
                         f"{features.SPLIT_ALL!r}; cannot compute time cuts")

    eval_cut = _cut(counts, n, eval_fraction)
    train_period = [(ts, c) for ts, c in counts if ts <= eval_cut]
    n_tp = sum(c for _, c in train_period)
    n_eval = n - n_tp
    if n_eval == 0:
        raise ValueError(
            f"InteractionFeatures: the eval split would be empty: eval_fraction={eval_fraction} "
            f"of {n} rows gives the cut {eval_cut}, which is the latest timestamp (too few rows "
            "or too many rows share the last timestamps)")

    validation_cut = _cut(train_period, n_tp, validation_fraction)
    n_train = sum(c for ts, c in train_period if ts <= validation_cut)
    n_val = n_tp - n_train
    if validation_fraction > 0 and n_val == 0:
        raise ValueError(
            f"InteractionFeatures: the validation split would be empty: validation_fraction="
            f"{validation_fraction} of the {n_tp} train-period rows (timestamp <= {eval_cut}) "
            "selects no rows after the validation cut (too few rows or ties at the cut); "
            "use more data or validation_fraction=0")
    return TimeCuts(eval_cut=eval_cut, validation_cut=validation_cut, num_rows=n,
                    num_train=n_train, num_validation=n_val, num_eval=n_eval)


class SpanPlan(collections.namedtuple(
        "SpanPlan", ["window", "eval_span", "train_spans", "replay_spans", "replay_share"],
        defaults=((), 0.0))):
    """Span mode: the spans read (ascending), the evaluated one (the newest) and the trained
    ones (ascending; their newest also holds the validation rows). A warm start may replay the
    older spans of the window (`replay_spans`): a seeded sample of their rows, replay_share
    times the trained spans' train rows, joins train."""
    __slots__ = ()

    @property
    def validation_span(self) -> int:
        return self.train_spans[-1]


def plan_spans(spans: Iterable[int], window_spans: int, train_newest_span_only: bool,
               replay_share: float = 0.0) -> Optional[SpanPlan]:
    """The plan over the spans present (any order, repeats allowed): the newest `window_spans`
    of them; None (time split, as without spans) when that leaves one span. With
    train_newest_span_only and replay_share > 0, the older spans are replayed."""
    if isinstance(window_spans, bool) or int(window_spans) != window_spans or window_spans < 1:
        raise ValueError(
            f"InteractionFeatures: window_spans must be a positive integer, got {window_spans}")
    validate_replay_share(replay_share)
    window = sorted(set(int(s) for s in spans))[-int(window_spans):]
    if len(window) < 2:
        return None
    earlier = tuple(window[:-1])
    if not train_newest_span_only:
        return SpanPlan(window=tuple(window), eval_span=window[-1], train_spans=earlier)
    replay = earlier[:-1] if replay_share > 0 else ()
    return SpanPlan(window=tuple(window), eval_span=window[-1], train_spans=earlier[-1:],
                    replay_spans=replay, replay_share=float(replay_share) if replay else 0.0)


def validate_replay_share(replay_share: float) -> None:
    if (isinstance(replay_share, bool) or not isinstance(replay_share, (int, float))
            or not math.isfinite(replay_share) or replay_share < 0):
        raise ValueError("InteractionFeatures: replay_share must be a finite number >= 0 (a "
                         f"share of the newest span's train rows), got {replay_share!r}")


def compute_span_cuts(span_timestamp_counts: Iterable[Tuple[int, int, int]], plan: SpanPlan,
                      validation_fraction: float) -> TimeCuts:
    """Span mode's cuts from (span, timestamp, count) triples: T_v over the validation span's
    rows (the rule of `compute_time_cuts`), and as eval_cut the last timestamp of the training
    spans. The counts are the rows of the plan's splits (history-only rows are not counted);
    replay_probability = min(1, replay_share x num_train / the replay spans' rows).
    Raises ValueError when a split would be empty."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"InteractionFeatures: validation_fraction must be in [0, 1), got {validation_fraction}")
    per_span: Dict[int, Dict[int, int]] = collections.defaultdict(
        lambda: collections.defaultdict(int))
    for span, ts, c in span_timestamp_counts:
        if c < 0:
            raise ValueError(f"InteractionFeatures: negative row count {c} for timestamp {ts}")
        per_span[int(span)][int(ts)] += int(c)
    n_eval = sum(per_span.get(plan.eval_span, {}).values())
    trained = [(ts, c) for span in plan.train_spans for ts, c in per_span.get(span, {}).items()
               if c > 0]
    if n_eval == 0 or not trained:
        empty = f"eval span {plan.eval_span}" if n_eval == 0 else f"training spans {list(plan.train_spans)}"
        raise ValueError(f"InteractionFeatures: the {empty} hold no interactions; cannot split "
                         f"the window {list(plan.window)}")
    last = sorted((ts, c) for ts, c in per_span[plan.validation_span].items() if c > 0)
    n_last = sum(c for _, c in last)
    validation_cut = _cut(last, n_last, validation_fraction) if last else max(ts for ts, _ in trained)
    n_val = sum(c for ts, c in last if ts > validation_cut)
    if validation_fraction > 0 and n_val == 0:
        raise ValueError(
            f"InteractionFeatures: the validation split would be empty: validation_fraction="
            f"{validation_fraction} of span {plan.validation_span}'s {n_last} rows selects no "
            "rows after the validation cut (too few rows or ties at the cut)")
    n_train = sum(c for _, c in trained) - n_val
    n_replay = sum(sum(per_span.get(span, {}).values()) for span in plan.replay_spans)
    replay_probability = min(1.0, plan.replay_share * n_train / n_replay) if n_replay else 0.0
    return TimeCuts(eval_cut=max(ts for ts, _ in trained), validation_cut=validation_cut,
                    num_rows=n_train + n_val + n_eval, num_train=n_train, num_validation=n_val,
                    num_eval=n_eval, replay_probability=replay_probability)


def assign_span_split(span: int, timestamp: int, plan: SpanPlan, cuts: TimeCuts,
                      replay_unit: float = 1.0) -> str:
    """A row's split in span mode: eval, validation, train or CONTEXT (history only). A row of
    a replay span joins train when its `replay_unit` (`row_hash_unit`) is below the cuts'
    replay_probability."""
    if span == plan.eval_span:
        return features.EVAL
    if span == plan.validation_span and timestamp > cuts.validation_cut:
        return features.VALIDATION
    if span in plan.train_spans:
        return features.TRAIN
    if span in plan.replay_spans and replay_unit < cuts.replay_probability:
        return features.TRAIN
    return CONTEXT


# Which rows a row's flags look back over (see the module docstring): the train split in the
# time split; in span mode everything before the row's period.
_TIME_REFERENCE = frozenset([features.TRAIN])
_SPAN_BEFORE_VALIDATION = frozenset([features.TRAIN, CONTEXT])
_SPAN_REFERENCE = {features.TRAIN: _SPAN_BEFORE_VALIDATION,
                   features.VALIDATION: _SPAN_BEFORE_VALIDATION,
                   features.EVAL: frozenset([features.TRAIN, CONTEXT, features.VALIDATION])}


def reference_splits(split: str, span_mode: bool) -> frozenset:
    """The splits whose rows count as seen before a row of `split` (its is_new_item,
    is_new_user and is_tail_item look at them)."""
    return _SPAN_REFERENCE[split] if span_mode else _TIME_REFERENCE


def assign_split(timestamp: int, cuts: TimeCuts) -> str:
    """The split of a row with this timestamp (before held-out rows are dropped)."""
    if timestamp > cuts.eval_cut:
        return features.EVAL
    if timestamp > cuts.validation_cut:
        return features.VALIDATION
    return features.TRAIN


def _as_bytes(x: Union[bytes, str]) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode("utf-8")


def _hash_unit(message: bytes) -> float:
    """A stable pseudo-uniform number in [0, 1) from `message`: blake2b, 53 bits."""
    h = hashlib.blake2b(message, digest_size=8)
    return (int.from_bytes(h.digest(), "big") >> 11) / float(1 << 53)


def item_hash_unit(seed: int, item_id: Union[bytes, str]) -> float:
    """A stable pseudo-uniform number in [0, 1) from (seed, item_id) (the held-out shares)."""
    return _hash_unit(b"semids-heldout:%d:" % int(seed) + _as_bytes(item_id))


def row_hash_unit(seed: int, user_id: Union[bytes, str], item_id: Union[bytes, str],
                  timestamp: int) -> float:
    """A stable pseudo-uniform number in [0, 1) from one interaction (the replay sample)."""
    return _hash_unit(b"semids-replay:%d:%d:" % (int(seed), int(timestamp))
                      + _as_bytes(user_id) + b"\x00" + _as_bytes(item_id))


def is_heldout_item(item_id: Union[bytes, str], seed: int, new_item_fraction: float) -> bool:
    """Whether the item is eval-held-out (new at eval). Same answer everywhere for the same seed."""
    return new_item_fraction > 0 and item_hash_unit(seed, item_id) < new_item_fraction


def is_validation_heldout_item(item_id: Union[bytes, str], seed: int, new_item_fraction: float,
                               validation_new_item_fraction: float) -> bool:
    """Whether the item is validation-held-out (new in validation and eval): its hash lies in
    [new_item_fraction, new_item_fraction + validation_new_item_fraction), so the two shares
    are disjoint and, for a fixed new_item_fraction, a larger validation share is a superset."""
    if validation_new_item_fraction <= 0:
        return False
    u = item_hash_unit(seed, item_id)
    return new_item_fraction <= u < new_item_fraction + validation_new_item_fraction


def heldout_split(item_id: Union[bytes, str], seed: int, new_item_fraction: float,
                  validation_new_item_fraction: float = 0.0) -> Optional[str]:
    """features.EVAL for an eval-held-out item, features.VALIDATION for a validation-held-out
    one, None for any other item (one hash per call)."""
    if new_item_fraction <= 0 and validation_new_item_fraction <= 0:
        return None
    u = item_hash_unit(seed, item_id)
    if u < new_item_fraction:
        return features.EVAL
    if u < new_item_fraction + validation_new_item_fraction:
        return features.VALIDATION
    return None


def drop_cut(heldout: Optional[str], cuts: TimeCuts) -> Optional[int]:
    """The timestamp at or before which a held-out item's rows are dropped (`heldout` from
    `heldout_split`): T_e for an eval-held-out item, T_v for a validation-held-out one."""
    if heldout == features.EVAL:
        return cuts.eval_cut
    if heldout == features.VALIDATION:
        return cuts.validation_cut
    return None


def is_dropped(row: Interaction, cuts: TimeCuts, seed: int, new_item_fraction: float,
               validation_new_item_fraction: float = 0.0) -> bool:
    """A held-out item's interaction at or before its cut (T_e for eval-held-out items, T_v for
    validation-held-out ones): dropped from everything."""
    cut = drop_cut(heldout_split(row.item_id, seed, new_item_fraction,
                                 validation_new_item_fraction), cuts)
    return cut is not None and row.timestamp <= cut


def is_tail_count(train_rows: int) -> bool:
    """Whether an item with this many train-split rows is a tail item (1..4 rows)."""
    return features.TAIL_MIN_TRAIN_ROWS <= train_rows <= features.TAIL_MAX_TRAIN_ROWS


class RowFlags(collections.namedtuple("RowFlags", ["is_new_item", "is_new_user", "is_tail_item"])):
    """The per-row 0/1 features (ints), named like their features (schemas/features.py)."""
    __slots__ = ()

    def as_features(self) -> Dict[str, int]:
        return {features.IS_NEW_ITEM: self.is_new_item, features.IS_NEW_USER: self.is_new_user,
                features.IS_TAIL_ITEM: self.is_tail_item}


def row_flags(user_has_train_rows: bool, item_train_rows: int) -> RowFlags:
    """The flags of a kept row from its user's presence in, and its item's row count in, the
    train split (after held-out rows are dropped). A train row's own user and item are in the
    train split, so its is_new_item and is_new_user are 0 by construction."""
    if item_train_rows < 0:
        raise ValueError(f"InteractionFeatures: negative train row count {item_train_rows}")
    return RowFlags(is_new_item=int(item_train_rows == 0),
                    is_new_user=int(not user_has_train_rows),
                    is_tail_item=int(is_tail_count(item_train_rows)))


def sort_key(row: Interaction) -> Tuple[int, bytes, int]:
    """Order of a user's rows: time, then item id, then label (deterministic)."""
    return (row.timestamp, _as_bytes(row.item_id), row.label)


def build_histories(rows: Iterable[Interaction], history_length: int
                    ) -> List[Tuple[Interaction, List[bytes], List[int]]]:
    """(row, history, history_labels) for one user's rows, in time order.

    rows need not be sorted (they are sorted by `sort_key`; already-sorted input costs O(n)).
    history holds the item ids of rows with a strictly smaller timestamp, most recent first,
    at most history_length; history_labels are their labels. O(n * history_length) in all,
    i.e. O(n) per user for a fixed cap.
    """
    if history_length < 1:
        raise ValueError(f"history_length must be positive, got {history_length}")
    ordered = sorted(rows, key=sort_key)
    window: collections.deque = collections.deque(maxlen=history_length)  # oldest .. newest
    out: List[Tuple[Interaction, List[bytes], List[int]]] = []
    i, n = 0, len(ordered)
    while i < n:
        j = i
        ts = ordered[i].timestamp
        while j < n and ordered[j].timestamp == ts:
            j += 1
        newest_first = list(reversed(window))
        items = [item for item, _ in newest_first]
        labels = [label for _, label in newest_first]
        for row in ordered[i:j]:  # same second: the same history, none of each other
            out.append((row, list(items), list(labels)))
        for row in ordered[i:j]:
            window.append((row.item_id, row.label))
        i = j
    return out


def make_split_summary(counts: Mapping[str, int], cuts: TimeCuts, history_length: int,
                       plan: Optional[SpanPlan] = None) -> Dict[str, Any]:
    """The split_summary.json dict: counts (missing ones are 0), both cuts, the cap, and in span
    mode the spans."""
    unknown = sorted(set(counts) - set(COUNT_KEYS))
    if unknown:
        raise ValueError(f"InteractionFeatures: unknown summary count(s) {unknown}")
    summary: Dict[str, Any] = {key: int(counts.get(key, 0)) for key in COUNT_KEYS}
    summary[EVAL_CUT_TIMESTAMP] = int(cuts.eval_cut)
    summary[VALIDATION_CUT_TIMESTAMP] = int(cuts.validation_cut)
    summary[HISTORY_LENGTH] = int(history_length)
    if plan is not None:
        summary[WINDOW_SPANS] = list(plan.window)
        summary[EVAL_SPAN] = plan.eval_span
        summary[TRAIN_SPANS] = list(plan.train_spans)
        summary[REPLAY_SPANS] = list(plan.replay_spans)
        summary[REPLAY_SHARE] = float(plan.replay_share)
    return summary


def summary_line(summary: Mapping[str, Any]) -> str:
    """The one log line of a finished run."""
    spans = ""
    if summary.get(EVAL_SPAN) is not None:
        spans = (f"spans: trained on {summary[TRAIN_SPANS]}, evaluated on {summary[EVAL_SPAN]}, "
                 f"{summary.get(NUM_HISTORY_ONLY_ROWS, 0):,} history-only rows; ")
    return (f"InteractionFeatures: {spans}{features.TRAIN} {summary[NUM_TRAIN]:,} / "
            f"{features.VALIDATION} {summary[NUM_VALIDATION]:,} / {features.EVAL} "
            f"{summary[NUM_EVAL]:,} rows ({summary[NUM_NEW_ITEM_EVAL]:,} new-item, "
            f"{summary[NUM_NEW_USER_EVAL]:,} new-user, {summary[NUM_TAIL_ITEM_EVAL]:,} tail-item "
            f"eval rows; {summary[NUM_NEW_ITEM_VALIDATION]:,} new-item validation rows; "
            f"{summary[NUM_HELDOUT_ITEMS]:,} eval- and {summary[NUM_HELDOUT_VALIDATION_ITEMS]:,} "
            f"validation-held-out items, {summary[NUM_DROPPED_ROWS]:,} rows dropped; cuts: "
            f"validation > {summary[VALIDATION_CUT_TIMESTAMP]}, eval > "
            f"{summary[EVAL_CUT_TIMESTAMP]})")
