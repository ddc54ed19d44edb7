"""Unit tests of the pure ContentEmbedder logic (no TFX, no Beam); the encoder's own tests are
in models/content_encoder_test.py."""
import numpy as np
import pytest

from components.content_embedder import core


# --- item text and fields -------------------------------------------------------------------------

def test_item_text_joins_non_empty_fields_in_order():
    rec = {"item_id": b"1", "title": b"Toy Story", "year": "1995",
           "genres": " Animation Children's Comedy ", "note": ""}
    assert core.item_text(rec, ["title", "year", "genres"]) == \
        "Toy Story 1995 Animation Children's Comedy"
    assert core.item_text(rec, ["genres", "note", "missing", "title"]) == \
        "Animation Children's Comedy Toy Story"
    assert core.item_text(rec, ["note"]) == ""


def test_default_text_field_order():
    assert core.default_text_fields(["zeta", "genres", "item_id", "alpha", "title"]) == \
        ["title", "genres", "alpha", "zeta"]
    assert core.resolve_text_fields(None, ["item_id", "year", "title", "genres"]) == \
        ["title", "year", "genres"]
    assert core.resolve_text_fields(["genres", "title"], ["item_id", "title", "genres"]) == \
        ["genres", "title"]
    with pytest.raises(ValueError, match=r"\['plot'\] are not text features"):
        core.resolve_text_fields(["title", "plot"], ["item_id", "title"])
    with pytest.raises(ValueError, match="no text feature"):
        core.resolve_text_fields(None, ["item_id"])


def test_text_fields_exec_property_round_trip():
    assert core.encode_text_fields(None) == "" and core.parse_text_fields("") is None
    raw = core.encode_text_fields(["title", "genres"])
    assert core.parse_text_fields(raw) == ["title", "genres"]
    for bad in ('"title"', "[1]", '["title", "title"]', '["item_id"]', "not json"):
        with pytest.raises(ValueError, match="ContentEmbedder"):
            core.parse_text_fields(bad)


# --- checks ---------------------------------------------------------------------------------------

def test_check_embedding_accepts_and_casts():
    vec = core.check_embedding(b"7", [0.5, -1.0, 2.0], 3)
    assert vec.dtype == np.float32 and vec.tolist() == [0.5, -1.0, 2.0]


@pytest.mark.parametrize("values,match", [
    ([0.1, 0.2], r"item '007'.*dimension 2, expected 3"),
    ([0.1, float("nan"), 0.3], r"item '007'.*non-finite.*index 1"),
    ([0.1, 0.2, float("inf")], r"item '007'.*non-finite.*index 2"),
    ([0.1, 0.2, 1e39], r"item '007'.*non-finite"),  # overflows float32
])
def test_check_embedding_rejects_naming_the_item(values, match):
    with pytest.raises(ValueError, match=match):
        core.check_embedding(b"007", values, 3)


def test_batch_size_and_summary():
    assert core.check_batch_size(8) == 8
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            core.check_batch_size(bad)
    s = core.make_summary(1682, 384, core.SOURCE_ENCODER, "/enc", ["title"], 0, 12.345)
    assert core.summary_line(s) == "ContentEmbedder: 1,682 items embedded (384-d, encoder) in 12.3s"
