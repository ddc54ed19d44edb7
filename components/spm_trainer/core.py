"""SpmTrainer's training logic: parameter checks, the budget rule, catalog parsing, the impression
sample, unigram seed pieces and train_spm (SentencePiece over Semantic-ID sentences).

Pure: sentencepiece, numpy and the standard library only, no TFX, Beam or TensorFlow; executor.py wires
these functions into Beam. Also the component's channel and exec-property keys (component.py's
spec and executor.py both take them from here). The method, the symbols and the training choices:
docs/spm.md.
"""
from __future__ import annotations

import collections
import io
import os
import tempfile
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from components.semantic_id_gen import core as sid_core
from components.spm_trainer import model_proto
from models.sid.symbols import Codes, is_int, sid_sentence
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

# --- the trained models' pieces ------------------------------------------------------------
UNK_ID = 0
UNK_PIECE = "<unk>"
SEED_SENTENCEPIECE_SIZE = 1_000_000  # sentencepiece's default
DEFAULT_MAX_PIECE_LENGTH = 16  # sentencepiece's default max_sentencepiece_length


def min_vocab_size(num_symbols: int) -> int:
    """The smallest budget: every symbol plus <unk>."""
    return num_symbols + 1


def check_vocab_size(vocab_size: int, num_symbols: int) -> None:
    """ValueError unless vocab_size >= num_symbols + 1 (the budget rule, docs/spm.md)."""
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
    """One catalog.tsv line -> (item_id, codes) (sid_core.parse_catalog_line)."""
    return sid_core.parse_catalog_line(line, sid_length, component="SpmTrainer")


def parse_catalog_tsv(text: Union[str, bytes], sid_length: int) -> Dict[bytes, Codes]:
    """catalog.tsv -> {item_id: codes} (sid_core.parse_catalog_tsv)."""
    return sid_core.parse_catalog_tsv(text, sid_length, component="SpmTrainer")


def catalog_sentences(catalog: Mapping[bytes, Sequence[int]],
                      codebook_size: int) -> Dict[bytes, str]:
    """{item_id: SID sentence}."""
    return {item_id: sid_sentence(codes, codebook_size) for item_id, codes in catalog.items()}


# --- sampling ------------------------------------------------------------------------------------

def sample_counts(counts: Mapping[str, int], max_sentences: int, seed: int) -> Dict[str, int]:
    """{sentence: impressions} cut to a uniform sample of at most max_sentences impressions
    without replacement (all of them when there are no more): a seeded multivariate
    hypergeometric draw over the sentences in sorted order, so the same counts and seed give
    the same sample on any runner."""
    total = sum(int(c) for c in counts.values())
    if total <= max_sentences:
        return {s: int(c) for s, c in counts.items() if int(c) > 0}
    sentences = sorted(counts)
    drawn = np.random.default_rng(int(seed)).multivariate_hypergeometric(
        np.array([int(counts[s]) for s in sentences], np.int64), int(max_sentences))
    return {s: int(c) for s, c in zip(sentences, drawn) if c > 0}


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
        model = model_proto.drop_trainer_spec_string(model, seeds_path)
    if model_prefix:
        with open(model_prefix + ".model", "wb") as f:
            f.write(model)
        with open(model_prefix + ".vocab", "w", encoding="utf-8") as f:
            f.write(model_proto.vocab_text(model))
    return model
