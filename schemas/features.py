"""Every feature, file and split name of the pipeline, once.

Schema files, the ExampleGen, InteractionFeatures, Transform, Trainer, Evaluator, serving and
reports all take names from here.
"""

# --- bring-your-own-data files (data/format.py documents them) ---------------------------
ITEMS_FILE = "items.csv"
INTERACTIONS_FILE = "interactions.csv"

# --- raw interaction columns (interactions.csv; ids are strings whatever they look like) --
USER_ID = "user_id"
ITEM_ID = "item_id"
TIMESTAMP = "timestamp"  # int64 seconds since the epoch
LABEL = "label"  # int64 0/1

INTERACTION_COLUMNS = (USER_ID, ITEM_ID, TIMESTAMP, LABEL)

# --- item columns (items.csv) -------------------------------------------------------------
# item_id plus free text fields; an optional precomputed embedding (space-separated floats).
ITEM_EMBEDDING = "embedding"
ITEM_TEXT_FIELDS_DEFAULT = ("title", "year", "genres")

# --- item side (issue 3): ContentEmbedder, RQ-VAE, SemanticIdGen ------------------------
ITEM_TEXT = "item_text"  # the text that was embedded: text fields joined ("title year genres")
# ITEM_EMBEDDING (above) also names the content embedding feature of the embeddings Examples.
SEMANTIC_ID = "semantic_id"  # int64 codes: L RQ-VAE levels + 1 collision-breaker code
SEMANTIC_ID_STR = "semantic_id_str"  # the codes joined with "-", e.g. "12-5-40-0"
SID_SEPARATOR = "-"
# RQ-VAE SavedModel signatures
RQVAE_SERVING_SIGNATURE = "serving_default"  # serialized tf.Examples (RunInference)
RQVAE_ENCODE_SIGNATURE = "encode"  # embedding [batch, E] float32 -> codes
RQVAE_EXAMPLES_INPUT = "examples"
RQVAE_EMBEDDING_INPUT = "embedding"
RQVAE_CODES_OUTPUT = "codes"  # int64 [batch, L]
RQVAE_RECONSTRUCTION_ERROR_OUTPUT = "reconstruction_error"  # float32 [batch]: mean squared error

# --- features InteractionFeatures adds ----------------------------------------------------
HISTORY = "history"  # the user's item ids strictly earlier in time, most recent first
HISTORY_LABELS = "history_labels"  # labels of those interactions, aligned with HISTORY
IS_NEW_ITEM = "is_new_item"  # 1 on validation/eval rows whose item never appears in the train split
IS_NEW_USER = "is_new_user"  # 1 on rows whose user has no row in the train split
IS_TAIL_ITEM = "is_tail_item"  # 1 on rows whose item has TAIL_MIN..TAIL_MAX train rows
# The tail: items with 1 to 4 rows in the train split (bounds inclusive; new items are not tail).
TAIL_MIN_TRAIN_ROWS, TAIL_MAX_TRAIN_ROWS = 1, 4

# Features a serving request carries (the request contract): label and bookkeeping are absent.
SERVING_FEATURES = (USER_ID, ITEM_ID, HISTORY, HISTORY_LABELS)
# Padding value of HISTORY in fixed-length serving requests.
HISTORY_PAD = ""

# --- splits -------------------------------------------------------------------------------
SPLIT_ALL = "all"  # what the validating ExampleGen emits: every accepted interaction
TRAIN = "train"
VALIDATION = "validation"  # end of the train period: early stopping and tuning
EVAL = "eval"  # last part of the timeline: the held-out evaluation period
SPLITS = (TRAIN, VALIDATION, EVAL)

# --- transformed features (Transform outputs; the model reads only these) ------------------
USER_ID_HASHED = "user_id_hashed"
# A 62-bit fingerprint of the item id (budget-independent); random_hash takes it modulo B.
ITEM_ID_FINGERPRINT = "item_id_fingerprint"
HISTORY_FINGERPRINT = "history_fingerprint"
HISTORY_LABELS_DENSE = "history_labels_dense"  # HISTORY_LABELS padded to the history length
HISTORY_MASK = "history_mask"  # 1 where HISTORY holds an item, 0 on padding
# From the ItemCatalog (issue 3), looked up inside the graph; -1 for an id not in the catalog.
ITEM_CATALOG_ROW = "item_catalog_row"  # [batch] row of the candidate in the catalog
HISTORY_CATALOG_ROW = "history_catalog_row"  # [batch, H]
ITEM_SID = "item_sid"  # [batch, S] Semantic ID codes of the candidate (S = sid_length)
HISTORY_SID = "history_sid"  # [batch, H, S]


# SentencePiece piece ids of the candidate's / history's SID sentence, one pair per budget B:
# [batch, S] / [batch, H, S], padded with -1 (issue 4).
def item_spm_pieces(budget: int) -> str:
    return f"item_spm_{int(budget)}"


def history_spm_pieces(budget: int) -> str:
    return f"history_spm_{int(budget)}"


def transformed_name(key: str) -> str:
    """Name of a feature passed through Transform unchanged (label, slice keys)."""
    return key


# --- serving ------------------------------------------------------------------------------
SERVING_DEFAULT_SIGNATURE = "serving_default"  # raw named tensors (the REST contract)
SERVING_TF_EXAMPLE_SIGNATURE = "serving_tf_example"  # serialized tf.Examples (TFMA, BulkInferrer)
# The request contract plus the candidate's SID and content embedding given explicitly: for items
# added to the catalog after the model was exported (their SID from the RQ-VAE's encode signature).
SERVING_BY_SID_SIGNATURE = "serving_by_sid"
CONTENT_EMBEDDING = "content_embedding"  # serving_by_sid input: [batch, E] float32
# SEMANTIC_ID (above) names serving_by_sid's [batch, S] int64 input.
# Transformed-side key serving_by_sid fills: the candidate's content embedding itself.
ITEM_CONTENT_EMBEDDING = "item_content_embedding"
PREDICTION_KEY = "score"  # probability of a positive label
# TF Serving's Classify and Regress (:classify / :regress): one input `inputs` of serialized
# tf.Examples (the features of serving_tf_example).
REGRESS_SIGNATURE = "regress"  # -> {"outputs": score}
CLASSIFY_SIGNATURE = "classify"  # -> {"classes": CLASSIFY_CLASSES, "scores": [1 - score, score]}
CLASSIFY_CLASSES = ("0", "1")

# --- representations (names used everywhere, results.csv included) -------------------------
RANDOM_HASH = "random_hash"
DENSE_CONTENT = "dense_content"
SID_NGRAM_1 = "sid_ngram_1"
SID_NGRAM_2 = "sid_ngram_2"
SID_PREFIX_NGRAM = "sid_prefix_ngram"
SID_SPM = "sid_spm"
REPRESENTATIONS = (RANDOM_HASH, DENSE_CONTENT, SID_NGRAM_1, SID_NGRAM_2, SID_PREFIX_NGRAM, SID_SPM)
SID_REPRESENTATIONS = (SID_NGRAM_1, SID_NGRAM_2, SID_PREFIX_NGRAM, SID_SPM)
