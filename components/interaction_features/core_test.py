"""Unit tests of the pure InteractionFeatures logic (no TFX, no Beam)."""
import pytest

from components.interaction_features import core
from schemas import features


def _counts(timestamps):
    out = {}
    for ts in timestamps:
        out[ts] = out.get(ts, 0) + 1
    return list(out.items())


# --- time cuts ------------------------------------------------------------------------------

def test_cuts_exact_quantile_without_ties():
    cuts = core.compute_time_cuts(_counts(range(1, 11)), 0.2, 0.25)
    assert cuts.eval_cut == 8  # 10 rows, 2 eval rows: 9, 10
    assert cuts.validation_cut == 6  # 8 train-period rows, 2 validation rows: 7, 8
    assert (cuts.num_train, cuts.num_validation, cuts.num_eval, cuts.num_rows) == (6, 2, 2, 10)


def test_cuts_ties_at_cut_stay_in_train_period():
    # 10 rows; the 8th row has ts 5, and ts 5 also holds the 9th row -> only ts 6 is eval.
    ts = [1, 2, 3, 4, 4, 4, 4, 5, 5, 6]
    cuts = core.compute_time_cuts(_counts(ts), 0.2, 0.0)
    assert cuts.eval_cut == 5
    assert cuts.num_eval == 1
    assert [core.assign_split(t, cuts) for t in ts].count(features.EVAL) == 1
    # validation over the 9 train-period rows: floor(9 * 0.34) = 3 -> k = 6 -> 6th row ts 4,
    # ties at 4 stay in train, so validation is ts 5 only (2 rows).
    cuts = core.compute_time_cuts(_counts(ts), 0.2, 0.34)
    assert (cuts.validation_cut, cuts.num_validation, cuts.num_train) == (4, 2, 7)


def test_cuts_repeated_timestamps_in_input_are_summed_and_order_free():
    a = core.compute_time_cuts([(3, 1), (1, 2), (3, 1), (2, 1), (4, 5)], 0.5, 0.0)
    b = core.compute_time_cuts([(1, 2), (2, 1), (3, 2), (4, 5)], 0.5, 0.0)
    assert a == b
    assert a.eval_cut == 3 and a.num_eval == 5


def test_cuts_fraction_is_exact_decimal():
    # 0.29 * 100 is 28.999999999999996 in floats; the rule must take 29 eval rows.
    cuts = core.compute_time_cuts(_counts(range(100)), 0.29, 0.0)
    assert cuts.num_eval == 29


def test_validation_fraction_zero_gives_no_validation_rows():
    cuts = core.compute_time_cuts(_counts(range(20)), 0.25, 0.0)
    assert cuts.validation_cut == cuts.eval_cut
    assert cuts.num_validation == 0
    assert all(core.assign_split(t, cuts) != features.VALIDATION for t in range(20))


def test_splits_partition_by_timestamp():
    ts = list(range(50)) * 2
    cuts = core.compute_time_cuts(_counts(ts), 0.2, 0.1)
    for t in ts:
        split = core.assign_split(t, cuts)
        assert (split == features.EVAL) == (t > cuts.eval_cut)
        assert (split == features.VALIDATION) == (cuts.validation_cut < t <= cuts.eval_cut)
    assert sum(core.assign_split(t, cuts) == features.TRAIN for t in ts) == cuts.num_train


@pytest.mark.parametrize("pairs,ef,vf,match", [
    ([], 0.2, 0.1, "no interactions"),
    ([(5, 0)], 0.2, 0.1, "no interactions"),
    ([(5, 10)], 0.2, 0.0, "eval split would be empty"),  # every row ties
    ([(1, 1), (2, 1)], 0.2, 0.0, "eval split would be empty"),  # floor(2 * 0.2) = 0
    ([(1, 5), (2, 5)], 0.5, 0.2, "validation split would be empty"),
    ([(1, 5)], 0.0, 0.1, "eval_fraction"),
    ([(1, 5)], 1.0, 0.1, "eval_fraction"),
    ([(1, 5)], 0.2, -0.1, "validation_fraction"),
    ([(1, -1)], 0.2, 0.1, "negative"),
])
def test_cuts_degenerate_inputs_raise(pairs, ef, vf, match):
    with pytest.raises(ValueError, match=match):
        core.compute_time_cuts(pairs, ef, vf)


