"""The must-beat baselines and the AUC-by-slice machinery, on synthetic arrays (no pipeline)."""
import math

import numpy as np
import pytest

from pipeline import baselines


def _definition(history_labels, history_mask, items, train_items, train_labels, h):
    """The baselines by their definition, row by row."""
    mu = sum(train_labels) / len(train_labels)
    out = {name: [] for name in baselines.BASELINES}
    for labels, mask, item in zip(history_labels, history_mask, items):
        seen = [lab for lab, m in list(zip(labels, mask))[:h] if m]
        user = (sum(seen) + 1) / (len(seen) + 2)
        rows = [lab for it, lab in zip(train_items, train_labels) if it == item]
        item_rate = (sum(rows) + 5 * mu) / (len(rows) + 5)
        out[baselines.BASELINE_USER_RATE].append(user)
        out[baselines.BASELINE_ITEM_RATE].append(item_rate)
        out[baselines.BASELINE_USER_ITEM_RATE].append(
            math.log(user / (1 - user)) + math.log(item_rate / (1 - item_rate)))
    return out


def test_baseline_scores_follow_the_definition():
    history_labels = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0]])
    history_mask = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]])
    items = np.array(["a", "b", "new", "a"])
    train_items = np.array(["a", "a", "a", "b", "c"])
    train_labels = np.array([1, 1, 0, 0, 1])
    got = baselines.baseline_scores(history_labels, history_mask, items, train_items, train_labels,
                                    history_length=3)
    mu = 3 / 5
    # row 0: the first 3 history labels only (H = 3): 2 positives of 3
    assert got[baselines.BASELINE_USER_RATE][0] == pytest.approx(3 / 5)
    assert got[baselines.BASELINE_USER_RATE][1] == pytest.approx(1 / 2)  # no history
    assert got[baselines.BASELINE_ITEM_RATE][0] == pytest.approx((2 + 5 * mu) / (3 + 5))
    assert got[baselines.BASELINE_ITEM_RATE][1] == pytest.approx((0 + 5 * mu) / (1 + 5))
    assert got[baselines.BASELINE_ITEM_RATE][2] == pytest.approx(mu)  # a new item gets mu
    want = _definition(history_labels, history_mask, items, train_items, train_labels, 3)
    for name in baselines.BASELINES:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12)


def test_baseline_scores_on_random_fingerprints_match_the_definition():
    rng = np.random.default_rng(3)
    n, h, big = 300, 6, 2 ** 61
    lengths = rng.integers(0, h + 1, n)
    mask = (np.arange(h)[None, :] < lengths[:, None]).astype(np.int64)
    labels = rng.integers(0, 2, (n, h)) * mask
    pool = rng.integers(0, big, 40)
    train_items = rng.choice(pool[:30], 500)
    train_labels = rng.integers(0, 2, 500)
    items = rng.choice(pool, n)  # some never in train
    got = baselines.baseline_scores(labels, mask, items, train_items, train_labels,
                                    history_length=4)
    want = _definition(labels, mask, items, train_items, train_labels, 4)
    for name in baselines.BASELINES:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12)


def test_baseline_scores_reject_bad_shapes_and_an_empty_train_split():
    with pytest.raises(ValueError, match="same"):
        baselines.baseline_scores(np.zeros((2, 3)), np.zeros((2, 2)), [1, 2], [1], [1])
    with pytest.raises(ValueError, match="item ids"):
        baselines.baseline_scores(np.zeros((2, 3)), np.zeros((2, 3)), [1], [1], [1])
    with pytest.raises(ValueError, match="empty"):
        baselines.baseline_scores(np.zeros((1, 3)), np.zeros((1, 3)), [1], [], [])


def test_slice_masks_and_aucs():
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    scores = np.array([.9, .1, .8, .2, .3, .7, .6, .4])
    is_new_item = np.array([0, 0, 0, 0, 1, 1, 0, 0])
    is_tail = np.array([1, 1, 0, 0, 0, 0, 1, 1])
    is_new_user = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    masks = baselines.slice_masks(is_new_item, is_tail, is_new_user)
    aucs = baselines.slice_aucs(labels, scores, masks)
    assert tuple(aucs) == baselines.SLICE_AUC_KEYS
    assert aucs["auc_overall"] == pytest.approx(13 / 16)
    assert aucs["auc_new_items"] == 0.0 and aucs["auc_existing_items"] == 1.0
    assert aucs["auc_tail"] == 1.0
    assert aucs["auc_new_users"] == pytest.approx(3 / 4)  # rows 0, 1, 4, 5
    assert aucs["auc_warm_users"] == 1.0
    assert baselines.slice_counts(masks) == {
        "num_eval": 8, "num_new_items": 2, "num_existing_items": 6, "num_tail": 4,
        "num_new_users": 4, "num_warm_users": 4}

    # slices without their flag are None; one-class slices too
    only = baselines.slice_aucs(labels, scores, baselines.slice_masks(is_new_item))
    assert only["auc_tail"] is None and only["auc_new_users"] is None
    assert baselines.slice_counts(baselines.slice_masks(is_new_item))["num_warm_users"] is None
    assert baselines.exact_auc(np.array([1, 1]), np.array([.1, .2])) is None
    assert baselines.exact_auc(np.array([]), np.array([])) is None
    with pytest.raises(ValueError, match="rows"):
        baselines.slice_masks(is_new_item, is_new_user=np.array([0, 1]))


def test_baseline_metrics_has_every_slice_of_every_baseline():
    rng = np.random.default_rng(0)
    n = 200
    labels = rng.integers(0, 2, n)
    scores = baselines.baseline_scores(rng.integers(0, 2, (n, 5)), np.ones((n, 5)),
                                       rng.integers(0, 20, n), rng.integers(0, 15, 400),
                                       rng.integers(0, 2, 400))
    masks = baselines.slice_masks(rng.integers(0, 2, n), rng.integers(0, 2, n),
                                  rng.integers(0, 2, n))
    m = baselines.baseline_metrics(labels, scores, masks)
    assert tuple(m) == baselines.BASELINES
    for aucs in m.values():
        assert tuple(aucs) == baselines.BASELINE_AUC_KEYS
        assert all(0.0 <= v <= 1.0 for v in aucs.values())
    # the log-odds sum orders rows as the product of the two odds does
    user_item = scores[baselines.BASELINE_USER_ITEM_RATE]
    u, i = scores[baselines.BASELINE_USER_RATE], scores[baselines.BASELINE_ITEM_RATE]
    np.testing.assert_allclose(np.exp(user_item), u / (1 - u) * i / (1 - i), rtol=1e-9)


def test_flags_from_the_train_split():
    np.testing.assert_array_equal(
        baselines.train_rows(np.array(["a", "a", "b"]), np.array(["a", "b", "c"])), [2, 1, 0])
    np.testing.assert_array_equal(baselines.train_rows(np.array([], np.int64), [5]), [0])
    np.testing.assert_array_equal(
        baselines.tail_from_counts(np.array([0, 0, 0, 1, 0]), np.array([1, 4, 5, 0, 0]), 1, 4),
        [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(
        baselines.new_users(np.array([b"u1", b"u9", b"u0"]), np.array([b"u1", b"u2", b"u1"])),
        [0, 1, 1])
    np.testing.assert_array_equal(baselines.new_users(np.array([3, 4]), np.array([], np.int64)), [1, 1])
