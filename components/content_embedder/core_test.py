"""Unit tests of the pure ContentEmbedder logic (no TFX, no Beam)."""
import json
import os

import numpy as np
import pytest

from components.artifacts import ContentEncoder
from components.content_embedder import core

# all-MiniLM-L6-v2 (int8 ONNX) on "This is an example sentence" (../shared/stack/README.md).
REFERENCE_TEXT = "This is an example sentence"
REFERENCE_FIRST = [0.0668, 0.0612, 0.0509, 0.0790, 0.0384]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return core.prepare_encoder_dir(str(tmp_path_factory.mktemp("encoder")))


@pytest.fixture(scope="module")
def encoder(encoder_dir):
    return core.MiniLmEncoder(encoder_dir, num_threads=2)


# --- encoder folder ---------------------------------------------------------------------------

def test_file_names_match_the_artifact_type():
    assert (core.ONNX_FILE, core.TOKENIZER_FILE) == (ContentEncoder.ONNX_FILE,
                                                     ContentEncoder.TOKENIZER_FILE)


def test_prepare_encoder_dir_is_idempotent(encoder_dir):
    assert sorted(os.listdir(encoder_dir)) == sorted(core.ENCODER_FILES)
    mtimes = {f: os.stat(os.path.join(encoder_dir, f)).st_mtime_ns for f in core.ENCODER_FILES}
    assert core.prepare_encoder_dir(encoder_dir) == encoder_dir
    assert {f: os.stat(os.path.join(encoder_dir, f)).st_mtime_ns
            for f in core.ENCODER_FILES} == mtimes
    assert core.validate_encoder_dir(encoder_dir) == encoder_dir


def test_prepare_encoder_dir_replaces_a_different_file(tmp_path):
    out = str(tmp_path / "enc")
    os.makedirs(out)
    with open(os.path.join(out, core.TOKENIZER_FILE), "w") as f:
        f.write("{}")
    core.prepare_encoder_dir(out)
    with open(os.path.join(out, core.TOKENIZER_FILE)) as f:
        assert "vocab" in json.load(f)["model"]
    assert sorted(os.listdir(out)) == sorted(core.ENCODER_FILES)  # no temp files left


def test_missing_package_names_it_and_make_setup(monkeypatch, tmp_path):
    monkeypatch.setattr(core, "_DEFAULT_SOURCES",
                        (("model.onnx", "no_such_pkg_xyz", "model.onnx"),))
    with pytest.raises(FileNotFoundError, match=r"no_such_pkg_xyz.*make setup"):
        core.prepare_encoder_dir(str(tmp_path))


def test_validate_encoder_dir_names_the_missing_file(tmp_path):
    (tmp_path / core.ONNX_FILE).write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="lacks tokenizer.json"):
        core.validate_encoder_dir(str(tmp_path))


# --- encoder ------------------------------------------------------------------------------------

def test_encoder_matches_the_reference(encoder):
    vec = encoder.encode([REFERENCE_TEXT])
    assert vec.shape == (1, 384) and vec.dtype == np.float32
    np.testing.assert_allclose(vec[0, :5], REFERENCE_FIRST, atol=2e-3)
    assert encoder.embedding_dim == 384


def test_encoder_batch_padding_truncation_and_norm(encoder):
    long_text = "word " * 1000  # truncated to 256 tokens, no error
    texts = ["Toy Story 1995 Animation Children's Comedy", REFERENCE_TEXT, "", long_text]
    batch = encoder.encode(texts)
    assert batch.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for i, text in enumerate(texts):  # padding to the batch max does not change a text's vector
        np.testing.assert_allclose(encoder.encode([text])[0], batch[i], atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
    # similar titles are closer than unrelated ones
    a, b, c = encoder.encode(["Toy Story (1995) Animation", "Toy Story 2 (1999) Animation",
                              "Schindler's List (1993) Drama War"])
    assert a @ b > a @ c


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
