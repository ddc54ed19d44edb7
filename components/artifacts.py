"""Artifact types of the item side (issue 3). Each is a folder under its URI; the file names are
constants here so producers and consumers agree."""
from tfx.types import artifact


class ContentEncoder(artifact.Artifact):
    """A sentence encoder's files: model.onnx (inputs input_ids, attention_mask, token_type_ids;
    output last_hidden_state) and tokenizer.json. Imported with tfx.dsl.Importer."""
    TYPE_NAME = "ContentEncoder"
    ONNX_FILE = "model.onnx"
    TOKENIZER_FILE = "tokenizer.json"


class ItemCatalog(artifact.Artifact):
    """Every catalog item's Semantic ID and content embedding.

    catalog.tsv      item_id <TAB> row <TAB> semantic_id_str, one line per item, sorted by item_id,
                     rows 0..N-1 (Transform builds its lookups from this file)
    embeddings.npy   float32 [N, E], row-aligned with catalog.tsv
    metadata.json    num_items, num_levels (RQ-VAE levels L), sid_length (L+1 with the breaker,
                     else L), codebook_size, embedding_dim, collision_breaker
    items/           gzipped TFRecord tf.Examples (item_id, semantic_id, semantic_id_str,
                     embedding, item_text) for Beam consumers
    """
    TYPE_NAME = "ItemCatalog"
    CATALOG_TSV = "catalog.tsv"
    EMBEDDINGS_NPY = "embeddings.npy"
    METADATA_JSON = "metadata.json"
    ITEMS_DIR = "items"


class SidReport(artifact.Artifact):
    """sid_report.json / sid_report.md / sid_report.png, copied to results/<dataset>/ by
    pipeline/report.py."""
    TYPE_NAME = "SidReport"
    JSON_FILE = "sid_report.json"
    MD_FILE = "sid_report.md"
    PNG_FILE = "sid_report.png"


class SpmModels(artifact.Artifact):
    """SentencePiece models over Semantic-ID sentences, one per table budget B (SpmTrainer,
    components/spm_trainer; trained on the train split only).

    spm_<B>.model      the serialized SentencePiece model (tensorflow_text.SentencepieceTokenizer
                       (model=<bytes>) loads it); ids: 0 = <unk>, 1..B-1 pieces (fewer when the
                       data hold fewer pieces: see spm_summary.json)
    spm_<B>.vocab      piece <TAB> score per id (for people)
    spm_summary.json   splits_read, counts, and per budget ("models": {"<B>": ...}) the requested
                       and actual vocab size and the piece statistics
    Custom property `vocab_sizes`: the budgets, comma-separated ("512,1024").
    """
    TYPE_NAME = "SpmModels"
    MODEL_FILE_FORMAT = "spm_{vocab_size}.model"
    VOCAB_FILE_FORMAT = "spm_{vocab_size}.vocab"
    SUMMARY_JSON = "spm_summary.json"
    VOCAB_SIZES_PROPERTY = "vocab_sizes"

    @classmethod
    def model_path(cls, uri: str, vocab_size: int) -> str:
        return f"{uri.rstrip('/')}/{cls.MODEL_FILE_FORMAT.format(vocab_size=int(vocab_size))}"

    @classmethod
    def vocab_path(cls, uri: str, vocab_size: int) -> str:
        return f"{uri.rstrip('/')}/{cls.VOCAB_FILE_FORMAT.format(vocab_size=int(vocab_size))}"
