"""TF Serving's Classify and Regress APIs over a loaded signature: tf.Examples in, per-example
class scores or a value out.

As TF Serving 2.16 (servables/tensorflow/classifier.cc, regressor.cc, util/json_tensor.cc):
- the signature takes exactly one input, `inputs`: serialized tf.Examples ([batch] string);
- classify reads the outputs `classes` (string [batch, C]) and/or `scores` (float [batch, C]);
  regress reads `outputs` (float [batch] or [batch, 1]);
- the REST body is `{"signature_name": ..., "context": {...}, "examples": [{...}, ...]}`; an
  example is a JSON object of features, a value a string, number, bool, `{"b64": ...}` or a list
  of one kind; the context's features go into every example (an example's own win);
- the answer is `{"results": [[[label, score], ...], ...]}` (classify) or
  `{"results": [value, ...]}` (regress).
A signature of another shape (serving_default, when the call names none) is a 400.
"""
import base64
import binascii
from typing import Dict, List, Optional, Sequence

import numpy as np

from serving.errors import bad_request
from serving.signatures import SignatureInfo, utf8

CLASSIFY, REGRESS = "classify", "regress"
INPUTS = "inputs"  # TF Serving's kClassifyInputs / kRegressInputs
CLASSES, SCORES = "classes", "scores"
OUTPUTS = "outputs"  # kRegressOutputs


def check_signature(sig: SignatureInfo, method: str) -> None:
    """TF Serving's PreProcessClassification / PreProcessRegression checks."""
    if len(sig.inputs) != 1:
        raise bad_request(f"Expected one input Tensor. (signature '{sig.name}' takes "
                          f"{sig.describe_inputs()}; :{method} needs a signature whose one input "
                          f"'{INPUTS}' takes serialized tf.Examples)")
    if INPUTS not in sig.inputs:
        raise bad_request(f"No {'classification' if method == CLASSIFY else 'regression'} "
                          f"inputs found in signature '{sig.name}' (it takes "
                          f"{sig.describe_inputs()})")
    if method == CLASSIFY:
        if len(sig.outputs) not in (1, 2):
            raise bad_request(f"Expected one or two output Tensors, found {len(sig.outputs)}")
        if CLASSES not in sig.outputs and SCORES not in sig.outputs:
            raise bad_request(f"Expected classification signature outputs to contain at least "
                              f"one of \"{CLASSES}\" or \"{SCORES}\" (signature '{sig.name}' has "
                              f"{', '.join(sig.outputs)})")
    else:
        if len(sig.outputs) != 1:
            raise bad_request(f"Expected one output Tensor. (signature '{sig.name}' has "
                              f"{', '.join(sig.outputs)})")
        if OUTPUTS not in sig.outputs:
            raise bad_request(f"No regression outputs found in signature '{sig.name}' (it has "
                              f"{', '.join(sig.outputs)})")


