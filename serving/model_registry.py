"""The model versions a server holds: discovery, background loading, warm-up, atomic swap, labels.

`ModelRegistry(model_base_path, model_name)` watches TF Serving's layout,
`<model_base_path>/<version>/saved_model.pb`: a version is a directory named by an integer that
holds `saved_model.pb` (or `.pbtxt`); anything else (a temp name, a half-written directory without
`saved_model.pb`) is ignored until it is complete. A background thread re-scans every
`poll_interval_s` seconds (`refresh()` does one scan now). A new version is loaded in that thread
(`tensorflow_text` imported first, so SentencePiece ops resolve), its
`assets.extra/tf_serving_warmup_requests` replayed, and only then swapped in: the served set is an
immutable dict replaced under a lock, and a request holds the `Servable` it resolved, so in-flight
requests finish on the old model while new ones get the new one. A version that fails to load (or
to warm up) is reported in the status and retried only when its files change; the versions
already served keep serving.

Which versions are served: TF Serving's version policy, `latest { num_versions: 1 }` by default,
plus every version a label names. Labels and the policy come from an optional model config file
in TF Serving's own format (a `ModelServerConfig` text proto, the file `tensorflow_model_server
--model_config_file` reads; it is re-read when it changes):

    model_config_list {
      config {
        name: "semids"
        base_path: "/models/semids"            # optional here: --model_base_path wins
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 3 versions: 5 } }   # optional
        version_labels { key: "stable" value: 3 }
        version_labels { key: "canary" value: 5 }
      }
    }

`status()` is TF Serving's GetModelStatus JSON:
    {"model_version_status": [{"version": "3", "state": "AVAILABLE",
                               "status": {"error_code": "OK", "error_message": ""}}]}
"""
import dataclasses
import logging
import os
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from schemas import artifact_layout
from serving import classify_regress
from serving.errors import ServingError
from serving.signatures import SignatureInfo

log = logging.getLogger(__name__)

WARMUP_FILE = os.path.join(artifact_layout.ServingModel.WARMUP_DIR,
                           artifact_layout.ServingModel.WARMUP_FILE)
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")

_tf_text_imported = False


def import_tensorflow_text() -> None:
    """Registers tensorflow-text's ops (SentencePiece) before a SavedModel that uses them loads."""
    global _tf_text_imported
    if not _tf_text_imported:
        try:
            import tensorflow_text  # noqa: F401
        except ImportError:  # pragma: no cover - it is in the pinned stack
            log.warning("tensorflow_text is not installed: models with SentencePiece ops fail")
        _tf_text_imported = True


@dataclasses.dataclass
class Servable:
    """One loaded model version. Requests hold a reference; dropping the last one frees it."""
    name: str
    version: int
    path: str
    loaded: object
    signatures: Dict[str, SignatureInfo]
    signature_def_map: object  # tensorflow_serving SignatureDefMap proto (every SignatureDef)
    warmup_requests_replayed: int = 0

    def signature(self, name: str) -> SignatureInfo:
        sig = self.signatures.get(name or "serving_default")
        if sig is None:
            raise ServingError(400, f"Serving signature name: \"{name}\" not found in signature "
                               f"def (this model has {', '.join(sorted(self.signatures))})")
        return sig

    def metadata_json(self) -> dict:
        """The `signature_def` metadata TF Serving's REST metadata API returns."""
        from google.protobuf import json_format
        return {"signature_def": json_format.MessageToDict(
            self.signature_def_map, preserving_proto_field_name=True,
            including_default_value_fields=True)}


def load_servable(name: str, version: int, path: str, warmup: bool = True) -> Servable:
    import tensorflow as tf
    from tensorflow.python.saved_model import loader_impl
    from tensorflow_serving.apis import get_model_metadata_pb2

    import_tensorflow_text()
    loaded = tf.saved_model.load(path)
    signatures = {key: SignatureInfo.from_concrete_function(key, fn)
                  for key, fn in loaded.signatures.items()}
    saved_model = loader_impl.parse_saved_model(path)
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sig_def in saved_model.meta_graphs[0].signature_def.items():
        sig_map.signature_def[key].CopyFrom(sig_def)
    servable = Servable(name, version, path, loaded, signatures, sig_map)
    if warmup:
        servable.warmup_requests_replayed = replay_warmup(servable)
    return servable


def replay_warmup(servable: Servable) -> int:
    """Replays `assets.extra/tf_serving_warmup_requests` (PredictionLog TFRecords: predict_log,
    classify_log and regress_log requests); a failing request fails the load, as in TF Serving.
    Returns the number replayed."""
    path = os.path.join(servable.path, WARMUP_FILE)
    if not os.path.exists(path):
        return 0
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    count = 0
    for record in tf.data.TFRecordDataset(path):
        if count >= MAX_WARMUP_RECORDS:
            raise ValueError(f"{path}: more than {MAX_WARMUP_RECORDS} warm-up records")
        entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = entry.WhichOneof("log_type")
        if kind == "predict_log":
            request = entry.predict_log.request
            sig = servable.signature(request.model_spec.signature_name)
            arrays = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            sig.run(sig.validate(arrays))
        elif kind in ("classify_log", "regress_log"):
            request = getattr(entry, kind).request
            method = classify_regress.CLASSIFY if kind == "classify_log" else \
                classify_regress.REGRESS
            classify_regress.run(servable.signature(request.model_spec.signature_name), method,
                                 classify_regress.examples_from_input_proto(request.input))
        else:
            raise ValueError(f"{path}: record {count} is a {kind}; only predict_log, "
                             "classify_log and regress_log warm-up requests are supported")
        count += 1
    log.info("%s version %d: replayed %d warm-up requests", servable.name, servable.version, count)
    return count


