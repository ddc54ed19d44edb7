"""The file names inside the pipeline's artifacts: the layout producers and consumers agree on.

TFX-free on purpose: models/ and serving/ read artifacts through these names without importing
TFX or components/. components/artifacts.py gives the TFX artifact types the same names (each
type inherits its layout class below).
"""

class ContentEncoder:
    """A sentence encoder's files: model.onnx (inputs input_ids, attention_mask, token_type_ids;
    output last_hidden_state) and tokenizer.json."""
    ONNX_FILE = "model.onnx"
    TOKENIZER_FILE = "tokenizer.json"


class ItemCatalog:
    """Every catalog item's Semantic ID and content embedding.

    catalog.tsv      item_id <TAB> row <TAB> semantic_id_str, one line per item, sorted by item_id,
                     rows 0..N-1 (Transform builds its lookups from this file)
    embeddings.npy   float32 [N, E], row-aligned with catalog.tsv
    metadata.json    num_items, num_levels (RQ-VAE levels L), sid_length (L+1 with the breaker,
                     else L), codebook_size, embedding_dim, collision_breaker, and `sid_space`:
                     the mode (train | reuse), the MLMD id, URI and sha256 of the RQ-VAE (and of
                     the reused catalog and SentencePiece models), new items, changed SIDs, drift
    items/           gzipped TFRecord tf.Examples (item_id, semantic_id, semantic_id_str,
                     embedding, item_text) for Beam consumers
    reconstruction_errors.npy  float32 [N], row-aligned: the RQ-VAE's reconstruction error of
                     each item when it was coded (a frozen SID space keeps it: the drift signal)
    """
    CATALOG_TSV = "catalog.tsv"
    EMBEDDINGS_NPY = "embeddings.npy"
    METADATA_JSON = "metadata.json"
    ITEMS_DIR = "items"
    RECONSTRUCTION_ERRORS_NPY = "reconstruction_errors.npy"


class SidReport:
    """sid_report.json / .md / .png, copied to results/<dataset>/ by pipeline/report.py."""
    JSON_FILE = "sid_report.json"
    MD_FILE = "sid_report.md"
    PNG_FILE = "sid_report.png"


class SpmModels:
    """SentencePiece models over Semantic-ID sentences, one per table budget B (SpmTrainer;
    trained on the train split only).

    spm_<B>.model      the serialized SentencePiece model (tensorflow_text.SentencepieceTokenizer
                       (model=<bytes>) loads it); ids: 0 = <unk>, 1..B-1 pieces (fewer when the
                       data hold fewer pieces: see spm_summary.json)
    spm_<B>.vocab      piece <TAB> score per id (for people)
    spm_summary.json   splits_read, counts, and per budget ("models": {"<B>": ...}) the requested
                       and actual vocab size and the piece statistics
    Custom property `vocab_sizes`: the budgets, comma-separated ("512,1024").
    """
    MODEL_FILE_FORMAT = "spm_{vocab_size}.model"
    VOCAB_FILE_FORMAT = "spm_{vocab_size}.vocab"
    SUMMARY_JSON = "spm_summary.json"
    VOCAB_SIZES_PROPERTY = "vocab_sizes"

    @classmethod
    def model_file(cls, vocab_size: int) -> str:
        return cls.MODEL_FILE_FORMAT.format(vocab_size=int(vocab_size))

    @classmethod
    def model_path(cls, uri: str, vocab_size: int) -> str:
        return f"{uri.rstrip('/')}/{cls.model_file(vocab_size)}"

    @classmethod
    def vocab_path(cls, uri: str, vocab_size: int) -> str:
        return f"{uri.rstrip('/')}/{cls.VOCAB_FILE_FORMAT.format(vocab_size=int(vocab_size))}"


class InteractionExamples:
    """What InteractionFeatures writes beside its splits."""
    SPLIT_SUMMARY_FILE = "split_summary.json"
    # split_summary.json's span keys (span mode only): the spans read, the evaluated one, the
    # trained ones, and a warm start's replayed ones with the replay share.
    WINDOW_SPANS = "window_spans"
    EVAL_SPAN = "eval_span"
    TRAIN_SPANS = "train_spans"
    REPLAY_SPANS = "replay_spans"
    REPLAY_SHARE = "replay_share"


class TransformGraph:
    """What CatalogTransform stores beside TFX's transform graph (tft.TFTransformOutput's files)."""
    # The catalog's content embeddings, row-aligned with the catalog rows the graph emits
    # (dense_content's frozen table is built from them).
    CATALOG_EMBEDDINGS_FILE = "catalog_embeddings.npy"
    # The SentencePiece models the graph tokenises with (serving_by_sid tokenises a SID given in
    # the request with the same model).
    SPM_MODELS_DIR = "spm_models"
    # The catalog's metadata.json (its sid_space names the RQ-VAE the SIDs come from: a warm
    # start checks it).
    CATALOG_METADATA_FILE = "catalog_metadata.json"
    # InteractionFeatures' split_summary.json of the examples the graph was analysed on (its
    # spans go into the model's model_config.json).
    SPLIT_SUMMARY_FILE = InteractionExamples.SPLIT_SUMMARY_FILE


class RankingModelArtifact:
    """What the ranking Trainer writes beside Format-Serving in its Model artifact, for the next
    run to warm-start from (the SavedModel wraps Transform and the catalog, so it cannot be the
    restore point): the trainable weights and the config they belong to."""
    WARM_START_DIR = "warm_start"
    WEIGHTS_FILE = "trainable_weights.npz"
    CONFIG_FILE = "model_config.json"
    # random_hash with one row per catalog item: the item ids in row order, so that the next
    # run carries each item's row to wherever its catalog puts it.
    CATALOG_ITEMS_FILE = "catalog_items.txt"


class ServingModel:
    """TF Serving's warm-up file inside an exported SavedModel (replayed before AVAILABLE)."""
    WARMUP_DIR = "assets.extra"
    WARMUP_FILE = "tf_serving_warmup_requests"
