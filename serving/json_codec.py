"""TF Serving's REST JSON <-> numpy: a :predict body (row or columnar format, `{"b64": ...}`
values) -> the signature and its validated arrays, and the outputs -> the response body.

Leaf types and ranks are checked here, names / dtypes / shapes by `SignatureInfo.validate`; every
problem is a 400 `ServingError` whose message names the input.
"""
import base64
import binascii
import itertools
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from serving.errors import bad_request
from serving.signatures import InputSpec, SignatureInfo, utf8

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # REST request body limit (413 above it)


# --- JSON -> numpy ----------------------------------------------------------------------------
def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    return {int: "int", float: "float", str: "string", list: "list"}.get(type(value), "value")


def _leaf_converter(spec: InputSpec):
    want = spec.dtype.name
    if want == "string":
        def conv(v):
            if isinstance(v, str):
                return utf8(v, spec.name)
            if isinstance(v, dict) and len(v) == 1 and "b64" in v:
                if not isinstance(v["b64"], str):
                    raise bad_request(f"input '{spec.name}': \"b64\" must hold a base64 string")
                try:
                    return base64.b64decode(v["b64"], validate=True)
                except (binascii.Error, ValueError):
                    raise bad_request(f"input '{spec.name}': invalid base64 in \"b64\" value")
            raise bad_request(f"input '{spec.name}' expects strings (or {{\"b64\": ...}}), "
                              f"got {_json_type(v)}")
        return conv
    if spec.dtype.is_integer:
        info = np.iinfo(spec.np_dtype)

        def conv(v):
            if type(v) is not int:
                raise bad_request(f"input '{spec.name}' expects integers ({want}), got "
                                  f"{_json_type(v)}")
            if v < info.min or v > info.max:
                raise bad_request(f"input '{spec.name}': {v} is out of range for {want}")
            return v
        return conv
    if spec.dtype.is_floating:
        def conv(v):
            if type(v) not in (int, float):
                raise bad_request(f"input '{spec.name}' expects numbers ({want}), got "
                                  f"{_json_type(v)}")
            try:
                return float(v)
            except OverflowError:
                raise bad_request(f"input '{spec.name}': {v} is out of range for {want}")
        return conv
    if want == "bool":
        def conv(v):
            if type(v) is not bool:
                raise bad_request(f"input '{spec.name}' expects booleans, got {_json_type(v)}")
            return v
        return conv
    raise bad_request(f"input '{spec.name}' has dtype {want}, which JSON requests cannot carry")


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _fast_json_to_array(value, spec: InputSpec, rank: int) -> Optional[np.ndarray]:
    """The common case (rank 1 or 2, rectangular, plain leaves of the right type) without the
    per-element walk; None means: take the checking path (which also words the errors)."""
    if type(value) is not list or not value or rank not in (1, 2):
        return None
    if rank == 2:
        width = len(value[0]) if type(value[0]) is list else -1
        if width <= 0 or not all(type(row) is list and len(row) == width for row in value):
            return None
        flat = list(itertools.chain.from_iterable(value))
        shape = (len(value), width)
    else:
        flat, shape = value, (len(value),)
    want = spec.dtype.name
    try:
        if want == "string":
            if not all(type(x) is str for x in flat):
                return None
            arr = np.empty(len(flat), dtype=object)
            arr[:] = [x.encode("utf-8") for x in flat]
        elif want == "int64":
            if not all(type(x) is int for x in flat):
                return None
            arr = np.array(flat, dtype=spec.np_dtype)  # OverflowError when out of range
        elif spec.dtype.is_floating:
            if not all(type(x) is float or type(x) is int for x in flat):
                return None
            arr = np.array(flat, dtype=spec.np_dtype)
        else:
            return None
    except (OverflowError, ValueError, UnicodeError):
        return None
    return arr.reshape(shape)


