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
