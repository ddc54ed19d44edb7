"""Pure logic of SpmTrainer: Semantic IDs as SentencePiece "sentences", training, checks.

Nothing here imports TFX, Beam or TensorFlow (sentencepiece and the standard library only); the
executor wires these functions into Beam, tf_ops.py gives the same sentences inside a TF graph.

The method (Singh et al., RecSys 2024, "SPM" representation)
------------------------------------------------------------
Every Semantic ID code at every level is one *symbol*; an item's SID is the *sentence* of its
symbols. SentencePiece learns a vocabulary of `vocab_size` = the table budget B pieces over the SID
sentences of the training impressions: frequent runs of codes (popular items, busy prefixes)
become one piece, rare items fall back to shorter pieces and, at worst, one piece per code.

Symbols
  symbol(level, code, K) = chr(0xF0000 + level * K + code): one character of Unicode's
  supplementary private-use area A (plane 15, U+F0000..U+FFFFD; the BMP private-use area,
  6,400 characters, is too small for 8 x 2048 codes). level runs over the SID's `sid_length`
  positions: the L RQ-VAE levels, then the collision-breaker level when the breaker is on.
  * Every code, the breaker code included, must lie in [0, K): the breaker level reuses the
    codebook's range of symbols, so a catalog whose max_breaker_code >= K (more than K items on
    one L-code prefix) is rejected with an error (see check_symbol_space).
  * sid_length * K must not exceed 65,534 (plane 15's private-use characters).
Sentences: the symbols of the SID's codes concatenated, no separators (sid_sentence).
Budget rule: vocab_size B must satisfy B >= sid_length * K + 1, i.e. B > sid_length * K: every
  symbol is a piece of its own (below), plus the unknown piece <unk> (id 0); B = sid_length*K + 1
  leaves no room for multi-symbol pieces (one piece per code). Smaller budgets are rejected by
  check_vocab_size (SentencePiece itself would fail with "Vocabulary size is smaller than
  required_chars").
Piece ids: 0 = <unk>, 1..B-1 the pieces; no pad / bos / eos pieces. A catalog symbol never maps
  to 0 (every symbol is a single-character piece), so 0 only appears for characters that are no
  symbol at all. Consumers that need a padding id use B (or -1 / an empty ragged row).

Training (train_spm), verified in the pinned stack (sentencepiece 0.2.3, tensorflow-text 2.16.1)
  * Every symbol is guaranteed a single-character piece by appending each symbol once as a
    sentence of its own to the training input. Measured alternatives (tests/evidence in
    core_test.py and the SpmTrainer report):
      - nothing: a symbol absent from the training impressions tokenises to <unk> (id 0), so a new
        item using it loses that code;
      - user_defined_symbols: never merged into longer pieces (BPE: no multi-symbol piece at
        all); with every character user-defined the unigram trainer aborts
        ("!required_chars_.empty()");
      - required_chars: does NOT add characters absent from the input (they stay <unk>);
      - one extra sentence per symbol: every symbol is a piece (character_coverage=1.0 keeps every
        character seen) and, seen once, it cannot form a multi-symbol piece on its own, while the
        symbols of the impressions merge as without it.
  * Unigram seed pieces are computed here (seed_pieces) and passed as
    `seed_sentencepieces_file`: sentencepiece 0.2.3's built-in seed extraction (byte-level suffix
    array) finds no multi-character candidate in sentences of multi-byte UTF-8 characters whose
    leading bytes agree (all our symbols share their first two bytes), so without the file the
    unigram model has only single symbols whatever the budget. The seeds follow the original
    algorithm: every substring of 2..max_piece_length symbols seen at least twice, score =
    frequency x length, the top `seed_sentencepiece_size`. BPE needs no seeds.
  * Input is fed as TSV "sentence<TAB>count" (input_format="tsv"), one line per distinct
    sentence, sorted: the same vocabulary as repeating the sentences, at the cost of the distinct
    sentences only. The sample of impressions is drawn upstream (deterministic, seeded by hash), so
    input_sentence_size=0 (SentencePiece's own sampler could drop the symbol sentences);
    sentencepiece's random generator is seeded anyway, and num_threads=1 keeps training
    deterministic (same input and seed -> same model bytes).
  * Options: model_type unigram (default) or bpe, split_by_whitespace=False,
    split_by_unicode_script=False, character_coverage=1.0, hard_vocab_limit=False (unigram stops
    below B when the impressions hold too few distinct repeated code runs; BPE stops when no pair
    is left: the real size is reported), normalization_rule_name="identity",
    add_dummy_prefix=False, remove_extra_whitespaces=False, unk_id=0, bos/eos/pad disabled,
    max_sentencepiece_length >= sid_length.
  The real vocabulary size is <= B; it equals B whenever enough distinct repeated runs exist.

How Transform uses the models (components/transform wires it)
  The Transform executor gets the SpmModels artifact URI through an extra input channel and puts
  it in custom_config (as for the catalog); preprocessing_fn reads `<uri>/spm_<B>.model`
  (SpmModels.model_path) with tf.io.gfile while it is traced and builds, per budget B,
      tokenizer = tensorflow_text.SentencepieceTokenizer(model=model_bytes)
      sentences = tf_ops.sid_codes_to_sentences(sid_codes, codebook_size)   # [batch] / [batch, H]
      piece_ids = tf.cast(tokenizer.tokenize(sentences), tf.int64)         # ragged, ids in [1, B)
  (TFT rejects int32 outputs: cast to int64; an unknown item, codes -1, gives the empty sentence
  and no pieces). tensorflow_text gives the same ids as the sentencepiece Python API
  (tokenize_sid_sentences; checked by the executor for every model and recorded in the summary).
"""
from __future__ import annotations

