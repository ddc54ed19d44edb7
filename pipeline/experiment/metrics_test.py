"""The experiment's metrics: exact AUCs by slice, training interaction counts, TFMA's bucketing
bound (no pipeline; tests/experiment_test.py checks them against the Evaluator)."""
import numpy as np
import pytest

from pipeline import baselines
from pipeline.experiment import metrics


def test_slice_metrics_exact_auc_and_tail():
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    scores = np.array([.9, .1, .8, .2, .3, .7, .6, .4])
    is_new = np.array([0, 0, 0, 0, 1, 1, 0, 0])
    counts = np.array([2, 2, 9, 9, 0, 0, 4, 1])
    m = metrics.slice_metrics(labels, scores, is_new, counts)
    assert m["num_eval"] == 8 and m["num_new_items"] == 2 and m["num_existing_items"] == 6
    assert m["num_tail"] == 4  # counts 1..4 among existing items
    assert m["auc_existing_items"] == 1.0
    assert m["auc_new_items"] == 0.0
    assert m["auc_tail"] == 1.0
    assert m["auc_overall"] == pytest.approx(13 / 16)


def test_auc_is_none_for_one_class_or_empty_slices():
    m = metrics.slice_metrics(np.array([1, 1, 0]), np.array([.5, .4, .3]),
                              np.array([1, 1, 0]), np.array([0, 0, 7]))
    assert m["auc_new_items"] is None and m["auc_existing_items"] is None
    assert m["auc_tail"] is None and m["num_tail"] == 0
    assert m["auc_overall"] == 1.0


def test_interaction_counts_by_fingerprint():
    """The experiment counts train rows per item fingerprint with baselines.train_rows."""
    got = baselines.train_rows(np.array([5, 3, 5, 2 ** 61, 5]),
                               np.array([5, 3, 4, 2 ** 61, 0, 2 ** 62 - 1]))
    np.testing.assert_array_equal(got, [3, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(baselines.train_rows(np.array([], np.int64), [1]), [0])


def test_bucket_tie_bound_counts_only_close_pairs():
    # well separated scores: no pair can share a TFMA bucket
    assert metrics.bucket_tie_bound(np.array([1, 0]), np.array([.9, .1])) == 0.0
    # one positive/negative pair closer than a bucket: half of the single pair
    assert metrics.bucket_tie_bound(np.array([1, 0]), np.array([.5, .50001])) == 0.5
    assert metrics.bucket_tie_bound(np.array([1, 1]), np.array([.5, .6])) is None


def test_tail_from_the_flag_equals_the_count_based_tail_and_user_slices():
    rng = np.random.default_rng(1)
    n = 400
    labels = rng.integers(0, 2, n)
    scores = rng.random(n)
    is_new = rng.integers(0, 2, n)
    counts = np.where(is_new == 1, 0, rng.integers(1, 9, n))
    is_tail = ((is_new == 0) & (counts >= 1) & (counts <= 4)).astype(np.int64)
    is_new_user = rng.integers(0, 2, n)
    by_counts = metrics.slice_metrics(labels, scores, is_new, counts)
    by_flag = metrics.slice_metrics(labels, scores, is_new, is_tail_item=is_tail,
                                    is_new_user=is_new_user)
    assert by_flag["auc_tail"] == by_counts["auc_tail"] and by_flag["num_tail"] == by_counts["num_tail"]
    assert "auc_new_users" not in by_counts
    assert by_flag["num_new_users"] + by_flag["num_warm_users"] == n
    assert by_flag["auc_new_users"] == metrics.exact_auc(labels[is_new_user == 1],
                                                         scores[is_new_user == 1])
    # the flag wins over the counts when both are given
    assert metrics.slice_metrics(labels, scores, is_new, np.zeros(n),
                                 is_tail_item=is_tail)["num_tail"] == int(is_tail.sum())
    assert metrics.AUC_KEYS[:4] == ("auc_overall", "auc_new_items", "auc_existing_items",
                                    "auc_tail")
