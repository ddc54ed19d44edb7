"""End-to-end: the shared small synthetic pipeline run (tests/conftest.py) through Pusher."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import path_utils

from pipeline import baselines, mlmd, probes, report
from schemas import features

pytestmark = pytest.mark.e2e

METRICS_KEYS = ("dataset", "representation", "auc_overall", "auc_new_items", "auc_existing_items",
                "num_train", "num_eval", "num_new_item_eval", "pushed_model_dir", "seconds")


def test_metrics_json_has_the_contract_keys(e2e_run):
    config, metrics, _ = e2e_run
    with open(os.path.join(config.results_path, report.METRICS_FILE)) as f:
        on_disk = json.load(f)
    for key in METRICS_KEYS:
        assert on_disk.get(key) is not None, key
    assert 0.0 <= on_disk["auc_overall"] <= 1.0
    assert on_disk["num_train"] > 0 and on_disk["num_eval"] > 0
    assert on_disk["num_new_item_eval"] > 0
    assert on_disk["representation"] == features.RANDOM_HASH
    # The Evaluator's slices by the row flags InteractionFeatures adds.
    for key in ("auc_tail", "auc_new_users", "auc_warm_users"):
        assert key in on_disk, key
        assert on_disk[key] is None or 0.0 <= on_disk[key] <= 1.0, key
    assert on_disk["auc_warm_users"] is not None
    # A slice of one class has no AUC (TFMA would say 0): null, as for the baselines.
    for key in ("auc_tail", "auc_new_users", "auc_warm_users"):
        if on_disk["baselines"]["baseline_item_rate"][key] is None:
            assert on_disk[key] is None, key

    # The must-beat baselines, by slice.
    assert set(on_disk["baselines"]) == set(baselines.BASELINES)
    for name, aucs in on_disk["baselines"].items():
        assert set(aucs) == set(baselines.BASELINE_AUC_KEYS), name
        assert all(v is None or 0.0 <= v <= 1.0 for v in aucs.values()), (name, aucs)
        assert aucs["auc_overall"] is not None and aucs["auc_new_items"] is not None, name
    # A new item's item rate is the global rate: one score for every new-item row, so the
    # item rate ranks nothing among them.
    assert on_disk["baselines"]["baseline_item_rate"]["auc_new_items"] == 0.5

    # The probes of the Trainer's model (it reads the history).
    assert config.use_history
    assert set(on_disk["probes"]) == set(probes.PROBE_KEYS)
    assert all(0.0 <= on_disk["probes"][k] <= 1.0 for k in probes.PROBE_KEYS), on_disk["probes"]


def test_bad_rows_are_reported_line_by_line_and_the_rest_trains(e2e_run):
    config, metrics, generated = e2e_run
    assert metrics["rows_rejected"]["interactions"] == len(generated["bad_rows"])
    with open(metrics["rejects_files"]["interactions"]) as f:
        rejects = f.read().splitlines()
    for line_no in (b["line"] for b in generated["bad_rows"]):
        assert any(r.startswith(f"{features.INTERACTIONS_FILE}:{line_no}:") for r in rejects), rejects
    assert metrics["num_train"] + metrics["num_validation"] + metrics["num_eval"] > 0


def test_pushed_model_is_a_numbered_version_under_the_serving_dir(e2e_run):
    config, metrics, _ = e2e_run
    pushed = metrics["pushed_model_dir"]
    assert pushed and os.path.dirname(pushed.rstrip("/")) == config.serving_model_dir
    assert os.path.basename(pushed.rstrip("/")).isdigit()
    assert os.path.exists(os.path.join(pushed, "saved_model.pb"))


def _eval_rows(config, n=40):
    """Raw eval rows from InteractionFeatures' output."""
    outputs = mlmd.latest_run_outputs(config)
    uri = outputs["InteractionFeatures"]["examples"][0].uri
    files = sorted(glob.glob(os.path.join(uri, f"Split-{features.EVAL}", "*")))
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").take(n)
    return [tf.train.Example.FromString(x.numpy()) for x in ds]


def _named_inputs(examples, history_length):
    def s(ex, k):
        return [v.decode() for v in ex.features.feature[k].bytes_list.value]

    def i(ex, k):
        return list(ex.features.feature[k].int64_list.value)

    hist = [(s(e, features.HISTORY) + [""] * history_length)[:history_length] for e in examples]
    labels = [(i(e, features.HISTORY_LABELS) + [0] * history_length)[:history_length] for e in examples]
    return {
        features.USER_ID: [s(e, features.USER_ID)[0] for e in examples],
        features.ITEM_ID: [s(e, features.ITEM_ID)[0] for e in examples],
        features.HISTORY: hist, features.HISTORY_LABELS: labels,
    }


