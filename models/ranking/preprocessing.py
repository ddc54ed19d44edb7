"""Transform's `preprocessing_fn`: raw interaction features -> the ids the ranking model embeds.

Runs inside the Transform graph, so training, TFMA and the exported serving signatures apply
exactly the same code. Options come from Transform's `custom_config` (a dict built from the
RunConfig by pipeline/pipeline.py).
"""
from typing import Any, Dict

import tensorflow as tf

from models.sid import tf_ops
from models.ranking.catalog_lookup import CatalogLookup
from schemas import artifact_layout, features

# custom_config keys
HISTORY_LENGTH = "history_length"
USER_HASH_BUCKETS = "user_hash_buckets"
# Set by components/transform's executor from its input channels: an ItemCatalog URI and an
# SpmModels URI (SentencePiece models for the budgets in SPM_BUDGETS).
CATALOG_DIR = "catalog_dir"
SPM_DIR = "spm_dir"
SPM_BUDGETS = "spm_budgets"

# Item ids are fingerprinted into this many buckets (~collision-free); representations take the
# fingerprint modulo their table budget, so one Transform output serves every budget.
FINGERPRINT_BUCKETS = 2 ** 62


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


def fingerprint_item_ids(item_ids: tf.Tensor) -> tf.Tensor:
    """An item id (any shape) -> int64 fingerprint in [0, FINGERPRINT_BUCKETS)."""
    return tf.strings.to_hash_bucket_fast(item_ids, FINGERPRINT_BUCKETS)


def spm_piece_ids(tokenizer, sid_codes: tf.Tensor, codebook_size: int) -> tf.Tensor:
    """SID codes [..., S] -> SentencePiece piece ids [..., S] (int64, padded with -1; an item
    outside the catalog has no pieces). A SID never has more pieces than codes."""
    sid_length = sid_codes.shape[-1]
    flat = tf.reshape(sid_codes, [-1, sid_length])
    pieces = tf.cast(tokenizer.tokenize(tf_ops.sid_codes_to_sentences(flat, codebook_size)), tf.int64)
    dense = pieces.to_tensor(default_value=-1, shape=[None, sid_length])
    return tf.reshape(dense, tf.shape(sid_codes))


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]) -> Dict[str, tf.Tensor]:
    history_length = int(custom_config[HISTORY_LENGTH])
    user_buckets = int(custom_config[USER_HASH_BUCKETS])

    outputs = {}
    user_id = _ids_as_strings(_dense_scalar(inputs[features.USER_ID]))
    item_id = _ids_as_strings(_dense_scalar(inputs[features.ITEM_ID]))
    history, history_labels, history_mask = pad_history(
        inputs[features.HISTORY], inputs[features.HISTORY_LABELS], history_length)

    outputs[features.USER_ID_HASHED] = tf.strings.to_hash_bucket_fast(user_id, user_buckets)
    # History items get exactly the candidate's inputs; padding is hidden by the mask.
    outputs[features.ITEM_ID_FINGERPRINT] = fingerprint_item_ids(item_id)
    outputs[features.HISTORY_FINGERPRINT] = fingerprint_item_ids(history)
    outputs[features.HISTORY_LABELS_DENSE] = history_labels
    outputs[features.HISTORY_MASK] = history_mask

    catalog_dir = custom_config.get(CATALOG_DIR)
    if catalog_dir:
        # Semantic IDs, catalog rows and SentencePiece pieces of the candidate and of every
        # history item. A batch's history repeats the same items many times over: each distinct
        # id is looked up and tokenised once, then gathered back (same outputs, a fraction of the
        # string work: Transform's cost on MovieLens-1M).
        ids = tf.concat([item_id, tf.reshape(history, [-1])], axis=0)
        distinct, index = tf.unique(ids)
        batch = tf.shape(item_id)[0]

        def per_item(values, *inner: int):
            """[distinct, *inner] -> (the candidates' [batch, *inner], the histories'
            [batch, H, *inner]), static shapes set for Transform's schema."""
            gathered = tf.gather(values, index)
            candidates = tf.ensure_shape(gathered[:batch], [None, *inner])
            return candidates, tf.reshape(gathered[batch:], [-1, history_length, *inner])

        lookup = CatalogLookup(catalog_dir)
        sid_length = lookup.sid_length
        outputs[features.ITEM_CATALOG_ROW], outputs[features.HISTORY_CATALOG_ROW] = per_item(
            lookup.rows(distinct))
        distinct_sid = lookup.semantic_ids(distinct)
        outputs[features.ITEM_SID], outputs[features.HISTORY_SID] = per_item(
            distinct_sid, sid_length)

        spm_dir = custom_config.get(SPM_DIR)
        if spm_dir:
            codebook_size = int(lookup.metadata["codebook_size"])
            for budget in custom_config[SPM_BUDGETS]:
                tokenizer = tf_ops.load_tokenizer(artifact_layout.SpmModels.model_path(spm_dir, budget))
                (outputs[features.item_spm_pieces(budget)],
                 outputs[features.history_spm_pieces(budget)]) = per_item(
                    spm_piece_ids(tokenizer, distinct_sid, codebook_size), sid_length)

    # Absent at serving time (their outputs are then pruned from the Transform layer); the
    # experiment runner slices the transformed eval split by is_new_item, is_new_user and
    # is_tail_item.
    for key in (features.LABEL, features.IS_NEW_ITEM, features.IS_NEW_USER, features.IS_TAIL_ITEM):
        if key in inputs:
            outputs[features.transformed_name(key)] = tf.cast(_dense_scalar(inputs[key]), tf.int64)
    return outputs