import collections
import hashlib
import io
import json
import math
import os
import tempfile
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from models.sid.symbols import (MAX_SYMBOLS, SYMBOL_BASE, all_symbols, check_symbol_space,  # noqa: F401
                                 is_int,
                                 piece_symbols, sentence_codes, sid_sentence, symbol,
                                 symbol_level_code)
from schemas import features

# --- channel keys and exec property keys of the component -----------------------------------
EXAMPLES_KEY = "examples"
CATALOG_KEY = "catalog"
SPM_MODELS_KEY = "spm_models"
VOCAB_SIZES_KEY = "vocab_sizes"  # JSON list of ints (exec property)
MODEL_TYPE_KEY = "model_type"
SEED_KEY = "seed"
MAX_SENTENCES_KEY = "max_sentences"

MODEL_TYPES = ("unigram", "bpe")
TRAIN_SPLITS = (features.TRAIN,)  # the only split SpmTrainer reads

# --- symbols ---------------------------------------------------------------------------------
UNK_ID = 0
UNK_PIECE = "<unk>"
SEED_SENTENCEPIECE_SIZE = 1_000_000  # sentencepiece's default
DEFAULT_MAX_PIECE_LENGTH = 16  # sentencepiece's default max_sentencepiece_length

# --- spm_summary.json keys ------------------------------------------------------------------
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
# per budget
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

Codes = Tuple[int, ...]


def min_vocab_size(num_symbols: int) -> int:
    """The smallest budget: every symbol plus <unk>."""
    return num_symbols + 1


def check_vocab_size(vocab_size: int, num_symbols: int) -> None:
    """ValueError unless vocab_size >= num_symbols + 1 (the budget rule of the docstring)."""
    if not is_int(vocab_size) or vocab_size < min_vocab_size(num_symbols):
        raise ValueError(
            f"SpmTrainer: vocab size {vocab_size!r} is too small: every one of the "
            f"{num_symbols:,} (level, code) symbols (sid_length x codebook_size) needs its own "
            f"piece, plus <unk>, so the budget must be at least {min_vocab_size(num_symbols):,}")


def validate_params(vocab_sizes: Sequence[int], model_type: str, seed: int,
                    max_sentences: int) -> List[int]:
    """Sorted distinct budgets; ValueError on bad parameters (catalog-independent checks)."""
    if isinstance(vocab_sizes, (str, bytes)) or not vocab_sizes:
        raise ValueError(f"SpmTrainer: vocab_sizes must be a non-empty list of ints, got "
                         f"{vocab_sizes!r}")
    sizes = list(vocab_sizes)
    for v in sizes:
        if not is_int(v) or v < 2:
            raise ValueError(f"SpmTrainer: every vocab size must be an integer >= 2, got {v!r}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"SpmTrainer: repeated vocab sizes in {sizes}")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"SpmTrainer: model_type must be one of {MODEL_TYPES}, got "
                         f"{model_type!r}")
    if not is_int(seed):
        raise ValueError(f"SpmTrainer: seed must be an integer, got {seed!r}")
    if not is_int(max_sentences) or max_sentences < 1:
        raise ValueError(f"SpmTrainer: max_sentences must be a positive integer, got "
                         f"{max_sentences!r}")
    return sorted(sizes)


# --- catalog -------------------------------------------------------------------------------------