SCORE_SCRIPT = r"""
import json, sys, os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops of the Transform graph
model = tf.saved_model.load(sys.argv[1])
req = json.load(open(sys.argv[2]))
named = req["named"]
f = model.signatures["serving_default"]
a = f(user_id=tf.constant(named["user_id"]), item_id=tf.constant(named["item_id"]),
      history=tf.constant(named["history"]), history_labels=tf.constant(named["history_labels"], tf.int64))
g = model.signatures["serving_tf_example"]
b = g(examples=tf.constant([bytes.fromhex(x) for x in req["examples"]]))
json.dump({"named": a["score"].numpy().tolist(), "examples": b["score"].numpy().tolist(),
           "signatures": sorted(model.signatures.keys())}, sys.stdout)
"""


def _score_in_fresh_process(tmp_path, script: str, model_dir: str, payload: dict) -> dict:
    """Runs `script` (a SavedModel dir and a JSON request file as arguments) in a new Python
    process, as a server would load the pushed model, and returns the JSON it prints."""
    request = tmp_path / "request.json"
    request.write_text(json.dumps(payload))
    script_path = tmp_path / "score.py"
    script_path.write_text(script)
    out = subprocess.run([sys.executable, str(script_path), model_dir, str(request)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_pushed_model_reloads_in_a_fresh_process_with_the_trained_scores(e2e_run, tmp_path):
    config, metrics, _ = e2e_run
    examples = _eval_rows(config)
    named = _named_inputs(examples, config.history_length)
    fresh = _score_in_fresh_process(tmp_path, SCORE_SCRIPT, metrics["pushed_model_dir"], {
        "named": named, "examples": [e.SerializeToString().hex() for e in examples]})
    # random_hash reads neither SIDs nor content: no serving_by_sid
    assert set(fresh["signatures"]) == {features.SERVING_DEFAULT_SIGNATURE,
                                        features.SERVING_TF_EXAMPLE_SIGNATURE,
                                        features.REGRESS_SIGNATURE, features.CLASSIFY_SIGNATURE}

    # The Trainer's own export, loaded here, scores the same rows the same way.
    outputs = mlmd.latest_run_outputs(config)
    trained = tf.saved_model.load(path_utils.serving_model_path(outputs["Trainer"]["model"][0].uri))
    expected = trained.signatures[features.SERVING_TF_EXAMPLE_SIGNATURE](
        examples=tf.constant([e.SerializeToString() for e in examples]))[features.PREDICTION_KEY].numpy()
    np.testing.assert_allclose(fresh["examples"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fresh["named"], expected, rtol=1e-5, atol=1e-6)
    assert np.std(expected) > 0  # not a constant model


SID_REPORT_KEYS = ("num_items", "num_levels", "codebook_size", "utilization", "perplexity",
                   "reconstruction_mse", "collisions_before_breaker", "largest_collision_group",
                   "duplicate_sids_after_breaker", "hierarchy_cosine", "random_pair_cosine")


def test_sid_report_is_copied_to_results(e2e_run):
    config, _, generated = e2e_run
    out_dir = os.path.join(config.results_dir, config.dataset_name)
    with open(os.path.join(out_dir, "sid_report.json")) as f:
        sid_report = json.load(f)
    for key in SID_REPORT_KEYS:
        assert key in sid_report, key
    assert sid_report["num_items"] == generated["counts"]["items"]
    assert sid_report["duplicate_sids_after_breaker"] == 0
    assert len(sid_report["utilization"]) == config.rqvae_num_levels
    assert os.path.getsize(os.path.join(out_dir, "sid_report.png")) > 0
    with open(os.path.join(out_dir, "sid_report.md")) as f:
        assert f.read().strip()


def _catalog(config):
    outputs = mlmd.latest_run_outputs(config)
    uri = outputs["SemanticIdGen"]["catalog"][0].uri
    with open(os.path.join(uri, "catalog.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    return outputs, {item_id: [int(c) for c in sid.split(features.SID_SEPARATOR)]
                     for item_id, _, sid in rows}


def test_transform_graph_resolves_the_sid_of_every_catalog_item(e2e_run):
    import tensorflow_transform as tft
    config, _, _ = e2e_run
    outputs, catalog = _catalog(config)
    sid_lengths = {len(v) for v in catalog.values()}
    assert sid_lengths == {config.rqvae_num_levels + 1}  # L codes + the collision breaker
    assert len({tuple(v) for v in catalog.values()}) == len(catalog)  # no duplicate SIDs
    layer = tft.TFTransformOutput(outputs["Transform"]["transform_graph"][0].uri
                                  ).transform_features_layer()
    ids = sorted(catalog)
    empty = tf.sparse.from_dense(tf.zeros([len(ids), 1], tf.string))
    out = layer({features.USER_ID: tf.constant([["u"]] * len(ids)),
                 features.ITEM_ID: tf.constant([[i] for i in ids]),
                 features.HISTORY: empty,
                 features.HISTORY_LABELS: tf.SparseTensor(
                     empty.indices, tf.zeros([0], tf.int64), empty.dense_shape)})
    np.testing.assert_array_equal(out[features.ITEM_SID].numpy(), [catalog[i] for i in ids])
    np.testing.assert_array_equal(out[features.ITEM_CATALOG_ROW].numpy(), np.arange(len(ids)))


def test_changing_the_representation_reruns_only_the_trainer_and_after(e2e_spm_run):
    config, metrics, first = e2e_spm_run
    assert _transform_graph_runs(config) == 1  # Transform's graph is the first run's (cached)
    # the model and its evaluation are new
    assert metrics["evaluation_uri"] != first["evaluation_uri"]
    assert metrics["representation"] == "sid_spm" and metrics["item_table_rows"] == 128
    assert metrics["pushed_model_dir"] and metrics["pushed_model_dir"] != first["pushed_model_dir"]


def _transform_graph_runs(config):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = config.metadata_path
    store = metadata_store.MetadataStore(cfg)
    return len(store.get_artifacts_by_type("TransformGraph"))


def test_pushed_sid_spm_model_scores_a_held_out_new_item(e2e_spm_run, tmp_path):
    config, metrics, _ = e2e_spm_run
    examples = [e for e in _eval_rows(config, n=400)
                if e.features.feature[features.IS_NEW_ITEM].int64_list.value[0] == 1][:5]
    assert examples, "the synthetic eval split has new items"
    named = _named_inputs(examples, config.history_length)
    scores = _score_in_fresh_process(tmp_path, SCORE_SCRIPT, metrics["pushed_model_dir"], {
        "named": named, "examples": [e.SerializeToString().hex() for e in examples]})
    assert len(scores["named"]) == len(examples)
    assert all(0.0 < s < 1.0 for s in scores["named"])
    np.testing.assert_allclose(scores["named"], scores["examples"], rtol=1e-5, atol=1e-6)


BY_SID_SCRIPT = r"""
import json, sys, os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops
model = tf.saved_model.load(sys.argv[1])
req = json.load(open(sys.argv[2]))
named = {k: tf.constant(v) for k, v in req["named"].items()}
named["history_labels"] = tf.cast(named["history_labels"], tf.int64)
by_id = model.signatures["serving_default"](**named)["score"].numpy().tolist()
by_sid = model.signatures["serving_by_sid"](
    **named, semantic_id=tf.constant(req["semantic_id"], tf.int64),
    content_embedding=tf.constant(req["content_embedding"], tf.float32))["score"].numpy().tolist()
# An item unknown to the catalog, brought in by its SID only.
unknown = dict(named, item_id=tf.constant(["never-seen"] * len(by_id)))
by_sid_unknown = model.signatures["serving_by_sid"](
    **unknown, semantic_id=tf.constant(req["semantic_id"], tf.int64),
    content_embedding=tf.constant(req["content_embedding"], tf.float32))["score"].numpy().tolist()
json.dump({"by_id": by_id, "by_sid": by_sid, "by_sid_unknown": by_sid_unknown}, sys.stdout)
"""


def test_serving_by_sid_scores_an_item_from_its_sid_alone(e2e_spm_run, tmp_path):
    config, metrics, _ = e2e_spm_run
    outputs, catalog = _catalog(config)
    embeddings = np.load(os.path.join(outputs["SemanticIdGen"]["catalog"][0].uri, "embeddings.npy"))
    rows = {item_id: i for i, item_id in enumerate(sorted(catalog))}
    examples = [e for e in _eval_rows(config, n=400)
                if e.features.feature[features.IS_NEW_ITEM].int64_list.value[0] == 1][:5]
    named = _named_inputs(examples, config.history_length)
    items = named[features.ITEM_ID]
    scores = _score_in_fresh_process(tmp_path, BY_SID_SCRIPT, metrics["pushed_model_dir"], {
        "named": named, "semantic_id": [catalog[i] for i in items],
        "content_embedding": [embeddings[rows[i]].tolist() for i in items]})
    # A catalog item's SID given explicitly scores as its id does (sid_spm: the SID is all it uses).
    np.testing.assert_allclose(scores["by_sid"], scores["by_id"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores["by_sid_unknown"], scores["by_id"], rtol=1e-5, atol=1e-6)


def test_exported_graphs_reject_bad_labels_codes_and_embeddings(e2e_spm_run):
    """The checks inside the exported graph (what stock TF Serving answers with 400)."""
    import tensorflow_text  # noqa: F401 - SentencePiece ops

    config, metrics, _ = e2e_spm_run
    outputs, catalog = _catalog(config)
    embeddings = np.load(os.path.join(outputs["SemanticIdGen"]["catalog"][0].uri, "embeddings.npy"))
    model = tf.saved_model.load(metrics["pushed_model_dir"])
    H = config.history_length
    named = _named_inputs(_eval_rows(config, n=2), H)
    good = {k: tf.constant(v, tf.int64 if k == features.HISTORY_LABELS else tf.string)
            for k, v in named.items()}
    sid = np.array([catalog[i] for i in named[features.ITEM_ID]], dtype=np.int64)
    emb = np.stack([embeddings[0]] * len(sid)).astype(np.float32)
    by_sid = model.signatures[features.SERVING_BY_SID_SIGNATURE]
    assert by_sid(**good, semantic_id=sid, content_embedding=emb)[features.PREDICTION_KEY].shape == (2,)
    labels = np.array(named[features.HISTORY_LABELS])
    padded = np.array(named[features.HISTORY]) == features.HISTORY_PAD
    bad_label, on_padding = labels.copy(), labels.copy()
    bad_label[0, 0] = 2
    on_padding[padded] = 1
    level, breaker, nan = sid.copy(), sid.copy(), emb.copy()
    level[0, 0] = config.rqvae_codebook_size
    breaker[0, -1] = sid[:, -1].max() + 50
    nan[0, 0] = np.nan
    cases = [("serving_default", dict(good, history_labels=bad_label), "history_labels"),
             ("serving_by_sid", dict(good, history_labels=bad_label, semantic_id=sid,
                                     content_embedding=emb), "history_labels")]
    if padded.any():
        cases.append(("serving_default", dict(good, history_labels=on_padding), "padding"))
    cases += [("serving_by_sid", dict(good, semantic_id=level, content_embedding=emb),
               "semantic_id"),
              ("serving_by_sid", dict(good, semantic_id=breaker, content_embedding=emb),
               "collision breaker"),
              ("serving_by_sid", dict(good, semantic_id=sid, content_embedding=nan), "finite")]
    for name, inputs, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            model.signatures[name](**{k: tf.constant(v) if not tf.is_tensor(v) else v
                                      for k, v in inputs.items()})


def test_every_exported_graph_runs_on_the_stock_tf_serving_op_set(e2e_spm_run):
    from serving import stock_ops
    config, metrics, first = e2e_spm_run
    outputs = mlmd.latest_run_outputs(config)
    graphs = [first["pushed_model_dir"], metrics["pushed_model_dir"],  # random_hash, sid_spm
              path_utils.serving_model_path(outputs["RqVaeTrainer"]["model"][0].uri)]
    assert stock_ops.missing_in_stock_server(graphs) == {g: [] for g in graphs}
    # every signature is in the check, regress and classify (with their asserts) included
    for pushed in graphs[:2]:
        sigs = set(tf.saved_model.load(pushed).signatures)
        assert {features.REGRESS_SIGNATURE, features.CLASSIFY_SIGNATURE} <= sigs
    # The sid_spm graph does use tensorflow-text's SentencePiece ops, and they are in the set.
    spm_ops = stock_ops.saved_model_ops(metrics["pushed_model_dir"])
    assert any(op.startswith("Sentencepiece") for op in spm_ops)
    assert {op for op in spm_ops if op.startswith("Sentencepiece")} <= stock_ops.tf_text_ops()
