"""Transform's `preprocessing_fn`: raw interaction features -> the ids the ranking model embeds.

Runs inside the Transform graph, so training, TFMA and the exported serving signatures apply
exactly the same code. Options come from Transform's `custom_config` (a dict built from the
RunConfig by pipeline/pipeline.py).
"""
from typing import Any, Dict

import tensorflow as tf

from models.ranking.catalog_lookup import CatalogLookup
from pipeline import features

# custom_config keys
HISTORY_LENGTH = "history_length"
ITEM_TABLE_SIZE = "item_table_size"
USER_HASH_BUCKETS = "user_hash_buckets"
# Set by components/transform's executor from the `catalog` input channel (an ItemCatalog URI).
CATALOG_DIR = "catalog_dir"


def _dense_scalar(x) -> tf.Tensor:
    """A [batch, 1] (or sparse) scalar feature as a [batch] tensor."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(x)
    return tf.reshape(x, [-1])


def _ids_as_strings(x: tf.Tensor) -> tf.Tensor:
    # Ids are strings by contract; tolerate an integer column from a foreign source.
    return x if x.dtype == tf.string else tf.strings.as_string(x)


def pad_history(history, history_labels, history_length: int):
    """Variable-length history (sparse or ragged) -> dense [batch, H] ids, labels and mask.

    The history is most recent first, so truncating keeps the latest H items.
    """
    def to_ragged(x):
        if isinstance(x, tf.SparseTensor):
            return tf.RaggedTensor.from_sparse(x)
        if isinstance(x, tf.RaggedTensor):
            return x
        return tf.RaggedTensor.from_tensor(x)

    hist = to_ragged(history)
    hist = hist.with_values(_ids_as_strings(hist.values))
    labels = to_ragged(history_labels)
    shape = [None, history_length]
    dense_hist = hist.to_tensor(default_value=features.HISTORY_PAD, shape=shape)
    dense_labels = tf.cast(labels.to_tensor(default_value=0, shape=shape), tf.int64)
    lengths = tf.minimum(hist.row_lengths(), history_length)
    mask = tf.sequence_mask(lengths, history_length, dtype=tf.int64)
    return dense_hist, dense_labels * mask, mask


def hash_item_ids(item_ids: tf.Tensor, item_table_size: int) -> tf.Tensor:
    """random_hash: an item id (any shape) into one of `item_table_size` buckets."""
    return tf.strings.to_hash_bucket_fast(item_ids, item_table_size)


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
    history_length = int(custom_config[HISTORY_LENGTH])
    item_table_size = int(custom_config[ITEM_TABLE_SIZE])
    user_buckets = int(custom_config[USER_HASH_BUCKETS])

    outputs = {}
    user_id = _ids_as_strings(_dense_scalar(inputs[features.USER_ID]))
    item_id = _ids_as_strings(_dense_scalar(inputs[features.ITEM_ID]))
    history, history_labels, history_mask = pad_history(
        inputs[features.HISTORY], inputs[features.HISTORY_LABELS], history_length)

    outputs[features.USER_ID_HASHED] = tf.strings.to_hash_bucket_fast(user_id, user_buckets)
    outputs[features.ITEM_ID_HASHED] = hash_item_ids(item_id, item_table_size)
    # History items are hashed exactly as the candidate; padding is hidden by the mask.
    outputs[features.HISTORY_HASHED] = hash_item_ids(history, item_table_size)
    outputs[features.HISTORY_LABELS_DENSE] = history_labels
    outputs[features.HISTORY_MASK] = history_mask

    catalog_dir = custom_config.get(CATALOG_DIR)
    if catalog_dir:
        # Semantic IDs and catalog rows of the candidate and of every history item.
        lookup = CatalogLookup(catalog_dir)
        outputs[features.ITEM_CATALOG_ROW] = lookup.rows(item_id)
        outputs[features.HISTORY_CATALOG_ROW] = lookup.rows(history)
        outputs[features.ITEM_SID] = lookup.semantic_ids(item_id)
        outputs[features.HISTORY_SID] = lookup.semantic_ids(history)

    if features.LABEL in inputs:  # absent at serving time
        outputs[features.transformed_name(features.LABEL)] = tf.cast(
            _dense_scalar(inputs[features.LABEL]), tf.int64)
    return outputs
