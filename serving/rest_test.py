"""The REST contract against a server started on 127.0.0.1 (serving/conftest.py)."""
import base64
import json
import random

import httpx
import numpy as np
import pytest

from serving.conftest import SERVER_MAX_BODY_BYTES, instance, reference_scores

PREDICT = "/v1/models/semids:predict"


@pytest.fixture(scope="module")
def http(served):
    with httpx.Client(base_url=served.rest_url, timeout=30) as client:
        yield client


def _instances(n, seed=0, H=5):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(0, H)
        out.append(instance(user=str(rng.randint(1, 900)), item=str(rng.randint(1, 1700)),
                            history=[str(rng.randint(1, 1700)) for _ in range(k)],
                            labels=[rng.randint(0, 1) for _ in range(k)], H=H))
    return out


def test_row_format_equals_in_process_serving_default(http, in_process):
    instances = _instances(37)
    r = http.post(PREDICT, json={"instances": instances})
    assert r.status_code == 200, r.text
    got = np.array(r.json()["predictions"])  # one output: bare values, the name omitted
    want = reference_scores(in_process["b"], instances)  # version 2 (model b) is the newest
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert len(set(np.round(want, 4))) > 10  # the inputs matter


def test_row_and_columnar_formats_agree(http, in_process):
    instances = _instances(9, seed=1)
    rows = http.post(PREDICT, json={"signature_name": "serving_default", "instances": instances})
    cols = http.post(PREDICT, json={"inputs": {k: [i[k] for i in instances] for k in instances[0]}})
    assert rows.status_code == cols.status_code == 200, (rows.text, cols.text)
    assert set(cols.json()) == {"outputs"}
    np.testing.assert_allclose(rows.json()["predictions"], cols.json()["outputs"], atol=1e-7)


def test_versions_labels_and_b64(http, in_process):
    instances = _instances(4, seed=2)
    for path, model in (("/v1/models/semids/versions/1:predict", "a"),
                        ("/v1/models/semids/versions/2:predict", "b"),
                        ("/v1/models/semids/labels/stable:predict", "a"),
                        ("/v1/models/semids/labels/canary:predict", "b")):
        r = http.post(path, json={"instances": instances})
        assert r.status_code == 200, (path, r.text)
        np.testing.assert_allclose(r.json()["predictions"],
                                   reference_scores(in_process[model], instances), atol=1e-5)
    b64 = [dict(i, user_id={"b64": base64.b64encode(i["user_id"].encode()).decode()})
           for i in instances]
    r = http.post(PREDICT, json={"instances": b64})
    np.testing.assert_allclose(r.json()["predictions"],
                               reference_scores(in_process["b"], instances), atol=1e-5)


def test_serving_by_sid_and_tf_example(http, in_process):
    import tensorflow as tf
    instances = [dict(i, semantic_id=[3, 1, n], content_embedding=[0.5, -1.0, 0.25, n / 10])
                 for n, i in enumerate(_instances(5, seed=3))]
    r = http.post(PREDICT, json={"signature_name": "serving_by_sid", "instances": instances})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"],
                               reference_scores(in_process["b"], instances, "serving_by_sid"),
                               atol=1e-5)
    plain = _instances(3, seed=4)
    examples = []
    for i in plain:
        feats = {k: tf.train.Feature(bytes_list=tf.train.BytesList(
                     value=[v.encode() for v in (i[k] if isinstance(i[k], list) else [i[k]])]))
                 for k in ("user_id", "item_id", "history")}
        feats["history_labels"] = tf.train.Feature(
            int64_list=tf.train.Int64List(value=i["history_labels"]))
        ex = tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()
        examples.append({"b64": base64.b64encode(ex).decode()})
    # a single-input signature: bare values in the row format
    r = http.post(PREDICT, json={"signature_name": "serving_tf_example", "instances": examples})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"],
                               reference_scores(in_process["b"], plain), atol=1e-5)


def test_metadata_lists_signatures(http):
    r = http.get("/v1/models/semids/metadata")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_spec"] == {"name": "semids", "signature_name": "", "version": "2"}
    defs = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "serving_tf_example", "serving_by_sid"} <= set(defs)
    history = defs["serving_default"]["inputs"]["history"]
    assert history["dtype"] == "DT_STRING"
    assert [d["size"] for d in history["tensor_shape"]["dim"]] == ["-1", "5"]
    assert defs["serving_by_sid"]["inputs"]["content_embedding"]["dtype"] == "DT_FLOAT"
    assert defs["serving_default"]["outputs"]["score"]["dtype"] == "DT_FLOAT"
    assert defs["serving_default"]["method_name"] == "tensorflow/serving/predict"
    v1 = http.get("/v1/models/semids/labels/stable/metadata").json()
    assert v1["model_spec"]["version"] == "1"