def test_validate_params():
    core.validate_params(0.2, 0.0, 0.0, 1)
    for args in [(0.0, 0.1, 0.1, 5), (0.2, 1.0, 0.1, 5), (0.2, 0.1, 1.0, 5), (0.2, 0.1, 0.1, 0),
                 (0.2, 0.1, 0.1, 2.5)]:
        with pytest.raises(ValueError):
            core.validate_params(*args)


# --- held-out items -------------------------------------------------------------------------

def test_heldout_selection_deterministic_and_about_fraction():
    items = [str(i).encode() for i in range(20000)]
    a = [core.is_heldout_item(i, 7, 0.1) for i in items]
    b = [core.is_heldout_item(i, 7, 0.1) for i in items]
    assert a == b
    assert 0.09 < sum(a) / len(a) < 0.11
    other_seed = [core.is_heldout_item(i, 8, 0.1) for i in items]
    assert other_seed != a
    assert not any(core.is_heldout_item(i, 7, 0.0) for i in items)
    # str and bytes ids agree; a larger fraction holds out a superset (same hash, higher bar)
    assert core.is_heldout_item("42", 7, 0.1) == core.is_heldout_item(b"42", 7, 0.1)
    bigger = [core.is_heldout_item(i, 7, 0.3) for i in items]
    assert all(y for x, y in zip(a, bigger) if x)


def test_item_hash_unit_range_and_stability():
    u = core.item_hash_unit(0, b"movie-1")
    assert 0.0 <= u < 1.0
    assert u == core.item_hash_unit(0, "movie-1")
    assert u == pytest.approx(0.1042159029772961, abs=1e-15)  # pinned: a changed hash changes splits
    assert core.item_hash_unit(0, b"movie-1") != core.item_hash_unit(1, b"movie-1")


def test_is_dropped_only_at_or_before_eval_cut():
    cuts = core.TimeCuts(eval_cut=10, validation_cut=5, num_rows=0, num_train=0,
                         num_validation=0, num_eval=0)
    item = next(str(i).encode() for i in range(1000) if core.is_heldout_item(str(i), 3, 0.5))
    assert core.is_dropped(core.Interaction(b"u", item, 10, 1), cuts, 3, 0.5)
    assert core.is_dropped(core.Interaction(b"u", item, 2, 1), cuts, 3, 0.5)
    assert not core.is_dropped(core.Interaction(b"u", item, 11, 1), cuts, 3, 0.5)


# --- histories ------------------------------------------------------------------------------

def _rows(spec):
    return [core.Interaction(b"u", item.encode(), ts, label) for item, ts, label in spec]


def _by_item(out):
    return {row.item_id: (hist, labels) for row, hist, labels in out}


def test_history_most_recent_first_labels_aligned():
    out = core.build_histories(_rows([("c", 30, 1), ("a", 10, 1), ("b", 20, 0), ("d", 40, 0)]), 10)
    assert [r.item_id for r, _, _ in out] == [b"a", b"b", b"c", b"d"]  # time order
    h = _by_item(out)
    assert h[b"a"] == ([], [])
    assert h[b"b"] == ([b"a"], [1])
    assert h[b"d"] == ([b"c", b"b", b"a"], [1, 0, 1])


def test_history_excludes_same_second_and_later():
    out = core.build_histories(_rows([("a", 10, 1), ("b", 20, 0), ("c", 20, 1), ("d", 30, 1)]), 10)
    h = _by_item(out)
    assert h[b"b"] == ([b"a"], [1])  # c happened in the same second: not history
    assert h[b"c"] == ([b"a"], [1])
    assert h[b"d"][0][0] in (b"b", b"c") and set(h[b"d"][0]) == {b"a", b"b", b"c"}
    # deterministic order of same-second rows: item id
    assert h[b"d"] == ([b"c", b"b", b"a"], [1, 0, 1])


def test_history_cap():
    out = core.build_histories(_rows([(f"i{t}", t, t % 2) for t in range(10)]), 3)
    h = _by_item(out)
    assert h[b"i9"] == ([b"i8", b"i7", b"i6"], [0, 1, 0])
    assert h[b"i1"] == ([b"i0"], [0])
    assert all(len(hist) <= 3 and len(hist) == len(lab) for _, hist, lab in out)


def test_history_keeps_repeats_and_is_order_independent():
    spec = [("a", 1, 1), ("a", 2, 0), ("b", 3, 1), ("a", 3, 1)]
    out1 = core.build_histories(_rows(spec), 5)
    out2 = core.build_histories(_rows(list(reversed(spec))), 5)
    assert out1 == out2
    assert out1[-1][1:] == ([b"a", b"a"], [0, 1])  # (a, 3) sees a@2, a@1 only


