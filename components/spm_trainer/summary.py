"""spm_summary.json: its keys, the per-model statistics and checks, the file's JSON and the run's
log line.

The summary is a public file (the SpmModels artifact's spm_summary.json, which users read): its keys
and values stay as they are. sentencepiece and the standard library only. See docs/spm.md.
"""
from __future__ import annotations

import json
import math
from typing import Dict, Mapping, Sequence

from components.spm_trainer import core, model_proto

# --- top-level keys ---------------------------------------------------------------------------
SPLITS_READ = "splits_read"
NUM_TRAIN_ROWS = "num_train_rows"
NUM_ROWS_ITEM_NOT_IN_CATALOG = "num_rows_item_not_in_catalog"
NUM_SENTENCES = "num_sentences"  # impressions used for training (after sampling)
NUM_DISTINCT_SENTENCES = "num_distinct_sentences"
NUM_SYMBOLS_IN_TRAINING_SENTENCES = "num_symbols_in_training_sentences"
MAX_SENTENCES = "max_sentences"
SAMPLED = "sampled"
SID_LENGTH = "sid_length"
CODEBOOK_SIZE = "codebook_size"
MODEL_TYPE = "model_type"
SEED = "seed"
SYMBOLS_GUARANTEED = "symbols_guaranteed"
MODELS = "models"  # {"<B>": per-budget dict}

# --- per-budget keys (the dicts under MODELS) -------------------------------------------------
REQUESTED_VOCAB_SIZE = "requested_vocab_size"
ACTUAL_VOCAB_SIZE = "actual_vocab_size"
MODEL_FILE = "model_file"
VOCAB_FILE = "vocab_file"
MEAN_PIECES_PER_SENTENCE = "mean_pieces_per_sentence"
SINGLE_PIECE_SENTENCE_SHARE = "single_piece_sentence_share"
MULTI_SYMBOL_PIECE_SHARE = "multi_symbol_piece_share"  # of the vocabulary (<unk> excluded)
MULTI_SYMBOL_TOKEN_SHARE = "multi_symbol_token_share"  # of the pieces of the training sentences
MAX_PIECE_SYMBOLS = "max_piece_symbols"
NUM_SYMBOLS_AS_SINGLE_PIECES = "num_symbols_as_single_pieces"
UNKNOWN_PIECE_SHARE_ON_UNSEEN_SYMBOLS = "unknown_piece_share_on_unseen_symbols"
UNKNOWN_PIECE_SHARE_ON_ALL_SYMBOLS = "unknown_piece_share_on_all_symbols"
NUM_UNSEEN_SYMBOLS = "num_unseen_symbols"
TF_TEXT_MATCHES = "tf_text_matches"


def model_stats(model_bytes: bytes, sentence_counts: Mapping[str, int],
                symbols: Sequence[str]) -> Dict:
    """Per-model figures of spm_summary.json over the (weighted) training sentences."""
    sp = model_proto.processor(model_bytes)
    size = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(size)]
    real = [p for i, p in enumerate(pieces) if not (sp.is_unknown(i) or sp.is_control(i))]
    multi_ids = {i for i, p in enumerate(pieces)
                 if len(p) > 1 and not (sp.is_unknown(i) or sp.is_control(i))}
    sentences = sorted(sentence_counts)
    total = sum(sentence_counts[s] for s in sentences)
    num_pieces = num_multi = single = 0
    for s, ids in zip(sentences, sp.encode(sentences)):
        c = sentence_counts[s]
        num_pieces += c * len(ids)
        num_multi += c * sum(1 for i in ids if i in multi_ids)
        single += c * (len(ids) == 1)
    seen = set("".join(sentences))
    unseen = [s for s in symbols if s not in seen]
    sym_ids = sp.encode(list(symbols))
    as_single = sum(1 for ids in sym_ids if len(ids) == 1 and ids[0] != core.UNK_ID)
    unk_all = sum(1 for ids in sym_ids if core.UNK_ID in ids or not ids)
    unk_unseen = sum(1 for ids in sp.encode(unseen) if core.UNK_ID in ids or not ids)
    return {
        ACTUAL_VOCAB_SIZE: size,
        MEAN_PIECES_PER_SENTENCE: num_pieces / total if total else None,
        SINGLE_PIECE_SENTENCE_SHARE: single / total if total else None,
        MULTI_SYMBOL_PIECE_SHARE: len(multi_ids) / len(real) if real else 0.0,
        MULTI_SYMBOL_TOKEN_SHARE: num_multi / num_pieces if num_pieces else 0.0,
        MAX_PIECE_SYMBOLS: max((len(p) for p in real), default=0),
        NUM_SYMBOLS_AS_SINGLE_PIECES: as_single,
        NUM_UNSEEN_SYMBOLS: len(unseen),
        UNKNOWN_PIECE_SHARE_ON_UNSEEN_SYMBOLS: unk_unseen / len(unseen) if unseen else 0.0,
        UNKNOWN_PIECE_SHARE_ON_ALL_SYMBOLS: unk_all / len(symbols) if symbols else 0.0,
    }


