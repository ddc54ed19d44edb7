"""The TFRS ranking model: candidate item, user and labelled history -> click logit.

Inputs are Transform outputs (schemas/features.py names): for one configuration, those of
`representations.model_input_keys` (RankingModel.input_keys), and LABEL_KEY for training.

The logit is an MLP, a linear ("wide") path and an additive item prior:
  * history (the paper's "with user history" setting): per label, the mean of the liked and of
    the disliked items and a candidate-aware attention pool of each (models/ranking/history.py);
    the pools enter only through the candidate (products and dot products), beside the user's
    counts, so an item the model knows nothing about (a zero embedding: tables start at zero) is
    scored by the counts alone;
  * item prior: a scalar read from a second instance of the same representation (one column per
    row), so a new item inherits the prior of its SID-prefix family or content neighbourhood
    instead of an untrained hash row's;
  * regularisation: L2 on the rows each table lends a batch (representations.py), dropout, and
    in training "cold-start dropout" of the candidate's item-specific tables.
  * user_rate_offset (with history): the user's smoothed positive rate over the history enters
    as a fixed log-odds offset instead of as learned count features, so an item the model knows
    nothing about is ranked by that rate (the baseline_user_rate of pipeline/baselines.py), and
    by the user-id embedding where the model has one.
Nothing is keyed by item id except through the representation under test; the model reads no
item rates or counts. docs/architecture.md ("The ranking model") says why.
"""
import dataclasses
from typing import Dict, Sequence, Tuple

import tensorflow as tf
import tensorflow_recommenders as tfrs

from models.ranking import representations
from models.ranking.history import HistoryPooling, TargetAttention
from schemas import features

LABEL_KEY = features.transformed_name(features.LABEL)


def _dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(a * b, axis=-1, keepdims=True)


class RankingModel(tfrs.Model):
    def __init__(self, representation: str, options: representations.RepresentationOptions,
                 user_hash_buckets: int, hidden_units: Sequence[int] = (128, 64),
                 dropout: float = 0.2, use_history: bool = True, attention: bool = True,
                 item_prior: bool = True, use_user_id: bool = True, l2: float = 0.0,
                 cold_start_dropout: float = 0.0, user_rate_offset: bool = False):
        super().__init__()
        embedding_dim = options.embedding_dim
        self.use_history = use_history
        self.use_attention = bool(attention) and use_history
        self.use_user_id = bool(use_user_id)
        self.user_rate_offset = bool(user_rate_offset) and use_history
        self.l2 = float(l2)
        self.representation_name = representation
        self.table_budget = int(options.table_budget)
        options = dataclasses.replace(options, l2=float(l2),
                                      cold_start_dropout=float(cold_start_dropout))
        self.item_representation = representations.make_representation(representation, options)
        self.item_prior = None
        if item_prior:
            prior_options = dataclasses.replace(options, embedding_dim=1)
            self.item_prior = representations.make_representation(
                representation, prior_options, layer_name=f"{representation}_prior",
                **self.item_representation.shared_state())
        self.user_embedding = None
        if self.use_user_id:
            self.user_embedding = tf.keras.layers.Embedding(
                user_hash_buckets, embedding_dim,
                embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.05),
                name="user_embedding")
        self.history_pooling = HistoryPooling()
        self.attention = TargetAttention(embedding_dim) if self.use_attention else None
        self.embedding_dropout = tf.keras.layers.Dropout(dropout)
        # Where the history's counts are not MLP inputs (user_rate_offset, or no history at all),
        # every MLP input of the untrained model can be zero (item tables start at zero; so
        # without the user id they all are): with zero biases no ReLU would pass a gradient, and
        # the MLP and the item embeddings would never move, leaving the item prior alone. A small
        # positive bias keeps the units open; a zero candidate still gets one constant output.
        counts_in_mlp = use_history and not self.user_rate_offset
        bias = tf.keras.initializers.Constant(0.0 if counts_in_mlp else 0.1)
        layers = []
        for units in hidden_units:
            layers += [tf.keras.layers.Dense(units, activation="relu", bias_initializer=bias),
                       tf.keras.layers.Dropout(dropout)]
        layers.append(tf.keras.layers.Dense(1, name="logit"))
        self.mlp = tf.keras.Sequential(layers, name="mlp")
        # A linear path for the user's counts and the candidate-history similarities, beside the
        # MLP: the similarities then shape the item embeddings from the first step.
        self.wide = tf.keras.layers.Dense(1, name="wide") if use_history else None
        self.task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")])

    def input_keys(self) -> Tuple[str, ...]:
        """The Transform outputs `call` reads (the label aside)."""
        return representations.model_input_keys(self.representation_name, self.table_budget,
                                                self.use_history, self.use_user_id)

    def _regularise_user(self, user: tf.Tensor, training) -> tf.Tensor:
        """L2 on the user rows a batch reads (the item tables regularise themselves)."""
        if training and self.l2 > 0:
            self.add_loss(self.l2 * tf.reduce_mean(tf.reduce_sum(tf.square(user), axis=-1)))
        return user

    def call(self, inputs: Dict[str, tf.Tensor], training=False) -> tf.Tensor:
        """Returns logits of shape [batch, 1]."""
        candidate = self.item_representation(inputs, role=representations.CANDIDATE,
                                             training=training)
        candidate = self.embedding_dropout(candidate, training=training)
        parts = [candidate]
        if self.user_embedding is not None:
            parts.append(self._regularise_user(
                self.user_embedding(inputs[representations.USER_KEY]), training))
        if self.use_history:
            history = self.item_representation(inputs, role=representations.HISTORY,
                                               training=training)
            labels = inputs[representations.HISTORY_LABELS_KEY]
            mask = inputs[representations.HISTORY_MASK_KEY]
            pos_mean, neg_mean, stats = self.history_pooling(history, labels, mask)
            wide = [_dot(candidate, pos_mean), _dot(candidate, neg_mean)]
            if not self.user_rate_offset:
                wide.insert(0, stats)
            # The pools enter only through the candidate, so an item the model knows nothing about
            # (a zero embedding) is scored by the user's counts alone.
            parts += [candidate * pos_mean, candidate * neg_mean]
            if self.attention is not None:
                pos_att, neg_att = self.attention(candidate, history, labels, mask)
                parts += [candidate * pos_att, candidate * neg_att]
                wide += [_dot(candidate, pos_att), _dot(candidate, neg_att)]
            parts += wide
        logit = self.mlp(tf.concat(parts, axis=1), training=training)
        if self.wide is not None:
            logit = logit + self.wide(tf.concat(wide, axis=1))
        if self.user_rate_offset:
            logit = logit + stats[:, HistoryPooling.LOG_ODDS:HistoryPooling.LOG_ODDS + 1]
        if self.item_prior is not None:
            prior = self.item_prior(inputs, role=representations.CANDIDATE, training=training)
            logit = logit + prior
        return logit

    def compute_loss(self, inputs, training=False):
        labels = inputs[LABEL_KEY]
        logits = self(inputs, training=training)
        return self.task(labels=tf.reshape(tf.cast(labels, tf.float32), [-1, 1]),
                         predictions=logits, training=training)
