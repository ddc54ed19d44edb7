import numpy as np
import tensorflow as tf

from models.ranking import model as model_lib
from models.ranking import trainer_module
from pipeline import features

H = 5


def _batch(n, rng):
    """Synthetic transformed features where the label follows the user's history labels."""
    mask = (rng.random((n, H)) < 0.8).astype(np.int64)
    hist_labels = (rng.random((n, H)) < rng.random((n, 1))).astype(np.int64) * mask
    rate = (hist_labels.sum(1) + 1) / (mask.sum(1) + 2)
    label = (rng.random(n) < rate).astype(np.int64)
    return {
        features.USER_ID_HASHED: rng.integers(0, 50, n),
        features.ITEM_ID_HASHED: rng.integers(0, 100, n),
        features.HISTORY_HASHED: rng.integers(0, 100, (n, H)),
        features.HISTORY_LABELS_DENSE: hist_labels,
        features.HISTORY_MASK: mask,
        features.LABEL: label,
    }


CFG = dict(representation=features.RANDOM_HASH, item_table_size=100, user_hash_buckets=50,
           embedding_dim=8, hidden_units=[16], dropout=0.0, learning_rate=0.01)


def test_history_pooling_splits_by_label_and_ignores_padding():
    emb = tf.constant([[[1.0], [3.0], [100.0]]])
    labels = tf.constant([[1, 0, 1]])
    mask = tf.constant([[1, 1, 0]])
    pos, neg, stats = model_lib.HistoryPooling()(emb, labels, mask)
    np.testing.assert_allclose(pos.numpy(), [[1.0]])
    np.testing.assert_allclose(neg.numpy(), [[3.0]])
    np.testing.assert_allclose(stats.numpy()[0, 2], (1 + 1) / (2 + 2))


def test_model_learns_on_tiny_synthetic_data():
    rng = np.random.default_rng(0)
    data = _batch(2000, rng)
    ds = tf.data.Dataset.from_tensor_slices(data).batch(100)
    model = trainer_module.build_model(CFG)
    hist = model.fit(ds, epochs=4, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert hist.history["auc"][-1] > 0.6
    logits = model(data)
    assert logits.shape == (2000, 1)
