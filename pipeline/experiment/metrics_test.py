"""The experiment's metrics: exact AUCs by slice, training interaction counts, TFMA's bucketing
bound (no pipeline; tests/experiment_test.py checks them against the Evaluator)."""
import numpy as np
import pytest

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
    counts = metrics.count_interactions(np.array([5, 3, 5, 2 ** 61, 5]))
    got = metrics.lookup_counts(counts, np.array([5, 3, 4, 2 ** 61, 0, 2 ** 62 - 1]))
    np.testing.assert_array_equal(got, [3, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(
        metrics.lookup_counts(metrics.count_interactions(np.array([], np.int64)), [1]), [0])


def test_bucket_tie_bound_counts_only_close_pairs():
    # well separated scores: no pair can share a TFMA bucket
    assert metrics.bucket_tie_bound(np.array([1, 0]), np.array([.9, .1])) == 0.0
    # one positive/negative pair closer than a bucket: half of the single pair
    assert metrics.bucket_tie_bound(np.array([1, 0]), np.array([.5, .50001])) == 0.5
    assert metrics.bucket_tie_bound(np.array([1, 1]), np.array([.5, .6])) is None
