"""Pure logic of ContentEmbedder: item text, text fields, checks, the summary.

Nothing here imports TFX, Beam or TensorFlow; the executor wires these functions into Beam. The
encoder itself (MiniLmEncoder, the encoder folder: prepare_encoder_dir, validate_encoder_dir,
ENCODER_FILES) lives in models/content_encoder.py, shared with serving; model_handler.py runs it
under Beam RunInference.

Rules
-----
Encoder folder and encoding: see models/content_encoder.py (all-MiniLM-L6-v2 int8 ONNX +
  tokenizer.json; mean-pooled, L2-normalised float32 [n, 384]).
Item text: the non-empty values of the text fields, stripped, joined with one space, in the
  order of the text fields ("Toy Story 1995 Animation Children's Comedy").
Text fields: as given (exec property text_fields, a JSON list), else every bytes feature of the
  item examples except item_id, in this fixed order: title, year, genres (those present), then
  the others sorted by name (`resolve_text_fields`). A tf.Example carries no column order, so
  the items.csv file order cannot be recovered here: pass the fields to get another order.
Embeddings: a precomputed `embedding` feature on the items (items.csv's embedding column) is
  used as is and the encoder is not run; otherwise the encoder embeds the item text. Every
  embedding is checked (`check_embedding`): the expected dimension (the precomputed one of the
  first item read, or the encoder's output size) and finite values; a bad one raises a
  ValueError naming the item_id, never a silent embedding.
embedding_summary.json (`make_summary`): num_items, embedding_dim, source ("precomputed" or
  "encoder"), encoder_uri (None for precomputed), text_fields, num_empty_text, seconds.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from schemas import features

# --- exec property keys of the component -------------------------------------------------
TEXT_FIELDS_KEY = "text_fields"  # JSON list of field names; "" = default order (see above)
BATCH_SIZE_KEY = "batch_size"  # texts per bundle handed to the encoder (it buckets by length)
NUM_THREADS_KEY = "num_threads"  # onnxruntime threads per model call; absent: the encoder's
ALLOW_SPINNING_KEY = "allow_spinning"  # 1 / 0: onnxruntime spinning; absent: its default (on)
PARALLEL_CALLS_KEY = "parallel_calls"  # model calls at once per worker process; absent: 1
DEFAULT_BATCH_SIZE = 1024

SUMMARY_FILE = "embedding_summary.json"
SOURCE_PRECOMPUTED = "precomputed"
SOURCE_ENCODER = "encoder"

# Default text field order when none is given (the MovieLens / synthetic items.csv columns).
PREFERRED_TEXT_FIELDS = features.ITEM_TEXT_FIELDS_DEFAULT  # ("title", "year", "genres")


# --- item text and text fields -----------------------------------------------------------------

def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return str(value).strip()


def item_text(record: Mapping[str, Any], text_fields: Sequence[str]) -> str:
    """The non-empty text fields of `record` (str or utf-8 bytes values), stripped and joined
    with one space, in the order of `text_fields`; a field absent from `record` counts as
    empty."""
    return " ".join(t for t in (_as_text(record.get(f)) for f in text_fields) if t)


def parse_text_fields(raw: Any) -> Optional[List[str]]:
    """The text_fields exec property (JSON list string, list, None or "") -> list or None."""
    if raw is None or raw == "" or raw == []:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"ContentEmbedder: text_fields must be a JSON list of field "
                             f"names, got {raw!r}") from e
    if not isinstance(raw, (list, tuple)) or not all(isinstance(f, str) and f for f in raw):
        raise ValueError(f"ContentEmbedder: text_fields must be a list of non-empty field "
                         f"names, got {raw!r}")
    fields = list(raw)
    if len(set(fields)) != len(fields):
        raise ValueError(f"ContentEmbedder: text_fields has duplicates: {fields}")
    reserved = [f for f in fields if f in (features.ITEM_ID, features.ITEM_EMBEDDING)]
    if reserved:
        raise ValueError(f"ContentEmbedder: {reserved} cannot be text fields")
    return fields or None


def encode_text_fields(text_fields: Optional[Sequence[str]]) -> str:
    """list or None -> the text_fields exec property ("" = default order)."""
    fields = parse_text_fields(list(text_fields) if text_fields else None)
    return json.dumps(fields) if fields else ""


def default_text_fields(bytes_features: Iterable[str]) -> List[str]:
    """Every bytes feature except item_id (and embedding): title, year, genres first (those
    present), then the rest sorted by name."""
    names = set(bytes_features) - {features.ITEM_ID, features.ITEM_EMBEDDING}
    first = [f for f in PREFERRED_TEXT_FIELDS if f in names]
    return first + sorted(names - set(first))


def resolve_text_fields(requested: Optional[Sequence[str]],
                        bytes_features: Iterable[str]) -> List[str]:
    """The text fields to join: `requested` (each must be a bytes feature of the items), else
    `default_text_fields`. Raises ValueError naming missing fields, or when none is left."""
    available = set(bytes_features) - {features.ITEM_ID, features.ITEM_EMBEDDING}
    if requested:
        missing = [f for f in requested if f not in available]
        if missing:
            raise ValueError(f"ContentEmbedder: text field(s) {missing} are not text features "
                             f"of the items; available: {sorted(available)}")
        return list(requested)
    fields = default_text_fields(available)
    if not fields:
        raise ValueError("ContentEmbedder: the items have no text feature besides "
                         f"{features.ITEM_ID!r}; items.csv needs a text column (or an "
                         f"{features.ITEM_EMBEDDING!r} column)")
    return fields


# --- checks and summary ------------------------------------------------------------------------

def _id_text(item_id: Any) -> str:
    return item_id.decode("utf-8", "replace") if isinstance(item_id, bytes) else str(item_id)


def check_embedding(item_id: Any, values: Any, expected_dim: int) -> np.ndarray:
    """float32 vector of `values`, or ValueError naming the item for a wrong dimension or a
    non-finite value (NaN, inf, or beyond float32 range)."""
    if isinstance(values, np.ndarray) and values.dtype == np.float32:  # the encoder's: fast path
        vec32 = values.reshape(-1)
        if vec32.shape[0] == expected_dim and np.isfinite(vec32).all():
            return vec32
    vec = np.asarray(values, dtype=np.float64).reshape(-1)
    if vec.shape[0] != expected_dim:
        raise ValueError(f"ContentEmbedder: item {_id_text(item_id)!r}: embedding has "
                         f"dimension {vec.shape[0]}, expected {expected_dim}")
    bad = np.flatnonzero(~np.isfinite(vec) | (np.abs(vec) > np.finfo(np.float32).max))
    if bad.size:
        raise ValueError(f"ContentEmbedder: item {_id_text(item_id)!r}: embedding has "
                         f"{bad.size} non-finite value(s), first at index {bad[0]} "
                         f"({vec[bad[0]]})")
    return vec.astype(np.float32)


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"ContentEmbedder: batch_size must be a positive integer, got "
                         f"{batch_size!r}")
    return int(batch_size)


def check_num_threads(num_threads: Any, name: str = NUM_THREADS_KEY) -> Optional[int]:
    """None (the encoder's default) or a positive integer."""
    if num_threads is None:
        return None
    if (isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer))
            or num_threads < 1):
        raise ValueError(f"ContentEmbedder: {name} must be a positive integer or None, "
                         f"got {num_threads!r}")
    return int(num_threads)


def parse_allow_spinning(value: Any) -> Optional[bool]:
    """The allow_spinning exec property (1 / 0, or None: onnxruntime's default) -> bool / None."""
    if value is None:
        return None
    if value not in (0, 1):
        raise ValueError(f"ContentEmbedder: allow_spinning must be 0, 1 or None, got {value!r}")
    return bool(value)


def make_summary(num_items: int, embedding_dim: int, source: str, encoder_uri: Optional[str],
                 text_fields: Sequence[str], num_empty_text: int, seconds: float
                 ) -> Dict[str, Any]:
    return {"num_items": int(num_items), "embedding_dim": int(embedding_dim), "source": source,
            "encoder_uri": encoder_uri, "text_fields": list(text_fields),
            "num_empty_text": int(num_empty_text), "seconds": round(float(seconds), 3)}


def summary_line(summary: Mapping[str, Any]) -> str:
    """The one log line of a finished run."""
    line = (f"ContentEmbedder: {summary['num_items']:,} items embedded "
            f"({summary['embedding_dim']}-d, {summary['source']}) in {summary['seconds']:.1f}s")
    if summary.get("num_empty_text"):
        line += f"; {summary['num_empty_text']:,} with empty text"
    return line