def test_history_rejects_bad_length():
    with pytest.raises(ValueError):
        core.build_histories([], 0)


# --- summary --------------------------------------------------------------------------------

def test_make_split_summary_fills_missing_counts():
    cuts = core.TimeCuts(eval_cut=9, validation_cut=7, num_rows=10, num_train=7,
                         num_validation=1, num_eval=2)
    s = core.make_split_summary({core.NUM_TRAIN: 6, core.NUM_EVAL: 2}, cuts, 5)
    assert set(s) == set(core.SUMMARY_KEYS)
    assert s[core.NUM_TRAIN] == 6 and s[core.NUM_VALIDATION] == 0
    assert s[core.EVAL_CUT_TIMESTAMP] == 9 and s[core.VALIDATION_CUT_TIMESTAMP] == 7
    assert s[core.HISTORY_LENGTH] == 5
    assert "train 6" in core.summary_line(s)
    with pytest.raises(ValueError):
        core.make_split_summary({"bogus": 1}, cuts, 5)


# --- validation new-item holdout ------------------------------------------------------------

def test_validate_params_validation_new_item_fraction():
    core.validate_params(0.2, 0.1, 0.1, 5, 0.0)
    core.validate_params(0.2, 0.1, 0.1, 5, 0.5)
    core.validate_params(0.2, 0.1, 0.0, 5, 0.99)
    for vnif, match in [(-0.1, "validation_new_item_fraction"),
                        (1.0, "validation_new_item_fraction"),
                        (0.9, "below 1")]:  # 0.1 + 0.9: every item held out
        with pytest.raises(ValueError, match=match):
            core.validate_params(0.2, 0.1, 0.1, 5, vnif)


def test_heldout_split_disjoint_seeded_shares():
    items = [str(i).encode() for i in range(20000)]
    kinds = [core.heldout_split(i, 7, 0.1, 0.2) for i in items]
    assert kinds == [core.heldout_split(i, 7, 0.1, 0.2) for i in items]  # deterministic
    # the eval share is exactly today's held-out set; the validation share is disjoint from it
    assert [k == features.EVAL for k in kinds] == [core.is_heldout_item(i, 7, 0.1) for i in items]
    assert [k == features.VALIDATION for k in kinds] == [
        core.is_validation_heldout_item(i, 7, 0.1, 0.2) for i in items]
    assert 0.09 < kinds.count(features.EVAL) / len(items) < 0.11
    assert 0.19 < kinds.count(features.VALIDATION) / len(items) < 0.21
    for item, kind in zip(items[:500], kinds):  # the rule on u itself
        u = core.item_hash_unit(7, item)
        assert (kind == features.EVAL) == (u < 0.1)
        assert (kind == features.VALIDATION) == (0.1 <= u < 0.3)
    # default 0: no validation holdout; both 0: nothing held out
    assert all(core.heldout_split(i, 7, 0.1) != features.VALIDATION for i in items[:2000])
    assert all(core.heldout_split(i, 7, 0.0, 0.0) is None for i in items[:2000])
    assert not any(core.is_validation_heldout_item(i, 7, 0.1, 0.0) for i in items[:2000])
    # validation share only (new_item_fraction 0): u < validation_new_item_fraction
    only = [core.heldout_split(i, 7, 0.0, 0.1) for i in items[:2000]]
    assert only == [features.VALIDATION if core.is_heldout_item(i, 7, 0.1) else None
                    for i in items[:2000]]


def test_drop_cut_and_is_dropped_with_validation_holdout():
    cuts = core.TimeCuts(eval_cut=10, validation_cut=5, num_rows=0, num_train=0,
                         num_validation=0, num_eval=0)
    assert core.drop_cut(features.EVAL, cuts) == 10
    assert core.drop_cut(features.VALIDATION, cuts) == 5
    assert core.drop_cut(None, cuts) is None
    ids = [str(i) for i in range(1000)]
    ev = next(i for i in ids if core.heldout_split(i, 3, 0.3, 0.3) == features.EVAL)
    va = next(i for i in ids if core.heldout_split(i, 3, 0.3, 0.3) == features.VALIDATION)
    other = next(i for i in ids if core.heldout_split(i, 3, 0.3, 0.3) is None)

    def dropped(item, ts, vnif=0.3):
        return core.is_dropped(core.Interaction(b"u", item.encode(), ts, 1), cuts, 3, 0.3, vnif)

    assert [dropped(ev, t) for t in (2, 5, 6, 10, 11)] == [True, True, True, True, False]
    assert [dropped(va, t) for t in (2, 5, 6, 10, 11)] == [True, True, False, False, False]
    assert not any(dropped(other, t) for t in (2, 5, 6, 10, 11))
    assert not any(dropped(va, t, vnif=0.0) for t in (2, 5, 6, 10, 11))  # default: kept
    # the old 4-argument call is unchanged
    assert core.is_dropped(core.Interaction(b"u", ev.encode(), 7, 1), cuts, 3, 0.3)