def test_model_status(http):
    r = http.get("/v1/models/semids")
    assert r.status_code == 200
    assert r.json() == {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in ("2", "1")]}
    assert http.get("/v1/models/semids/versions/1").json()["model_version_status"][0][
        "version"] == "1"
    assert http.get("/v1/models/semids/labels/canary").json()["model_version_status"][0][
        "version"] == "2"
    r = http.get("/v1/models/semids/versions/7")
    assert r.status_code == 404 and "error" in r.json()


def test_errors_are_json_4xx(http):
    cases = [
        ("POST", "/v1/models/other:predict", {"instances": _instances(1)}, 404, "other"),
        ("POST", "/v1/models/semids/versions/9:predict", {"instances": _instances(1)}, 404,
         "Specific(semids, 9)"),
        ("POST", "/v1/models/semids/labels/nope:predict", {"instances": _instances(1)}, 400,
         "label"),
        ("POST", PREDICT, {"signature_name": "nope", "instances": _instances(1)}, 400, "nope"),
        ("POST", PREDICT, {"instances": [{"user_id": "1", "item_id": "2"}]}, 400,
         "missing input(s) history, history_labels"),
        ("POST", PREDICT, {"instances": [dict(_instances(1)[0], extra=1)]}, 400,
         "unknown input(s) extra"),
        ("POST", PREDICT, {"instances": [dict(_instances(1)[0], history=["1"])]}, 400,
         "pad or truncate"),
        ("POST", PREDICT, {"instances": []}, 400, "empty"),
        ("GET", PREDICT, None, 400, "Malformed request: GET"),
        ("GET", "/v1/nothing", None, 400, "Malformed request"),
    ]
    for method, path, body, status, text in cases:
        r = http.request(method, path, json=body)
        assert r.status_code == status, (path, body, r.text)
        assert text in r.json()["error"], r.json()
    big = b'{"instances": ["' + b"x" * (SERVER_MAX_BODY_BYTES + 10) + b'"]}'
    r = http.post(PREDICT, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]


# TF Serving 2.16's answers (model_servers/http_rest_api_util.cc: the URL patterns are
# case-insensitive, names, labels, the verb and the subresource compare exactly; server_core.cc:
# an unknown label is INVALID_ARGUMENT; http_server.cc: INVALID_ARGUMENT -> 400, NOT_FOUND -> 404).
TF_SERVING_STATUS = [
    # (method, path, body, TF Serving's status)
    ("POST", "/v1/models/semids/labels/nope:predict", "good", 400),  # unknown label
    ("POST", PREDICT, "unknown signature", 400),
    ("GET", PREDICT, None, 400),  # wrong method: "Malformed request"
    ("PUT", PREDICT, "good", 400),
    ("DELETE", "/v1/models/semids", None, 400),
    ("POST", "/v1/models/semids", "good", 400),
    ("GET", "/v1/models", None, 400),  # no model name
    ("GET", "/v1/models/", None, 400),
    ("GET", "/v1/nothing", None, 400),  # an unknown /v1/ path
    ("POST", "/v1/models/semids:explain", "good", 400),
    ("POST", "/v1/models/semids/versions/abc:predict", "good", 400),
    ("POST", "/V1/MODELS/semids:predict", "good", 200),  # the pattern is case-insensitive
    ("POST", "/v1/Models/semids/Versions/1:predict", "good", 200),
    ("POST", "/v1/models/semids/LABELS/stable:predict", "good", 200),
    ("GET", "/V1/MODELS/semids/METADATA", None, 200),  # a status request: "METADATA" != "metadata"
    ("POST", "/v1/models/semids:PREDICT", "good", 400),  # the verb compares exactly
    ("POST", "/v1/models/SEMIDS:predict", "good", 404),  # model names are case-sensitive
    ("POST", "/v1/models/semids/labels/STABLE:predict", "good", 400),  # so are labels
    ("POST", "/v1/models/semids/versions/9:predict", "good", 404),  # unknown version
    ("GET", "/v1/models/semids/versions/9", None, 404),
    ("POST", "/v1/models/other:predict", "good", 404),  # unknown model
    ("GET", "/v2/models/semids", None, 404),  # outside /v1/: no handler
]


@pytest.mark.parametrize("method,path,body,status", TF_SERVING_STATUS)
def test_status_codes_are_tf_servings(http, method, path, body, status):
    payload = {"good": {"instances": _instances(1)},
               "unknown signature": {"signature_name": "nope", "instances": _instances(1)}}.get(body)
    r = http.request(method, path, json=payload)
    assert r.status_code == status, (method, path, r.text)
    if status != 200:
        assert r.json()["error"], r.text
    if path == "/V1/MODELS/semids/METADATA":
        assert "model_version_status" in r.json()