# --- JSON examples -> serialized tf.Examples -------------------------------------------------
def _feature_values(name: str, value) -> Dict[str, list]:
    """One JSON feature value (or list of values) -> {"bytes"|"float"|"int64": [...]}, one kind,
    as TF Serving's AddValueToFeature."""
    kind, values = None, []
    for v in (value if isinstance(value, list) else [value]):
        if isinstance(v, bool):
            k, x = "int64", int(v)
        elif isinstance(v, str):
            k, x = "bytes", utf8(v, name)
        elif isinstance(v, dict) and len(v) == 1 and "b64" in v and isinstance(v["b64"], str):
            try:
                k, x = "bytes", base64.b64decode(v["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise bad_request(f"Feature: {name} has an invalid base64 value")
        elif isinstance(v, float):
            k, x = "float", v
        elif isinstance(v, int):
            if not -2 ** 63 <= v < 2 ** 63:
                raise bad_request(f"Feature: {name} has an int64 out of range: {v}")
            k, x = "int64", v
        else:
            raise bad_request(f"Feature: {name} has element with unexpected JSON type: "
                              f"{type(v).__name__ if v is not None else 'null'}")
        if kind is not None and k != kind:
            raise bad_request(f"Unexpected element type in feature: {name} expecting type: "
                              f"{kind}")
        kind = k
        values.append(x)
    return {kind or "bytes": values}


def _example_features(obj, what: str) -> Dict[str, Dict[str, list]]:
    if not isinstance(obj, dict):
        raise bad_request(f"{what} must be JSON object but got JSON {type(obj).__name__}")
    return {str(name): _feature_values(str(name), value) for name, value in obj.items()}


def _serialize(feats: Dict[str, Dict[str, list]]) -> bytes:
    import tensorflow as tf
    out = {}
    for name, kinds in feats.items():
        (kind, values), = kinds.items()
        try:
            if kind == "bytes":
                out[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
            elif kind == "float":
                out[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
            else:
                out[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        except (ValueError, TypeError, OverflowError) as e:
            raise bad_request(f"Feature: {name}: {e}")
    return tf.train.Example(features=tf.train.Features(feature=out)).SerializeToString()


def examples_from_json(body) -> List[bytes]:
    """The serialized tf.Examples of a REST :classify / :regress body (context merged in)."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object with 'examples'")
    context = _example_features(body["context"], "context") if "context" in body else {}
    if "examples" not in body:
        raise bad_request("key 'examples' is expected and was not found")
    examples = body["examples"]
    if not isinstance(examples, list):
        raise bad_request("Expecting 'examples' value to be an list/array")
    if not examples:
        raise bad_request("'examples' value is an empty array")
    return [_serialize({**context, **_example_features(e, "Example")}) for e in examples]


def examples_from_input_proto(input_proto) -> List[bytes]:
    """The serialized tf.Examples of a gRPC ClassificationRequest / RegressionRequest `input`
    (ExampleList, or ExampleListWithContext: each example merged over the context)."""
    which = input_proto.WhichOneof("kind")
    if which == "example_list":
        examples = [e.SerializeToString() for e in input_proto.example_list.examples]
    elif which == "example_list_with_context":
        lwc = input_proto.example_list_with_context
        context = lwc.context.SerializeToString()
        # Concatenated messages parse as one merged message: the example's features win.
        examples = [context + e.SerializeToString() for e in lwc.examples]
    else:
        raise bad_request("Input is empty: give an example_list or example_list_with_context")
    if not examples:
        raise bad_request("Input is empty: no examples")
    return examples


# --- running and results -----------------------------------------------------------------------
def run(sig: SignatureInfo, method: str, examples: Sequence[bytes]) -> Dict[str, np.ndarray]:
    check_signature(sig, method)
    arrays = sig.validate({INPUTS: np.array(list(examples), dtype=object)})
    return sig.run(arrays)


def classifications(outputs: Dict[str, np.ndarray], n: int) -> List[List[tuple]]:
    """[[(label, score), ...] per example]: the label "" without `classes`, the score 0 without
    `scores` (as TF Serving's ClassificationResult)."""
    classes: Optional[np.ndarray] = outputs.get(CLASSES)
    scores: Optional[np.ndarray] = outputs.get(SCORES)
    for name, arr in ((CLASSES, classes), (SCORES, scores)):
        if arr is not None and (arr.ndim != 2 or arr.shape[0] != n):
            raise ValueError(f"the model's '{name}' output has shape {list(arr.shape)}, "
                             f"expected [{n}, num_classes]")
    width = (classes if classes is not None else scores).shape[1]
    result = []
    for i in range(n):
        row = []
        for c in range(width):
            label = classes[i, c] if classes is not None else b""
            label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            row.append((label, float(scores[i, c]) if scores is not None else 0.0))
        result.append(row)
    return result


def regressions(outputs: Dict[str, np.ndarray], n: int) -> List[float]:
    values = outputs[OUTPUTS]
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != n:
        raise ValueError(f"the model's '{OUTPUTS}' output has shape {list(values.shape)}, "
                         f"expected [{n}] or [{n}, 1]")
    return [float(v) for v in values]
