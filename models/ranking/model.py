"""The TFRS ranking model: candidate item, user and label-split history -> click logit.

Inputs are Transform outputs (schemas/features.py names): for one configuration, those of
`representations.model_input_keys` (RankingModel.input_keys), and LABEL_KEY for training. The
history is pooled separately over positively and negatively labelled items (the paper's "with
user history" setting), and the candidate is crossed with both pools, so the model can score an
item it has never seen by how it relates to what the user liked and disliked.
"""
from typing import Dict, Sequence, Tuple

import tensorflow as tf
import tensorflow_recommenders as tfrs

from models.ranking import representations
from schemas import features

LABEL_KEY = features.transformed_name(features.LABEL)


def masked_mean(embeddings: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Mean of [batch, H, d] embeddings weighted by [batch, H] 0/1 weights (0 where none)."""
    w = tf.expand_dims(weights, -1)
    total = tf.reduce_sum(embeddings * w, axis=1)
    count = tf.reduce_sum(w, axis=1)
    return tf.math.divide_no_nan(total, count)


class HistoryPooling(tf.keras.layers.Layer):
    """Pools history embeddings by label: [pos mean, neg mean] plus count statistics."""

    # A Beta prior on the user's positive rate, so a user with 1 rated item is not at 0 or 1.
    PRIOR_POSITIVES = 1.0
    PRIOR_TOTAL = 2.0

    def call(self, history_embeddings, labels, mask):
        mask = tf.cast(mask, tf.float32)
        labels = tf.cast(labels, tf.float32)
        pos = mask * labels
        neg = mask * (1.0 - labels)
        n_pos = tf.reduce_sum(pos, axis=1, keepdims=True)
        n_all = tf.reduce_sum(mask, axis=1, keepdims=True)
        rate = (n_pos + self.PRIOR_POSITIVES) / (n_all + self.PRIOR_TOTAL)
        stats = tf.concat([tf.math.log1p(n_pos), tf.math.log1p(n_all - n_pos), rate], axis=1)
        return masked_mean(history_embeddings, pos), masked_mean(history_embeddings, neg), stats


class RankingModel(tfrs.Model):
    def __init__(self, representation: str, options: representations.RepresentationOptions,
                 user_hash_buckets: int, hidden_units: Sequence[int] = (128, 64),
                 dropout: float = 0.2, use_history: bool = True):
        super().__init__()
        embedding_dim = options.embedding_dim
        self.use_history = use_history
        self.representation_name = representation
        self.table_budget = int(options.table_budget)
        self.item_representation = representations.make_representation(representation, options)
        self.user_embedding = tf.keras.layers.Embedding(
            user_hash_buckets, embedding_dim,
            embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.05),
            name="user_embedding")
        self.history_pooling = HistoryPooling()
        layers = []
        for units in hidden_units:
            layers += [tf.keras.layers.Dense(units, activation="relu"),
                       tf.keras.layers.Dropout(dropout)]
        layers.append(tf.keras.layers.Dense(1, name="logit"))
        self.mlp = tf.keras.Sequential(layers, name="mlp")
        self.task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")])

    def input_keys(self) -> Tuple[str, ...]:
        """The Transform outputs `call` reads (the label aside)."""
        return representations.model_input_keys(self.representation_name, self.table_budget,
                                                self.use_history)

    def call(self, inputs: Dict[str, tf.Tensor], training=False) -> tf.Tensor:
        """Returns logits of shape [batch, 1]."""
        candidate = self.item_representation(inputs, role=representations.CANDIDATE)
        user = self.user_embedding(inputs[representations.USER_KEY])
        parts = [candidate, user]
        if self.use_history:
            history = self.item_representation(inputs, role=representations.HISTORY)
            pos_mean, neg_mean, stats = self.history_pooling(
                history, inputs[representations.HISTORY_LABELS_KEY],
                inputs[representations.HISTORY_MASK_KEY])
            parts += [pos_mean, neg_mean, stats, candidate * pos_mean, candidate * neg_mean,
                      tf.reduce_sum(candidate * pos_mean, axis=1, keepdims=True),
                      tf.reduce_sum(candidate * neg_mean, axis=1, keepdims=True)]
        return self.mlp(tf.concat(parts, axis=1), training=training)

    def compute_loss(self, inputs, training=False):
        labels = inputs[LABEL_KEY]
        logits = self(inputs, training=training)
        return self.task(labels=tf.reshape(tf.cast(labels, tf.float32), [-1, 1]),
                         predictions=logits, training=training)
