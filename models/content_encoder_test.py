"""Unit tests of the content encoder: the encoder folder and MiniLmEncoder (no TFX, no Beam)."""
import json
import os

import numpy as np
import pytest

from models import content_encoder
from schemas import artifact_layout

# all-MiniLM-L6-v2 (int8 ONNX) on "This is an example sentence" (../shared/stack/README.md).
REFERENCE_TEXT = "This is an example sentence"
REFERENCE_FIRST = [0.0668, 0.0612, 0.0509, 0.0790, 0.0384]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return content_encoder.prepare_encoder_dir(str(tmp_path_factory.mktemp("encoder")))


@pytest.fixture(scope="module")
def encoder(encoder_dir):
    return content_encoder.MiniLmEncoder(encoder_dir, num_threads=2)


# --- encoder folder ---------------------------------------------------------------------------

def test_file_names_match_the_artifact_layout():
    assert content_encoder.ENCODER_FILES == (artifact_layout.ContentEncoder.ONNX_FILE,
                                             artifact_layout.ContentEncoder.TOKENIZER_FILE)


def test_prepare_encoder_dir_is_idempotent(encoder_dir):
    files = content_encoder.ENCODER_FILES
    assert sorted(os.listdir(encoder_dir)) == sorted(files)
    mtimes = {f: os.stat(os.path.join(encoder_dir, f)).st_mtime_ns for f in files}
    assert content_encoder.prepare_encoder_dir(encoder_dir) == encoder_dir
    assert {f: os.stat(os.path.join(encoder_dir, f)).st_mtime_ns for f in files} == mtimes
    assert content_encoder.validate_encoder_dir(encoder_dir) == encoder_dir


def test_prepare_encoder_dir_replaces_a_different_file(tmp_path):
    out = str(tmp_path / "enc")
    os.makedirs(out)
    with open(os.path.join(out, content_encoder.TOKENIZER_FILE), "w") as f:
        f.write("{}")
    content_encoder.prepare_encoder_dir(out)
    with open(os.path.join(out, content_encoder.TOKENIZER_FILE)) as f:
        assert "vocab" in json.load(f)["model"]
    assert sorted(os.listdir(out)) == sorted(content_encoder.ENCODER_FILES)  # no temp files left


def test_missing_package_names_it_and_make_setup(monkeypatch, tmp_path):
    monkeypatch.setattr(content_encoder, "_DEFAULT_SOURCES",
                        (("model.onnx", "no_such_pkg_xyz", "model.onnx"),))
    with pytest.raises(FileNotFoundError, match=r"no_such_pkg_xyz.*make setup"):
        content_encoder.prepare_encoder_dir(str(tmp_path))


def test_validate_encoder_dir_names_the_missing_file(tmp_path):
    (tmp_path / content_encoder.ONNX_FILE).write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="lacks tokenizer.json"):
        content_encoder.validate_encoder_dir(str(tmp_path))


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


# --- length-bucketed batching and session options ----------------------------------------------

def test_plan_batches_sorts_by_length_and_keeps_the_padded_token_budget():
    lengths = [5, 30, 2, 300, 12, 12, 7, 64, 2, 40]
    batches = content_encoder.plan_batches(lengths, token_budget=64)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))  # every text once
    assert [lengths[i] for i in flat] == sorted(lengths)  # by increasing length
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) * longest <= 64 or len(b) == 1  # a text over the budget goes alone
    assert [len(b) for b in batches] == [5, 2, 1, 1, 1]
    assert content_encoder.plan_batches([], 64) == []
    with pytest.raises(ValueError, match="token_budget"):
        content_encoder.plan_batches([3], 0)


def test_bucketed_encoding_matches_each_text_alone(encoder_dir):
    """A few dozen texts of mixed lengths (an empty one, one past 256 tokens), in an order that
    is not by length: every row within 1e-5 of the text encoded on its own, in the input order,
    whatever the budget, with calls one at a time or several at once."""
    rng = np.random.default_rng(0)
    words = ["Toy", "Story", "1995", "Animation", "the", "quiet", "harbour", "of", "Lisbon",
             "Children's", "Comedy", "by", "Ursula", "K.", "Le", "Guin", "(Penguin)", "Drama"]
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(1, 60, size=34)]
    texts[5] = ""
    texts[17] = "word " * 400  # truncated to 256 tokens
    texts[23] = REFERENCE_TEXT
    alone = content_encoder.MiniLmEncoder(encoder_dir, num_threads=1, token_budget=1)
    singles = np.stack([alone.encode([t])[0] for t in texts])
    for budget, calls in ((64, 3), (content_encoder.DEFAULT_TOKEN_BUDGET, 1)):
        encoder = content_encoder.MiniLmEncoder(encoder_dir, num_threads=1 if calls > 1 else 2,
                                                allow_spinning=False, token_budget=budget,
                                                parallel_calls=calls)
        got = encoder.encode(texts)
        assert got.shape == (len(texts), 384) and got.dtype == np.float32
        assert float(np.max(np.abs(got - singles))) <= 1e-5, budget
    np.testing.assert_allclose(singles[23, :5], REFERENCE_FIRST, atol=2e-3)
    with pytest.raises(ValueError, match="token_budget"):
        content_encoder.MiniLmEncoder(encoder_dir, token_budget=0)
    with pytest.raises(ValueError, match="parallel_calls"):
        content_encoder.MiniLmEncoder(encoder_dir, parallel_calls=0)


def test_session_options_in_effect_are_read_back(encoder_dir):
    quiet = content_encoder.MiniLmEncoder(encoder_dir, num_threads=1, allow_spinning=False)
    options = quiet.options_in_effect()
    assert (options["intra_op_num_threads"], options["inter_op_num_threads"]) == (1, 1)
    assert options["execution_mode"] == "ORT_SEQUENTIAL"
    assert options[content_encoder.INTRA_OP_SPINNING] == "0"
    assert options[content_encoder.INTER_OP_SPINNING] == "0"
    default = content_encoder.MiniLmEncoder(encoder_dir, num_threads=2).options_in_effect()
    assert default["intra_op_num_threads"] == 2
    assert default[content_encoder.INTRA_OP_SPINNING].startswith("1")  # onnxruntime's default
    spinning = content_encoder.options_in_effect(
        content_encoder.session_options(2, allow_spinning=True))
    assert spinning[content_encoder.INTER_OP_SPINNING] == "1"