def json_to_array(value, spec: InputSpec) -> np.ndarray:
    """A JSON value (nested lists) -> a numpy array of the spec's dtype; rank and leaf types are
    checked here, the dimensions in `SignatureInfo.validate`."""
    rank = len(spec.shape)
    fast = _fast_json_to_array(value, spec, rank)
    if fast is not None:
        return fast
    shape, node = [], value
    while isinstance(node, list):
        if len(shape) > rank:
            break
        shape.append(len(node))
        if not node:
            break
        node = node[0]
    if len(shape) != rank:
        more = "+" if len(shape) > rank else ""
        raise bad_request(f"input '{spec.name}' has rank {len(shape)}{more}, signature expects "
                          f"{spec.describe()}")
    conv = _leaf_converter(spec)
    flat: List[Any] = []

    def walk(node, depth):
        if depth == rank:
            if isinstance(node, list):
                raise bad_request(f"input '{spec.name}' is nested deeper than {spec.describe()}")
            flat.append(conv(node))
            return
        if not isinstance(node, list) or len(node) != shape[depth]:
            raise bad_request(f"input '{spec.name}' is not a rectangular array of shape {shape} "
                              f"(ragged lists or mixed scalars and lists)")
        for child in node:
            walk(child, depth + 1)

    walk(value, 0)
    if spec.dtype.name == "string":
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
    else:
        arr = np.asarray(flat, dtype=spec.np_dtype)
    return arr.reshape(shape)


def _column(value, spec: InputSpec) -> np.ndarray:
    return json_to_array(value, spec)


def parse_json_request(sig_lookup: Callable[[str], SignatureInfo], body: Any):
    """A REST :predict body -> (SignatureInfo, validated arrays, 'row' or 'columnar')."""
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, got {_json_type(body)}")
    sig_name = body.get("signature_name", "serving_default")
    if not isinstance(sig_name, str):
        raise bad_request("'signature_name' must be a string")
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows and has_cols:
        raise bad_request("send either 'instances' (row format) or 'inputs' (columnar format), "
                          "not both")
    if not has_rows and not has_cols:
        raise bad_request("missing 'instances' (row format) or 'inputs' (columnar format)")
    sig = sig_lookup(sig_name or "serving_default")
    names = list(sig.inputs)
    if has_rows:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise bad_request(f"'instances' must be a list, got {_json_type(instances)}")
        if not instances:
            raise bad_request("'instances' is empty: send at least one instance")
        columns: Dict[str, list] = {}
        if len(names) == 1 and not all(isinstance(i, dict) and not _is_b64(i) for i in instances):
            columns[names[0]] = instances  # bare values for a single-input signature
        else:
            keys = None
            for n, inst in enumerate(instances):
                if not isinstance(inst, dict) or _is_b64(inst):
                    raise bad_request(f"instance {n} must be an object of named inputs "
                                      f"({', '.join(names)}), got {_json_type(inst)}")
                if keys is None:
                    keys = set(inst)
                    sig.check_names(keys)
                elif set(inst) != keys:
                    sig.check_names(inst)
                    raise bad_request(f"instance {n} names different inputs than instance 0")
            columns = {k: [inst[k] for inst in instances] for k in names}
        arrays = {k: _column(v, sig.inputs[k]) for k, v in columns.items()}
        return sig, sig.validate(arrays), "row"
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        sig.check_names(inputs)
        arrays = {k: _column(v, sig.inputs[k]) for k, v in inputs.items()}
    elif len(names) == 1 and inputs is not None:
        arrays = {names[0]: _column(inputs, sig.inputs[names[0]])}
    else:
        raise bad_request(f"'inputs' must be an object of named inputs ({', '.join(names)}), got "
                          f"{_json_type(inputs)}")
    return sig, sig.validate(arrays), "columnar"


# --- numpy -> JSON ----------------------------------------------------------------------------
def _to_json_value(name: str, arr: np.ndarray):
    if arr.dtype.kind in ("O", "S"):
        def dec(v):
            if isinstance(v, bytes):
                if name.endswith("_bytes"):
                    return {"b64": base64.b64encode(v).decode("ascii")}
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    return {"b64": base64.b64encode(v).decode("ascii")}
            return v

        def rec(a):
            return [rec(x) for x in a] if isinstance(a, np.ndarray) and a.ndim else dec(
                a.item() if isinstance(a, np.ndarray) else a)
        return rec(arr)
    return arr.tolist()


def format_json_response(outputs: Dict[str, np.ndarray], fmt: str) -> dict:
    """TF Serving's REST response: one output -> the name is omitted."""
    names = sorted(outputs)
    if fmt == "columnar":
        if len(names) == 1:
            return {"outputs": _to_json_value(names[0], outputs[names[0]])}
        return {"outputs": {k: _to_json_value(k, outputs[k]) for k in names}}
    if len(names) == 1:
        return {"predictions": _to_json_value(names[0], outputs[names[0]])}
    columns = {k: _to_json_value(k, outputs[k]) for k in names}
    n = len(next(iter(columns.values())))
    return {"predictions": [{k: columns[k][i] for k in names} for i in range(n)]}