def parse_catalog_line(line: Union[str, bytes], sid_length: int) -> Tuple[bytes, Codes]:
    """One catalog.tsv line (item_id <TAB> row <TAB> "12-5-40-0") -> (item_id, codes)."""
    raw = line if isinstance(line, bytes) else line.encode("utf-8")
    raw = raw.rstrip(b"\r\n")
    parts = raw.split(b"\t")
    if len(parts) != 3:
        raise ValueError(f"SpmTrainer: catalog.tsv line {raw!r} does not have 3 tab-separated "
                         "fields (item_id, row, semantic_id_str)")
    item_id, _, sid = parts
    try:
        codes = tuple(int(c) for c in sid.decode("utf-8").split(features.SID_SEPARATOR))
    except ValueError:
        raise ValueError(f"SpmTrainer: bad Semantic ID {sid!r} of item {item_id!r} in "
                         "catalog.tsv") from None
    if len(codes) != sid_length:
        raise ValueError(f"SpmTrainer: item {item_id!r} has a Semantic ID of {len(codes)} codes "
                         f"in catalog.tsv, the catalog's sid_length is {sid_length}")
    return item_id, codes


def parse_catalog_tsv(text: Union[str, bytes], sid_length: int) -> Dict[bytes, Codes]:
    """catalog.tsv -> {item_id: codes}."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    return dict(parse_catalog_line(line, sid_length) for line in raw.splitlines() if line)


def catalog_sentences(catalog: Mapping[bytes, Sequence[int]],
                      codebook_size: int) -> Dict[bytes, str]:
    """{item_id: SID sentence}."""
    return {item_id: sid_sentence(codes, codebook_size) for item_id, codes in catalog.items()}


# --- sampling ------------------------------------------------------------------------------------

def sample_key(seed: int, record: bytes) -> int:
    """A 64-bit hash of (seed, serialized impression): the impressions with the smallest keys
    are the deterministic sample (same rows + seed -> same sample on any runner)."""
    h = hashlib.blake2b(record, digest_size=8, key=str(int(seed)).encode("ascii"))
    return int.from_bytes(h.digest(), "big")


# --- training ------------------------------------------------------------------------------------

def _sentence_counts(sentences: Union[Mapping[str, int], Iterable[str]]) -> Dict[str, int]:
    if isinstance(sentences, Mapping):
        counts = {s: int(c) for s, c in sentences.items() if int(c) > 0}
    else:
        counts = collections.Counter(sentences)
    for s in counts:
        if not s or "\t" in s or "\n" in s or "\r" in s:
            raise ValueError(f"SpmTrainer: bad training sentence {s!r} (empty, or holds a tab "
                             "or newline)")
    return dict(counts)


def seed_pieces(sentence_counts: Mapping[str, int], max_piece_length: int,
                max_seeds: int = SEED_SENTENCEPIECE_SIZE) -> List[Tuple[str, int]]:
    """Unigram seed pieces: every substring of 2..max_piece_length characters whose total
    frequency is >= 2, scored frequency x length, the best max_seeds (ties by piece)."""
    freq: Dict[str, int] = collections.defaultdict(int)
    for s, c in sentence_counts.items():
        n = len(s)
        for i in range(n):
            for j in range(i + 2, min(n, i + max_piece_length) + 1):
                freq[s[i:j]] += c
    scored = [(p, f * len(p)) for p, f in freq.items() if f >= 2]
    scored.sort(key=lambda ps: (-ps[1], ps[0]))
    return scored[:max_seeds]


def train_spm(sentences: Union[Mapping[str, int], Iterable[str]], vocab_size: int,
              symbols: Sequence[str], model_prefix: Optional[str] = None, seed: int = 0,
              model_type: str = "unigram", num_threads: int = 1) -> bytes:
    """Trains SentencePiece over SID sentences (an iterable, or a mapping sentence -> count)
    plus each of `symbols` once as its own sentence; returns the .model bytes (also written to
    `<model_prefix>.model` and `.vocab`, local paths, when model_prefix is given).

    ValueError when vocab_size < len(symbols) + 1 or a sentence holds a character that is not in
    `symbols`.
    """
    import sentencepiece as spm  # pylint: disable=import-outside-toplevel

    if model_type not in MODEL_TYPES:
        raise ValueError(f"SpmTrainer: model_type must be one of {MODEL_TYPES}, got "
                         f"{model_type!r}")
    symbols = list(symbols)
    symbol_set = set(symbols)
    if len(symbol_set) != len(symbols) or any(len(s) != 1 for s in symbols):
        raise ValueError("SpmTrainer: symbols must be distinct single characters")
    check_vocab_size(vocab_size, len(symbols))
    counts = _sentence_counts(sentences)
    for s in counts:
        stray = set(s) - symbol_set
        if stray:
            raise ValueError(f"SpmTrainer: training sentence {s!r} holds characters that are "
                             f"not symbols: {sorted(stray)!r}")
    max_len = max([DEFAULT_MAX_PIECE_LENGTH] + [len(s) for s in counts])
    # the impressions, then every symbol once: a single-character piece each (module docstring)
    inputs = dict(counts)
    for sym in symbols:
        inputs[sym] = inputs.get(sym, 0) + 1
    lines = [f"{s}\t{c}" for s, c in sorted(inputs.items())]

    spm.set_random_generator_seed(int(seed) & 0xFFFFFFFF)
    writer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="spm_trainer_") as tmp:
        kwargs = dict(
            sentence_iterator=iter(lines), model_writer=writer, input_format="tsv",
            model_type=model_type, vocab_size=int(vocab_size), hard_vocab_limit=False,
            character_coverage=1.0, split_by_whitespace=False, split_by_unicode_script=False,
            split_by_number=False, split_digits=False, normalization_rule_name="identity",
            add_dummy_prefix=False, remove_extra_whitespaces=False, byte_fallback=False,
            unk_id=UNK_ID, bos_id=-1, eos_id=-1, pad_id=-1, unk_piece=UNK_PIECE,
            input_sentence_size=0, shuffle_input_sentence=False, num_threads=int(num_threads),
            max_sentencepiece_length=max_len, max_sentence_length=max(4192, 4 * max_len + 16),
            minloglevel=2)
        if model_type == "unigram":
            seeds_path = os.path.join(tmp, "seeds.tsv")
            with open(seeds_path, "w", encoding="utf-8") as f:
                for piece, score in seed_pieces(counts, max_len):
                    f.write(f"{piece}\t{score}\n")
            kwargs.update(seed_sentencepieces_file=seeds_path,
                          seed_sentencepiece_size=SEED_SENTENCEPIECE_SIZE)
        spm.SentencePieceTrainer.train(**kwargs)
    model = writer.getvalue()
    if model_type == "unigram":  # the temporary seed file's path would make the bytes vary
        model = _drop_trainer_spec_string(model, seeds_path)
    if model_prefix:
        with open(model_prefix + ".model", "wb") as f:
            f.write(model)
        with open(model_prefix + ".vocab", "w", encoding="utf-8") as f:
            f.write(vocab_text(model))
    return model


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(buf: bytes):
    """(field number, wire type, raw bytes of the whole field, payload) of a serialized proto."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
            payload = None
        elif wire == 1:
            pos += 8
            payload = None
        elif wire == 2:
            length, pos = _varint(buf, pos)
            payload = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            payload = None
        else:
            raise ValueError(f"SpmTrainer: unexpected wire type {wire} in the model proto")
        yield number, wire, buf[start:pos], payload


