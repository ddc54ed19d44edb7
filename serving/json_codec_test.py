"""JSON <-> numpy by TF Serving's REST rules, without a server."""
import numpy as np
import pytest
import tensorflow as tf

from serving.errors import ServingError
from serving.json_codec import format_json_response, json_to_array, parse_json_request
from serving.signatures import InputSpec, SignatureInfo


def _sig(**specs):
    return SignatureInfo("sig", None, {k: InputSpec(k, dtype, shape)
                                       for k, (dtype, shape) in specs.items()}, ["out"])


def test_response_shapes():
    one = {"score": np.array([0.5, 0.25], np.float32)}
    assert format_json_response(one, "row") == {"predictions": [0.5, 0.25]}
    assert format_json_response(one, "columnar") == {"outputs": [0.5, 0.25]}
    two = {"score": np.array([0.5, 0.25], np.float32),
           "ids_bytes": np.array([b"\x00\x01", b"a"], dtype=object),
           "name": np.array([b"x", b"\xff"], dtype=object)}
    rows = format_json_response(two, "row")["predictions"]
    assert rows[0] == {"score": 0.5, "ids_bytes": {"b64": "AAE="}, "name": "x"}
    assert rows[1]["name"] == {"b64": "/w=="}  # not UTF-8: base64 too
    cols = format_json_response(two, "columnar")["outputs"]
    assert cols["score"] == [0.5, 0.25] and cols["ids_bytes"][1] == {"b64": "YQ=="}


def test_single_input_bare_values_and_b64():
    sig = _sig(examples=(tf.string, (None,)))
    got, arrays, fmt = parse_json_request(lambda name: sig,
                                          {"instances": ["a", {"b64": "AAE="}]})
    assert fmt == "row" and list(arrays["examples"]) == [b"a", b"\x00\x01"]
    _, arrays, fmt = parse_json_request(lambda name: sig, {"inputs": ["a"]})
    assert fmt == "columnar" and list(arrays["examples"]) == [b"a"]
    _, arrays, _ = parse_json_request(lambda name: sig, {"instances": [{"examples": "z"}]})
    assert list(arrays["examples"]) == [b"z"]


def test_leaf_and_shape_checks():
    ints = InputSpec("x", tf.int64, (None, 2))
    assert json_to_array([[1, 2], [3, 4]], ints).dtype == np.int64
    floats = InputSpec("f", tf.float32, (None, 2))
    assert json_to_array([[1, 2.5]], floats).tolist() == [[1.0, 2.5]]
    for bad in ([[1, 2.5]], [[1, True]], [[1, "2"]], [[1, 2 ** 70]], [[1], [2, 3]], [1, 2],
                [[[1, 2]]], [[1, None]]):
        with pytest.raises(ServingError) as e:
            json_to_array(bad, ints)
        assert e.value.status == 400
    with pytest.raises(ServingError):
        json_to_array([[10 ** 400, 1]], floats)
    sig = _sig(x=(tf.int64, (None, 2)))
    with pytest.raises(ServingError, match="shape"):
        sig.validate({"x": np.zeros((2, 3), np.int64)})
    with pytest.raises(ServingError, match="empty"):
        sig.validate({"x": np.zeros((0, 2), np.int64)})
