"""A loaded SavedModel's serving signatures: the callable, its input specs and the request checks.

The specs come from the loaded function's `structured_input_signature`, never hard-coded. A
request, as a dict of numpy arrays (from JSON in `json_codec.py` via `rest.py`, from TensorProtos
in `grpc_server.py`), is checked against them (names, dtypes, shapes, one batch size), runs
(directly or through the batcher) and comes back as a dict of numpy arrays. The model's own
InvalidArgumentError becomes a 400 `ServingError`.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from schemas import features
from serving.errors import bad_request

_INPUT_ORDER = features.SERVING_FEATURES + (features.SEMANTIC_ID, features.CONTENT_EMBEDDING)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: Any  # tf.DType
    shape: Tuple[Optional[int], ...]  # None for an unknown dimension

    @property
    def np_dtype(self):
        return np.dtype(object) if self.dtype.name == "string" else self.dtype.as_numpy_dtype

    def describe(self) -> str:
        dims = ", ".join("-1" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype.name} [{dims}]"


@dataclasses.dataclass
class SignatureInfo:
    """One serving signature of a loaded SavedModel: the callable and its input specs."""
    name: str
    fn: Callable
    inputs: Dict[str, InputSpec]
    outputs: List[str]

    @classmethod
    def from_concrete_function(cls, name: str, fn) -> "SignatureInfo":
        args, kwargs = fn.structured_input_signature
        specs = dict(kwargs)
        for spec in args:  # signatures take keyword arguments; positional ones keep their names
            specs[spec.name] = spec
        # A stable order for messages: the request contract's, then by name.
        known = {k: i for i, k in enumerate(_INPUT_ORDER)}
        order = sorted(specs, key=lambda k: (known.get(k, len(known)), k))
        inputs = {key: InputSpec(key, specs[key].dtype, tuple(specs[key].shape.as_list())
                                 if specs[key].shape.rank is not None else ())
                  for key in order}
        outputs = fn.structured_outputs
        names = sorted(outputs) if isinstance(outputs, dict) else ["output_0"]
        return cls(name, fn, inputs, names)

    def describe_inputs(self) -> str:
        return ", ".join(spec.describe() for spec in self.inputs.values())

    # --- validation ---------------------------------------------------------------------------
    def check_names(self, names) -> None:
        names = set(names)
        missing = [k for k in self.inputs if k not in names]
        extra = sorted(k for k in names if k not in self.inputs)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing input(s) {', '.join(missing)}")
            if extra:
                parts.append(f"unknown input(s) {', '.join(map(str, extra))}")
            raise bad_request(f"{'; '.join(parts)}: signature '{self.name}' takes "
                              f"{self.describe_inputs()}")

    def validate(self, arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Names, dtypes, shapes and one batch size; returns arrays in the specs' dtypes."""
        self.check_names(arrays)
        out, batch = {}, None
        for key, spec in self.inputs.items():
            arr = arrays[key]
            arr = _cast(arr, spec)
            if arr.ndim != len(spec.shape) or any(
                    want is not None and want != got for want, got in zip(spec.shape, arr.shape)):
                hint = ""
                if arr.ndim == len(spec.shape) and arr.ndim == 2 and spec.dtype.name in (
                        "string", "int64"):
                    hint = f" (pad or truncate each instance's {key} to {spec.shape[1]} entries)"
                raise bad_request(f"input '{key}' has shape {list(arr.shape)}, signature "
                                  f"'{self.name}' expects {spec.describe()}{hint}")
            if arr.ndim:
                if batch is None:
                    batch = arr.shape[0]
                elif arr.shape[0] != batch:
                    raise bad_request(f"inputs have different batch sizes ({batch} and "
                                      f"{arr.shape[0]} for '{key}')")
            out[key] = arr
        if batch == 0:
            raise bad_request("empty batch: send at least one instance")
        return out

    def batch_size(self, arrays: Dict[str, np.ndarray]) -> Optional[int]:
        """The shared leading dimension, when every input's spec has an unknown batch dim."""
        if not all(spec.shape and spec.shape[0] is None for spec in self.inputs.values()):
            return None
        return next(iter(arrays.values())).shape[0] if arrays else None

    # --- running ------------------------------------------------------------------------------
    def run(self, arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Calls the signature on validated arrays; the model's InvalidArgumentError -> 400."""
        import tensorflow as tf
        try:
            result = self.fn(**{k: tf.constant(v, dtype=self.inputs[k].dtype)
                                for k, v in arrays.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            raise bad_request(f"signature '{self.name}' rejected the request: "
                              f"{_tf_error_message(e)}")
        if not isinstance(result, dict):
            result = {"output_0": result}
        return {k: v.numpy() for k, v in result.items()}


def _tf_error_message(e: Exception) -> str:
    """The useful line(s) of a TF runtime error, without the graph-execution boilerplate."""
    import re
    msg = getattr(e, "message", None) or str(e)
    keep = []
    for line in msg.splitlines():
        line = re.sub(r"\s*\[\[\{\{node [^]]*\]\]", "", line)
        line = re.sub(r"\s*\[Op:[^\]]*\]", "", line).strip()
        if not line or line.startswith(("Graph execution error", "Detected at node",
                                        "<stack traces unavailable>", "File ", "[[")):
            continue
        keep.append(line)
    return " ".join(keep)[:1000] or type(e).__name__


def utf8(text: str, name: str) -> bytes:
    """`text` as UTF-8; a string Python cannot encode (a lone UTF-16 surrogate such as "\\ud800",
    or the raw bytes ED A0 80, which json.loads turns into one) is a 400 naming the input."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise bad_request(f"input '{name}': a string is not valid Unicode ({e.reason} at "
                          f"character {e.start}: {text[e.start:e.end]!r})")


def _cast(arr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Checks a request array's dtype against the spec (exact for gRPC; JSON arrays arrive cast)."""
    want = spec.dtype.name
    kind = arr.dtype.kind
    if want == "string":
        if kind in ("O", "S"):
            return arr.astype(object) if kind == "S" else arr
        if kind == "U":
            return np.vectorize(lambda s: utf8(s, spec.name), otypes=[object])(arr) if arr.size \
                else arr.astype(object)
    elif want == "bool":
        if kind == "b":
            return arr
    elif kind in ("i", "u") and (spec.dtype.is_integer or spec.dtype.is_floating):
        if spec.dtype.is_integer:
            info = np.iinfo(spec.np_dtype)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise bad_request(f"input '{spec.name}': value out of range for {want}")
        return arr.astype(spec.np_dtype, copy=False)
    elif kind == "f" and spec.dtype.is_floating:
        return arr.astype(spec.np_dtype, copy=False)
    raise bad_request(f"input '{spec.name}' has dtype {arr.dtype.name if kind != 'O' else 'string'}"
                      f", signature expects {want}")
