"""Semantic-ID symbols: one private-use character per (level, code)."""
import pytest

from models.sid import symbols as sid_symbols


def test_symbol_sentence_round_trip():
    assert sid_symbols.symbol(0, 0, 64) == "\U000F0000"
    assert sid_symbols.symbol(2, 5, 64) == chr(0xF0000 + 2 * 64 + 5)
    s = sid_symbols.sid_sentence((12, 5, 40, 0), 64)
    assert len(s) == 4 and "-" not in s and " " not in s
    assert sid_symbols.sentence_codes(s, 64) == (12, 5, 40, 0)
    assert sid_symbols.symbol_level_code(s[2], 64) == (2, 40)
    syms = sid_symbols.all_symbols(4, 64)
    assert len(syms) == len(set(syms)) == 256
    assert syms[64 + 3] == sid_symbols.symbol(1, 3, 64)
    # the paper's setting: 8 levels + breaker x 2048 codes fits plane 15's private-use area
    big = sid_symbols.all_symbols(9, 2048)
    assert len(set(big)) == 9 * 2048 and max(map(ord, big)) <= 0xFFFFD
    with pytest.raises(ValueError, match="position"):
        sid_symbols.sentence_codes(s[1:], 64)


def test_symbol_errors():
    with pytest.raises(ValueError, match="outside"):
        sid_symbols.symbol(0, 64, 64)
    with pytest.raises(ValueError, match="outside"):
        sid_symbols.sid_sentence((1, -1), 64)
    with pytest.raises(ValueError, match="collision-breaker"):
        sid_symbols.check_symbol_space(5, 64, max_breaker_code=64)
    sid_symbols.check_symbol_space(5, 64, max_breaker_code=63)
    with pytest.raises(ValueError, match="exceed"):
        sid_symbols.check_symbol_space(40, 2048)
