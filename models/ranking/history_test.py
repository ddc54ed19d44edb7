import numpy as np
import tensorflow as tf

from models.ranking.history import HistoryPooling, TargetAttention


def test_history_pooling_splits_by_label_and_ignores_padding():
    emb = tf.constant([[[1.0], [3.0], [100.0]]])
    pos, neg, stats = HistoryPooling()(emb, tf.constant([[1, 0, 1]]), tf.constant([[1, 1, 0]]))
    np.testing.assert_allclose(pos.numpy(), [[1.0]])
    np.testing.assert_allclose(neg.numpy(), [[3.0]])
    np.testing.assert_allclose(stats.numpy()[0, 2], (1 + 1) / (2 + 2))


def test_target_attention_weighs_each_label_over_its_own_items_only():
    tf.keras.utils.set_random_seed(0)
    layer = TargetAttention(4)
    history = tf.constant(np.random.default_rng(0).normal(size=(2, 4, 3)), tf.float32)
    candidate = tf.constant(np.random.default_rng(1).normal(size=(2, 3)), tf.float32)
    labels = tf.constant([[1, 0, 1, 0], [0, 0, 0, 1]])
    mask = tf.constant([[1, 1, 1, 0], [1, 1, 0, 0]])  # row 2: no liked item in the history
    pos, neg = layer(candidate, history, labels, mask)
    # Row 0's liked pool is a convex mix of items 0 and 2; the disliked one is item 1 itself
    # (item 3 is padding).
    np.testing.assert_allclose(neg.numpy()[0], history.numpy()[0, 1], rtol=1e-5)
    w = np.linalg.lstsq(history.numpy()[0, [0, 2]].T, pos.numpy()[0], rcond=None)[0]
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-4)
    assert (w > 0).all()
    np.testing.assert_allclose(pos.numpy()[1], 0.0)  # no liked item: a zero vector


def test_target_attention_depends_on_the_candidate():
    tf.keras.utils.set_random_seed(0)
    layer = TargetAttention(4)
    history = tf.constant(np.random.default_rng(0).normal(size=(1, 3, 3)), tf.float32)
    labels, mask = tf.constant([[1, 1, 1]]), tf.constant([[1, 1, 1]])
    a, _ = layer(history[:, 0], history, labels, mask)
    b, _ = layer(history[:, 2], history, labels, mask)
    assert not np.allclose(a.numpy(), b.numpy())