# --- fuzz ---------------------------------------------------------------------------------------
_WRONG_SCALAR = [5, 1.5, True, None, [], ["1"], {"x": 1}, {"b64": "!!"}, {"b64": 3},
                 {"b64": "QQ==", "y": 1}]
_WRONG_LIST_ITEM = [5, 1.5, None, [], {"x": 1}, ["a"], {"b64": "***"}]
_WRONG_LABEL = ["1", 1.5, None, True, [], {"b64": "AQ=="}, 2 ** 70, -(2 ** 70), float("inf")]


def _fuzz_cases(n, seed=1234, H=5):
    """`n` malformed (method, path, body bytes) triples, every one of them invalid by design."""
    rng = random.Random(seed)

    def good():
        return {"instances": _instances(rng.randint(1, 4), seed=rng.random(), H=H)}

    def dumps(x):
        return json.dumps(x).encode()

    def truncated():
        s = dumps(good())
        return "POST", PREDICT, s[:rng.randrange(0, len(s) - 1)]

    def broken_syntax():
        s = bytearray(dumps(good()))
        spots = [i for i, c in enumerate(s) if chr(c) in '{}[]:,"']
        s[rng.choice(spots)] = ord(rng.choice(";#@'"))
        return "POST", PREDICT, bytes(s)

    def bad_bytes():
        s = dumps(good())
        i = rng.randrange(0, len(s))
        junk = rng.choice([b"\xff\xfe", b"\xc3\x28", b"\x00", b"\x80"])
        return "POST", PREDICT, s[:i] + junk + s[i:]

    def not_an_object():
        return "POST", PREDICT, dumps(rng.choice([[], [1, 2], "instances", 42, None, True, 1.5,
                                                  [{"instances": []}]]))

    def missing_feature():
        body = good()
        key = rng.choice(["user_id", "item_id", "history", "history_labels"])
        for inst in (body["instances"] if rng.random() < 0.5 else body["instances"][:1]):
            del inst[key]
        return "POST", PREDICT, dumps(body)

    def extra_feature():
        body = good()
        body["instances"][rng.randrange(len(body["instances"]))][
            rng.choice(["foo", "label", "semantic_id", "User_Id", ""])] = rng.choice([1, "x", [1]])
        return "POST", PREDICT, dumps(body)

    def wrong_type():
        body = good()
        inst = body["instances"][rng.randrange(len(body["instances"]))]
        key = rng.choice(["user_id", "item_id", "history", "history_labels"])
        if key in ("user_id", "item_id"):
            inst[key] = rng.choice(_WRONG_SCALAR)
        elif key == "history":
            choice = rng.randrange(5)
            if choice == 0:
                inst[key][rng.randrange(H)] = rng.choice(_WRONG_LIST_ITEM)
            elif choice == 1:
                inst[key] = inst[key][:rng.randrange(H)]
            elif choice == 2:
                inst[key] = inst[key] + [""] * rng.randint(1, 3)
            elif choice == 3:
                inst[key] = rng.choice(["1", 7, None, {"b64": "MQ=="}])
            else:
                inst[key] = [inst[key]]
        else:
            choice = rng.randrange(4)
            if choice == 0:
                inst[key][rng.randrange(H)] = rng.choice(_WRONG_LABEL)
            elif choice == 1:
                inst[key] = inst[key][: rng.randrange(H)]
            elif choice == 2:
                inst[key] = rng.choice([0, "0", [[0] * H], None])
            else:
                inst[key] = inst[key] + [0]
        return "POST", PREDICT, json.dumps(body, allow_nan=True).encode()

    def empty():
        return "POST", PREDICT, dumps(rng.choice([
            {"instances": []}, {"inputs": {}}, {"instances": None}, {"inputs": None},
            {"instances": {}}, {}, {"signature_name": "serving_default"},
            {"inputs": {k: [] for k in ("user_id", "item_id", "history", "history_labels")}},
            {"instances": [{}]}, {"instances": [[]]}]))

    def both_formats():
        body = good()
        body["inputs"] = {k: [i[k] for i in body["instances"]] for k in body["instances"][0]}
        return "POST", PREDICT, dumps(body)

    def bad_columnar():
        body = good()
        cols = {k: [i[k] for i in body["instances"]] for k in body["instances"][0]}
        choice = rng.randrange(4)
        if choice == 0:
            cols["item_id"] = cols["item_id"] + ["extra"]  # batch sizes differ
        elif choice == 1:
            cols["history"][0] = cols["history"][0][:-1]  # ragged
        elif choice == 2:
            del cols[rng.choice(list(cols))]
        else:
            cols["history_labels"] = "0"
        return "POST", PREDICT, dumps({"inputs": cols})

    def wrong_signature():
        body = good()
        body["signature_name"] = rng.choice(["nope", "serving", "__saved_model_init_op",
                                             "serving_tf_example", "serving_by_sid", 5, None,
                                             ["serving_default"], ""])
        if body["signature_name"] == "":
            body["instances"][0]["history"] = ["1"]  # "" means the default: make it bad anyway
        return "POST", PREDICT, dumps(body)

    def wrong_url():
        method, path = rng.choice([
            ("POST", "/v1/models/semids/versions/999:predict"),
            ("POST", "/v1/models/semids/versions/abc:predict"),
            ("POST", "/v1/models/semids/versions/-1:predict"),
            ("POST", "/v1/models/semids/labels/nope:predict"),
            ("POST", "/v1/models/nope:predict"),
            ("POST", "/v1/models/semids:classify"),
            ("POST", "/v1/models/semids:predictx"),
            ("POST", "/v1/models/semids/versions/1/labels/stable:predict"),
            ("POST", "/v1/models/semids:predict/extra"),
            ("POST", "/v1/models/semids/metadata"),
            ("GET", "/v1/models/semids:predict"),
            ("PUT", PREDICT),
            ("DELETE", "/v1/models/semids"),
            ("POST", "/v2/models/semids:predict"),
            ("GET", "/v1/models/semids/versions/99999999999999999999"),
        ])
        return method, path, dumps(good())

    def oversized():
        pad = "x" * (SERVER_MAX_BODY_BYTES + rng.randint(1, 5000))
        return "POST", PREDICT, dumps({"instances": [dict(_instances(1)[0], user_id=pad)]})

    def deep():
        d = rng.choice([3, 50, 5000])
        return "POST", PREDICT, dumps({"instances": [dict(_instances(1)[0])]}).replace(
            b'"history": [', b'"history": ' + b"[" * d, 1).replace(
            b'], "history_labels"', b"]" * d + b', "history_labels"', 1)

    def by_sid_bad():
        body = good()
        body["signature_name"] = "serving_by_sid"
        for inst in body["instances"]:
            inst["semantic_id"] = [1, 2, 3]
            inst["content_embedding"] = [0.1, 0.2, 0.3, 0.4]
        inst = body["instances"][0]
        choice = rng.randrange(5)
        if choice == 4:
            inst["content_embedding"] = [10 ** 400, 0.0, 0.0, 0.0]  # no float holds it
        elif choice == 0:
            inst["semantic_id"] = [1, 2]
        elif choice == 1:
            inst["content_embedding"] = ["a", "b", "c", "d"]
        elif choice == 2:
            inst["semantic_id"] = [1.5, 2, 3]
        else:
            del inst["content_embedding"]
        return "POST", PREDICT, dumps(body)

    def lone_surrogate():
        # a lone UTF-16 surrogate, escaped ("\\ud800") or as raw bytes (ED A0 80), in a string
        # the server must encode: 400, as TF Serving answers
        body = dumps(good())
        bad = rng.choice([b"\\ud800", b"\\udfff", b"x\\udc80y", b"\xed\xa0\x80", b"\xed\xbf\xbf"])
        key = rng.choice([b'"user_id": "', b'"item_id": "', b'"history": ["'])
        return "POST", PREDICT, body.replace(key, key + bad, 1)

    gens = [truncated, broken_syntax, bad_bytes, not_an_object, missing_feature, extra_feature,
            wrong_type, wrong_type, empty, both_formats, bad_columnar, wrong_signature, wrong_url,
            deep, by_sid_bad, lone_surrogate]
    cases = [oversized() for _ in range(5)]
    while len(cases) < n:
        cases.append(rng.choice(gens)())
    return cases


def test_fuzz_malformed_requests_get_json_4xx(http, in_process):
    cases = _fuzz_cases(600)
    assert len(cases) >= 500
    statuses = {}
    for method, path, body in cases:
        r = http.request(method, path, content=body, headers={"content-type": "application/json"})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert 400 <= r.status_code < 500, (method, path, body[:300], r.status_code, r.text[:300])
        payload = r.json()
        assert isinstance(payload, dict) and isinstance(payload.get("error"), str) and \
            payload["error"], (path, body[:300], r.text[:300])
    assert {400, 404, 413} <= set(statuses), statuses
    assert sum(b"\\ud" in body or b"\xed" in body for _, _, body in cases) >= 20
    instances = _instances(3, seed=9)
    r = http.post(PREDICT, json={"instances": instances})  # the server still answers
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["predictions"],
                               reference_scores(in_process["b"], instances), atol=1e-5)