def check_model(stats: Mapping, num_symbols: int) -> None:
    """ValueError unless every symbol is a single non-unknown piece (the guarantee)."""
    if (stats[NUM_SYMBOLS_AS_SINGLE_PIECES] != num_symbols
            or stats[UNKNOWN_PIECE_SHARE_ON_ALL_SYMBOLS] != 0):
        raise ValueError(
            f"SpmTrainer: only {stats[NUM_SYMBOLS_AS_SINGLE_PIECES]:,} of {num_symbols:,} "
            "symbols are single pieces of the trained model "
            f"(unknown share {stats[UNKNOWN_PIECE_SHARE_ON_ALL_SYMBOLS]:.3f})")


def to_json(obj) -> str:
    """JSON with non-finite floats written as null."""
    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, float):
            return x if math.isfinite(x) else None
        return x
    return json.dumps(clean(obj), indent=2, sort_keys=True)


def summary_line(summary: Mapping) -> str:
    """The one log line of a finished run."""
    parts = []
    for key, m in sorted(summary[MODELS].items(), key=lambda kv: int(kv[0])):
        mean = m[MEAN_PIECES_PER_SENTENCE]
        parts.append(f"B={int(key):,}: {m[ACTUAL_VOCAB_SIZE]:,} pieces, "
                     f"{mean:.2f} pieces/SID" if mean is not None else f"B={key}")
    return (f"SpmTrainer ({summary[MODEL_TYPE]}, splits {summary[SPLITS_READ]}): "
            f"{summary[NUM_SENTENCES]:,} impressions ({summary[NUM_DISTINCT_SENTENCES]:,} distinct "
            f"SIDs) of {summary[NUM_TRAIN_ROWS]:,} train rows, "
            f"{summary[NUM_ROWS_ITEM_NOT_IN_CATALOG]:,} skipped (item not in catalog); "
            + "; ".join(parts))


def make_summary(*, sentence_counts: Mapping[str, int], num_train_rows: int,
                 num_rows_item_not_in_catalog: int, max_sentences: int, sid_length: int,
                 codebook_size: int, model_type: str, seed: int,
                 models: Mapping[int, Mapping]) -> Dict:
    """spm_summary.json (per-budget dicts in `models`, keyed by the requested size)."""
    num_sentences = sum(sentence_counts.values())
    return {
        SPLITS_READ: list(core.TRAIN_SPLITS),
        NUM_TRAIN_ROWS: int(num_train_rows),
        NUM_ROWS_ITEM_NOT_IN_CATALOG: int(num_rows_item_not_in_catalog),
        NUM_SENTENCES: int(num_sentences),
        NUM_DISTINCT_SENTENCES: len(sentence_counts),
        NUM_SYMBOLS_IN_TRAINING_SENTENCES: len(set("".join(sentence_counts))),
        MAX_SENTENCES: int(max_sentences),
        SAMPLED: bool(num_train_rows - num_rows_item_not_in_catalog > num_sentences),
        SID_LENGTH: int(sid_length),
        CODEBOOK_SIZE: int(codebook_size),
        MODEL_TYPE: model_type,
        SEED: int(seed),
        SYMBOLS_GUARANTEED: int(sid_length) * int(codebook_size),
        MODELS: {str(int(b)): dict(m) for b, m in sorted(models.items())},
    }
