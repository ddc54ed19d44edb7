"""Item representations: Transform outputs of one item in, one embedding out.

Every representation has the same interface, so the ranking model applies the same one to the
candidate and to every history item:
    rep = make_representation(name, config)
    emb = rep(transformed_features, role)  # role CANDIDATE -> [batch, d]; HISTORY -> [batch, H, d]
Issue 4 adds the Semantic ID representations here.
"""
from typing import Dict

import tensorflow as tf

from pipeline import features

CANDIDATE = "candidate"
HISTORY = "history"


class ItemRepresentation(tf.keras.layers.Layer):
    """Base: maps the transformed features of the candidate or of the history to embeddings."""

    # Table rows this representation uses (reported as the table size in results).
    table_rows: int = 0

    def call(self, inputs: Dict[str, tf.Tensor], role: str = CANDIDATE) -> tf.Tensor:
        raise NotImplementedError


class RandomHash(ItemRepresentation):
    """random_hash: the item id hashed into `num_buckets` rows of one embedding table."""

    def __init__(self, num_buckets: int, embedding_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_buckets = num_buckets
        self.table_rows = num_buckets
        self.table = tf.keras.layers.Embedding(
            num_buckets, embedding_dim,
            embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.05),
            name="item_hash_embedding")

    def call(self, inputs, role=CANDIDATE):
        key = features.ITEM_ID_HASHED if role == CANDIDATE else features.HISTORY_HASHED
        return self.table(inputs[key])

    def get_config(self):
        return {**super().get_config(), "num_buckets": self.num_buckets}


def make_representation(name: str, item_table_size: int, embedding_dim: int) -> ItemRepresentation:
    if name == features.RANDOM_HASH:
        return RandomHash(item_table_size, embedding_dim, name=name)
    raise ValueError(f"unknown representation {name!r}; known: {features.REPRESENTATIONS}")
