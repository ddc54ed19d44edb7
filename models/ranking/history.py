"""Pooling of the user's labelled history into features of the candidate.

HistoryPooling: per label, the mean history embedding and the counts (how many items the user
liked and disliked). TargetAttention: per label, a softmax over the history items weighted by
their similarity to the candidate, so the pooled vector says which liked (or disliked) items the
candidate resembles, not only how many there were.
"""
import tensorflow as tf


def masked_mean(embeddings: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Mean of [batch, H, d] embeddings weighted by [batch, H] 0/1 weights (0 where none)."""
    w = tf.expand_dims(weights, -1)
    total = tf.reduce_sum(embeddings * w, axis=1)
    count = tf.reduce_sum(w, axis=1)
    return tf.math.divide_no_nan(total, count)


def label_masks(labels: tf.Tensor, mask: tf.Tensor):
    """[batch, H] float 0/1 masks of the liked and of the disliked history items."""
    mask = tf.cast(mask, tf.float32)
    labels = tf.cast(labels, tf.float32)
    return mask * labels, mask * (1.0 - labels)


class HistoryPooling(tf.keras.layers.Layer):
    """Pools history embeddings by label: [pos mean, neg mean] plus count statistics."""

    # A Beta prior on the user's positive rate, so a user with 1 rated item is not at 0 or 1.
    PRIOR_POSITIVES = 1.0
    PRIOR_TOTAL = 2.0
    LOG_ODDS = 3  # the column of `stats` that holds the smoothed rate's log-odds

    def call(self, history_embeddings, labels, mask):
        pos, neg = label_masks(labels, mask)
        n_pos = tf.reduce_sum(pos, axis=1, keepdims=True)
        n_neg = tf.reduce_sum(neg, axis=1, keepdims=True)
        rate = (n_pos + self.PRIOR_POSITIVES) / (n_pos + n_neg + self.PRIOR_TOTAL)
        log_odds = tf.math.log(rate) - tf.math.log1p(-rate)
        stats = tf.concat([tf.math.log1p(n_pos), tf.math.log1p(n_neg), rate, log_odds], axis=1)
        return masked_mean(history_embeddings, pos), masked_mean(history_embeddings, neg), stats


class TargetAttention(tf.keras.layers.Layer):
    """Candidate-aware pooling of the history, one softmax over the liked items and one over the
    disliked ones (DIN-style, with scaled dot-product scores).

    score_j = <W_q c, W_k h_j> / sqrt(d) per history item j; padding and the other label get no
    weight; a user with no item of a label gets a zero vector for it."""

    def __init__(self, attention_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.attention_dim = int(attention_dim)
        self.query = tf.keras.layers.Dense(self.attention_dim, use_bias=False, name="query")
        self.key = tf.keras.layers.Dense(self.attention_dim, use_bias=False, name="key")

    def _pool(self, scores, values, weights):
        scores = tf.where(weights > 0, scores, tf.fill(tf.shape(scores), -1e9))
        attention = tf.nn.softmax(scores, axis=1) * weights  # all-zero when no item of the label
        return tf.einsum("bh,bhd->bd", attention, values)

    def call(self, candidate, history_embeddings, labels, mask):
        pos, neg = label_masks(labels, mask)
        q = self.query(candidate)  # [batch, a]
        k = self.key(history_embeddings)  # [batch, H, a]
        scores = tf.einsum("ba,bha->bh", q, k) / tf.sqrt(float(self.attention_dim))
        return (self._pool(scores, history_embeddings, pos),
                self._pool(scores, history_embeddings, neg))