_TRAINER_SPEC_FIELD = 2  # ModelProto.trainer_spec (sentencepiece_model.proto)


def _drop_trainer_spec_string(model: bytes, value: str) -> bytes:
    """The model with the trainer_spec string field equal to `value` removed (the
    sentencepiece_model_pb2 module needs a newer protobuf than the pinned stack's, hence the
    wire-format edit; the tokeniser ignores trainer_spec)."""
    target = value.encode("utf-8")
    out = bytearray()
    for number, wire, raw, payload in _fields(model):
        if number == _TRAINER_SPEC_FIELD and wire == 2:
            spec = b"".join(r for _, w, r, p in _fields(payload) if not (w == 2 and p == target))
            raw = raw[:len(_encode_varint((number << 3) | wire))] + _encode_varint(len(spec)) + spec
        out += raw
    return bytes(out)


def _processor(model_bytes: bytes):
    import sentencepiece as spm  # pylint: disable=import-outside-toplevel
    return spm.SentencePieceProcessor(model_proto=model_bytes)


def vocab_text(model_bytes: bytes) -> str:
    """The .vocab file sentencepiece writes: `piece <TAB> score` per id."""
    sp = _processor(model_bytes)
    return "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n"
                   for i in range(sp.get_piece_size()))


def vocab_pieces(model_bytes: bytes) -> List[str]:
    sp = _processor(model_bytes)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def tokenize_sid_sentences(model_bytes: bytes, sentences: Sequence[str]) -> List[List[int]]:
    """Piece ids of each sentence with the sentencepiece Python API (tf_ops.tf_tokenize gives the
    same ids with tensorflow_text, as Transform does)."""
    sp = _processor(model_bytes)
    return [list(ids) for ids in sp.encode(list(sentences))]


def detokenize(model_bytes: bytes, ids: Sequence[Sequence[int]]) -> List[str]:
    sp = _processor(model_bytes)
    return [sp.decode(list(x)) for x in ids]


# --- summary ---------------------------------------------------------------------------------------

def model_stats(model_bytes: bytes, sentence_counts: Mapping[str, int],
                symbols: Sequence[str]) -> Dict:
    """Per-model figures of spm_summary.json over the (weighted) training sentences."""
    sp = _processor(model_bytes)
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
    as_single = sum(1 for ids in sym_ids if len(ids) == 1 and ids[0] != UNK_ID)
    unk_all = sum(1 for ids in sym_ids if UNK_ID in ids or not ids)
    unk_unseen = sum(1 for ids in sp.encode(unseen) if UNK_ID in ids or not ids)
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
        SPLITS_READ: list(TRAIN_SPLITS),
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