# --- per-row flags --------------------------------------------------------------------------

def test_tail_bounds():
    assert (features.TAIL_MIN_TRAIN_ROWS, features.TAIL_MAX_TRAIN_ROWS) == (1, 4)
    assert [core.is_tail_count(n) for n in range(7)] == [False, True, True, True, True, False,
                                                          False]


def test_row_flags():
    f = core.row_flags(user_has_train_rows=True, item_train_rows=0)
    assert f == core.RowFlags(is_new_item=1, is_new_user=0, is_tail_item=0)  # new is not tail
    assert core.row_flags(False, 3) == (0, 1, 1)
    assert core.row_flags(True, 4) == (0, 0, 1)
    assert core.row_flags(True, 5) == (0, 0, 0)
    assert core.row_flags(False, 0) == (1, 1, 0)
    assert core.row_flags(True, 1).as_features() == {
        features.IS_NEW_ITEM: 0, features.IS_NEW_USER: 0, features.IS_TAIL_ITEM: 1}
    assert all(isinstance(v, int) for v in core.row_flags(False, 2))
    with pytest.raises(ValueError):
        core.row_flags(True, -1)


def test_summary_has_the_new_keys_and_keeps_the_old_ones():
    for key in ("num_train", "num_validation", "num_eval", "num_new_item_eval", "num_heldout_items",
                "num_dropped_rows", "eval_cut_timestamp", "validation_cut_timestamp",
                "eval_rows_from_users_absent_from_train", "history_length",
                "num_new_item_validation", "num_new_user_validation", "num_new_user_eval",
                "num_tail_item_validation", "num_tail_item_eval", "num_heldout_validation_items"):
        assert key in core.SUMMARY_KEYS
    assert len(set(core.SUMMARY_KEYS)) == len(core.SUMMARY_KEYS)
    flag_keys = {k for per_split in core.FLAG_COUNT_KEYS.values() for k in per_split.values()}
    assert flag_keys <= set(core.COUNT_KEYS)


# --- span mode -------------------------------------------------------------------------------

def test_plan_spans_takes_the_newest_window_and_falls_back_to_the_time_split():
    assert core.plan_spans([3, 1, 2, 2], 5, False) == core.SpanPlan((1, 2, 3), 3, (1, 2))
    assert core.plan_spans([1, 2, 3, 4], 3, False) == core.SpanPlan((2, 3, 4), 4, (2, 3))
    assert core.plan_spans([1, 2, 3, 4], 3, True) == core.SpanPlan((2, 3, 4), 4, (3,))
    assert core.plan_spans([1, 2, 3], 3, True).validation_span == 2
    assert core.plan_spans([7], 3, False) is None  # one span: the time split
    assert core.plan_spans([1, 2], 1, False) is None
    with pytest.raises(ValueError, match="window_spans"):
        core.plan_spans([1, 2], 0, False)


def test_span_cuts_validate_on_the_newest_training_span_and_assign_by_span():
    plan = core.SpanPlan((1, 2, 3), 3, (1, 2))
    triples = ([(1, ts, 1) for ts in range(10)] + [(2, ts, 1) for ts in range(10, 20)]
               + [(3, ts, 1) for ts in range(20, 25)])
    cuts = core.compute_span_cuts(triples, plan, 0.2)
    assert cuts.validation_cut == 17  # span 2's last 2 of 10 rows: 18, 19
    assert cuts.eval_cut == 19
    assert (cuts.num_train, cuts.num_validation, cuts.num_eval) == (18, 2, 5)
    split = lambda span, ts: core.assign_span_split(span, ts, plan, cuts)  # noqa: E731
    assert [split(1, 0), split(2, 17), split(2, 18), split(3, 20)] == [
        features.TRAIN, features.TRAIN, features.VALIDATION, features.EVAL]
    warm = core.SpanPlan((1, 2, 3), 3, (2,))
    cuts = core.compute_span_cuts(triples, warm, 0.2)
    assert (cuts.num_train, cuts.num_validation, cuts.num_eval) == (8, 2, 5)
    assert core.assign_span_split(1, 3, warm, cuts) == core.CONTEXT
    # An eval span earlier in time than a training span's rows is still the eval span.
    assert core.assign_span_split(3, 0, warm, cuts) == features.EVAL