@dataclasses.dataclass
class ModelConfig:
    base_path: Optional[str] = None
    policy: Tuple = ("latest", 1)  # ("latest", n) | ("all",) | ("specific", frozenset)
    labels: Dict[str, int] = dataclasses.field(default_factory=dict)


def parse_model_config(path: str, model_name: str) -> ModelConfig:
    """The entry for `model_name` of a TF Serving ModelServerConfig text proto."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(path) as f:
        text = f.read()
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as e:
        raise ValueError(f"{path}: not a TF Serving model config (ModelServerConfig text "
                         f"proto): {e}") from e
    entries = list(config.model_config_list.config)
    entry = next((c for c in entries if c.name == model_name), None)
    if entry is None:
        raise ValueError(f"{path}: no config {{ name: \"{model_name}\" ... }} in "
                         f"model_config_list (found {[c.name for c in entries]})")
    policy_kind = entry.model_version_policy.WhichOneof("policy_choice")
    if policy_kind == "all":
        policy = ("all",)
    elif policy_kind == "specific":
        policy = ("specific", frozenset(entry.model_version_policy.specific.versions))
    elif policy_kind == "latest":
        policy = ("latest", max(1, entry.model_version_policy.latest.num_versions))
    else:
        policy = ("latest", 1)
    return ModelConfig(entry.base_path or None, policy, dict(entry.version_labels))


@dataclasses.dataclass
class _VersionStatus:
    state: str
    error_code: str = "OK"
    error_message: str = ""


class ModelRegistry:
    def __init__(self, model_base_path: Optional[str], model_name: str = "semids",
                 model_config_file: Optional[str] = None, poll_interval_s: float = 1.0,
                 warmup: bool = True,
                 loader: Callable[[str, int, str], Servable] = None):
        self.name = model_name
        self.model_config_file = model_config_file
        self.poll_interval_s = poll_interval_s
        self._loader = loader or (lambda n, v, p: load_servable(n, v, p, warmup=warmup))
        self._config, self._config_mtime = ModelConfig(), None
        self._maybe_reload_config()
        base = model_base_path or self._config.base_path
        if not base:
            raise ValueError("give --model_base_path (or a base_path in --model_config_file)")
        self.model_base_path = os.path.abspath(base)
        self._lock = threading.Lock()  # guards _servables, _states
        self._refresh_lock = threading.Lock()  # one scan/load at a time
        self._servables: Dict[int, Servable] = {}
        self._states: Dict[int, _VersionStatus] = {}
        self._failed: Dict[int, tuple] = {}  # version -> files fingerprint at the failed load
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.swaps = 0

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self, initial_refresh: bool = True) -> "ModelRegistry":
        """Loads what is there now (blocking), then watches the base path in the background."""
        if initial_refresh:
            self.refresh()
        self._thread = threading.Thread(target=self._poll, name="semids-model-watcher",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep watching; the error is logged
                log.exception("refreshing %s failed", self.model_base_path)

    # --- discovery and loading ----------------------------------------------------------------
    def _maybe_reload_config(self) -> None:
        if not self.model_config_file:
            return
        try:
            mtime = os.stat(self.model_config_file).st_mtime_ns
        except OSError as e:
            if self._config_mtime is None:
                raise ValueError(f"cannot read --model_config_file {self.model_config_file}: {e}")
            return
        if mtime != self._config_mtime:
            try:
                self._config = parse_model_config(self.model_config_file, self.name)
            except ValueError:
                if self._config_mtime is None:
                    raise
                log.exception("keeping the previous model config")
            self._config_mtime = mtime

    def _scan(self) -> Dict[int, str]:
        try:
            names = os.listdir(self.model_base_path)
        except OSError:
            return {}
        found = {}
        for entry in names:
            if not entry.isdigit():
                continue
            path = os.path.join(self.model_base_path, entry)
            if any(os.path.isfile(os.path.join(path, f)) for f in _SAVED_MODEL_FILES):
                found[int(entry)] = path
        return found

    @staticmethod
    def _fingerprint(path: str) -> tuple:
        out = []
        for root, _, files in os.walk(path):
            for f in files:
                try:
                    st = os.stat(os.path.join(root, f))
                except OSError:
                    continue
                out.append((os.path.relpath(os.path.join(root, f), path), st.st_size,
                            st.st_mtime_ns))
        return tuple(sorted(out))

    def refresh(self) -> bool:
        """One scan: loads newly aspired versions, swaps, unloads the others. True if changed."""
        with self._refresh_lock:
            self._maybe_reload_config()
            on_disk = self._scan()
            for v in list(self._failed):
                if v not in on_disk or self._fingerprint(on_disk[v]) != self._failed[v]:
                    del self._failed[v]  # changed or gone: may be retried
            candidates = sorted((v for v in on_disk if v not in self._failed), reverse=True)
            policy = self._config.policy
            labeled = set(self._config.labels.values())
            current = self._servables
            new: Dict[int, Servable] = {}
            latest_wanted = policy[1] if policy[0] == "latest" else 0
            latest_got = 0
            for v in candidates:
                if policy[0] == "all" or (policy[0] == "specific" and v in policy[1]):
                    wanted = True
                elif policy[0] == "latest" and latest_got < latest_wanted:
                    wanted = True
                else:
                    wanted = v in labeled
                if not wanted:
                    continue
                servable = current.get(v) or self._load(v, on_disk[v])
                if servable is not None:
                    new[v] = servable
                    if policy[0] == "latest" and latest_got < latest_wanted:
                        latest_got += 1
            if set(new) == set(current) and all(new[v] is current[v] for v in new):
                return False
            with self._lock:
                self._servables = new  # the atomic swap
                for v in current:
                    if v not in new:
                        self._states[v] = _VersionStatus("END")
                self.swaps += 1
            dropped = sorted(set(current) - set(new))
            log.info("%s: serving versions %s%s", self.name, sorted(new),
                     f" (unloaded {dropped})" if dropped else "")
            return True

    def _load(self, version: int, path: str) -> Optional[Servable]:
        with self._lock:
            self._states[version] = _VersionStatus("LOADING")
        start = time.time()
        try:
            servable = self._loader(self.name, version, path)
        except Exception as e:  # noqa: BLE001 - reported in the status, retried when files change
            msg = (getattr(e, "message", None) or str(e) or type(e).__name__).strip()
            log.warning("%s version %d (%s) failed to load: %s", self.name, version, path, msg)
            self._failed[version] = self._fingerprint(path)
            with self._lock:
                self._states[version] = _VersionStatus("END", "UNKNOWN",
                                                       f"failed to load: {msg.splitlines()[0]}")
            return None
        log.info("%s version %d loaded in %.1fs", self.name, version, time.time() - start)
        with self._lock:
            self._states[version] = _VersionStatus("AVAILABLE")
        return servable

    # --- lookups ------------------------------------------------------------------------------
    def check_name(self, model_name: str) -> None:
        if model_name != self.name:
            raise ServingError(404, f"Servable not found for request: Latest({model_name}): this "
                               f"server serves the model '{self.name}'")

    def resolve_version(self, version: Optional[int] = None, label: Optional[str] = None) -> \
            Optional[int]:
        if label is not None:
            labels = self._config.labels
            if label not in labels:
                known = f" (labels: {', '.join(sorted(labels))})" if labels else ""
                raise ServingError(400, f"Unrecognized servable version label: {label}{known}")
            return labels[label]
        return version

    def get(self, version: Optional[int] = None, label: Optional[str] = None) -> Servable:
        """The servable for a request (the newest when neither version nor label is given)."""
        version = self.resolve_version(version, label)
        servables = self._servables  # one read of the reference: the swap is atomic
        if version is None:
            if not servables:
                raise ServingError(404, f"Servable not found for request: Latest({self.name}): "
                                   f"no version is loaded from {self.model_base_path}")
            return servables[max(servables)]
        servable = servables.get(version)
        if servable is None:
            raise ServingError(404, f"Servable not found for request: Specific({self.name}, "
                               f"{version}) (serving versions: {sorted(servables) or 'none'})")
        return servable

    @property
    def labels(self) -> Dict[str, int]:
        return dict(self._config.labels)

    def versions(self) -> List[int]:
        return sorted(self._servables)

    def status_entries(self, version: Optional[int] = None, label: Optional[str] = None):
        """[(version, state, error_code, error_message)] newest first; 404 when none match."""
        version = self.resolve_version(version, label)
        with self._lock:
            states = dict(self._states)
        if version is not None:
            if version not in states:
                raise ServingError(404, f"Could not find version {version} of model {self.name}")
            states = {version: states[version]}
        if not states:
            raise ServingError(404, f"Could not find any versions of model {self.name}")
        return [(v, s.state, s.error_code, s.error_message)
                for v, s in sorted(states.items(), reverse=True)]

    def status(self, version: Optional[int] = None, label: Optional[str] = None) -> dict:
        return {"model_version_status": [
            {"version": str(v), "state": state,
             "status": {"error_code": code, "error_message": msg}}
            for v, state, code, msg in self.status_entries(version, label)]}

    def wait_for_version(self, version: int, timeout_s: float = 30.0) -> Servable:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            servable = self._servables.get(version)
            if servable is not None:
                return servable
            time.sleep(0.02)
        raise TimeoutError(f"version {version} of {self.name} not loaded after {timeout_s}s")
