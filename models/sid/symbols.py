"""Semantic-ID symbols: each (level, code) of a SID is one private-use Unicode character, and a
SID's "sentence" is its symbols concatenated. SpmTrainer trains SentencePiece over these sentences
and Transform builds the same sentences in its graph (tf_ops.py), so both use this module.

symbol(level, code, K) = chr(0xF0000 + level * K + code): plane 15's private-use area A
(U+F0000..U+FFFFD; the BMP's 6,400 private-use characters are too small for 8 x 2048 codes).
Every code, the collision breaker's included, lies in [0, K), and sid_length * K <= 65,534.
"""
from typing import Iterable, List, Optional, Tuple

Codes = Tuple[int, ...]

SYMBOL_BASE = 0xF0000  # Supplementary Private Use Area-A
MAX_SYMBOLS = 0xFFFFD - SYMBOL_BASE + 1  # 65,534 private-use characters of plane 15


def is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def check_symbol_space(sid_length: int, codebook_size: int,
                       max_breaker_code: Optional[int] = None) -> None:
    """ValueError unless sid_length x codebook_size symbols fit plane 15's private-use area and
    the collision-breaker codes (max_breaker_code, from the catalog's metadata.json) lie in
    [0, codebook_size)."""
    if not is_int(sid_length) or sid_length < 1:
        raise ValueError(f"SpmTrainer: sid_length must be a positive integer, got {sid_length!r}")
    if not is_int(codebook_size) or codebook_size < 1:
        raise ValueError(
            f"SpmTrainer: codebook_size must be a positive integer, got {codebook_size!r}")
    if sid_length * codebook_size > MAX_SYMBOLS:
        raise ValueError(
            f"SpmTrainer: sid_length x codebook_size = {sid_length} x {codebook_size} = "
            f"{sid_length * codebook_size:,} symbols exceed the {MAX_SYMBOLS:,} private-use "
            f"characters U+F0000..U+FFFFD that encode one (level, code) each")
    if max_breaker_code is not None and not 0 <= max_breaker_code < codebook_size:
        raise ValueError(
            f"SpmTrainer: the catalog's largest collision-breaker code is {max_breaker_code}, "
            f"outside [0, codebook_size = {codebook_size}): the breaker level shares the "
            "codebook's symbols, so at most codebook_size items may share their L RQ-VAE codes "
            "(train the RQ-VAE with more levels or codes, or rerun SemanticIdGen without the "
            "breaker)")


def symbol(level: int, code: int, codebook_size: int) -> str:
    """The one private-use character of (level, code): chr(0xF0000 + level * K + code)."""
    if not 0 <= code < codebook_size:
        raise ValueError(f"SpmTrainer: code {code} at SID level {level} is outside "
                         f"[0, codebook_size = {codebook_size})")
    if level < 0:
        raise ValueError(f"SpmTrainer: negative SID level {level}")
    point = SYMBOL_BASE + level * codebook_size + code
    if point > 0xFFFFD:
        raise ValueError(f"SpmTrainer: (level {level}, code {code}) with codebook_size "
                         f"{codebook_size} lies beyond the private-use area U+F0000..U+FFFFD")
    return chr(point)


def symbol_level_code(ch: str, codebook_size: int) -> Tuple[int, int]:
    """(level, code) of a symbol; ValueError on a character that is no symbol."""
    offset = ord(ch) - SYMBOL_BASE
    if len(ch) != 1 or offset < 0 or ord(ch) > 0xFFFFD:
        raise ValueError(f"SpmTrainer: {ch!r} is not a Semantic ID symbol")
    return divmod(offset, codebook_size)


def sid_sentence(codes: Iterable[int], codebook_size: int) -> str:
    """The SID's symbols concatenated (no separators): code i at level i."""
    return "".join(symbol(level, int(code), codebook_size) for level, code in enumerate(codes))


def sentence_codes(sentence: str, codebook_size: int) -> Codes:
    """The codes of a SID sentence (inverse of sid_sentence); ValueError when a symbol sits at
    a position other than its level."""
    out = []
    for pos, ch in enumerate(sentence):
        level, code = symbol_level_code(ch, codebook_size)
        if level != pos:
            raise ValueError(f"SpmTrainer: symbol of level {level} at position {pos} of "
                             f"{sentence!r}")
        out.append(code)
    return tuple(out)


def piece_symbols(piece: str, codebook_size: int) -> List[Tuple[int, int]]:
    """(level, code) of each symbol of a vocabulary piece (a run of consecutive levels)."""
    return [symbol_level_code(ch, codebook_size) for ch in piece]


def all_symbols(sid_length: int, codebook_size: int) -> List[str]:
    """Every (level, code) symbol, level-major: the single-character pieces guaranteed."""
    check_symbol_space(sid_length, codebook_size)
    return [symbol(level, code, codebook_size)
            for level in range(sid_length) for code in range(codebook_size)]