def test_a_warm_start_replays_a_seeded_share_of_the_older_spans():
    assert core.plan_spans([1, 2, 3, 4], 4, True, 0.5) == core.SpanPlan(
        (1, 2, 3, 4), 4, (3,), (1, 2), 0.5)
    assert core.plan_spans([1, 2, 3], 3, False, 0.5) == core.SpanPlan((1, 2, 3), 3, (1, 2))
    assert core.plan_spans([1, 2], 2, True, 0.5).replay_spans == ()  # nothing older to replay
    for bad in (-0.1, float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match="replay_share"):
            core.plan_spans([1, 2, 3], 3, True, bad)
    triples = ([(1, ts, 1) for ts in range(10)] + [(2, ts, 1) for ts in range(10, 20)]
               + [(3, ts, 1) for ts in range(20, 30)] + [(4, ts, 1) for ts in range(30, 35)])
    plan = core.plan_spans([1, 2, 3, 4], 4, True, 0.5)
    cuts = core.compute_span_cuts(triples, plan, 0.2)
    # 8 train rows in span 3; half as many drawn from span 1 and 2's 20 rows.
    assert (cuts.num_train, cuts.replay_probability) == (8, pytest.approx(4 / 20))
    assert core.assign_span_split(1, 3, plan, cuts, replay_unit=0.1) == features.TRAIN
    assert core.assign_span_split(2, 13, plan, cuts, replay_unit=0.9) == core.CONTEXT
    assert core.assign_span_split(3, 21, plan, cuts, replay_unit=0.9) == features.TRAIN
    assert core.compute_span_cuts(triples, plan._replace(replay_share=9.0),
                                  0.2).replay_probability == 1.0
    units = [core.row_hash_unit(0, b"u%d" % i, b"i", 5) for i in range(2000)]
    assert units == [core.row_hash_unit(0, b"u%d" % i, b"i", 5) for i in range(2000)]
    assert 0.15 < sum(u < 0.2 for u in units) / len(units) < 0.25
    assert core.row_hash_unit(1, b"u1", b"i", 5) != core.row_hash_unit(0, b"u1", b"i", 5)
    summary = core.make_split_summary({}, cuts, 3, plan)
    assert (summary[core.REPLAY_SPANS], summary[core.REPLAY_SHARE]) == ([1, 2], 0.5)


@pytest.mark.parametrize("triples,vf,match", [
    ([(1, 1, 5)], 0.2, "eval span 2 hold no interactions"),
    ([(2, 1, 5)], 0.2, r"training spans \[1\] hold no interactions"),
    ([(1, 1, 5), (2, 3, 1)], 0.2, "validation split would be empty"),
])
def test_span_cuts_degenerate_windows_raise(triples, vf, match):
    with pytest.raises(ValueError, match=match):
        core.compute_span_cuts(triples, core.SpanPlan((1, 2), 2, (1,)), vf)


def test_reference_splits_look_back_over_everything_before_the_period_in_span_mode():
    for split in features.SPLITS:
        assert core.reference_splits(split, False) == {features.TRAIN}
    assert core.reference_splits(features.EVAL, True) == {
        features.TRAIN, features.VALIDATION, core.CONTEXT}
    assert core.reference_splits(features.VALIDATION, True) == {features.TRAIN, core.CONTEXT}


def test_split_summary_records_the_spans():
    cuts = core.TimeCuts(9, 8, 10, 6, 2, 2)
    summary = core.make_split_summary({}, cuts, 3, core.SpanPlan((1, 2, 3), 3, (2,)))
    assert (summary[core.WINDOW_SPANS], summary[core.EVAL_SPAN], summary[core.TRAIN_SPANS]) == (
        [1, 2, 3], 3, [2])
    assert "trained on [2], evaluated on 3" in core.summary_line(summary)
    assert core.EVAL_SPAN not in core.make_split_summary({}, cuts, 3)
