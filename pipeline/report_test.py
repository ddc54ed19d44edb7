"""pipeline/report.py without a pipeline run: the printed table with baselines and probes, the
baselines read from an InteractionFeatures-like Examples artifact (TFX's split layout, gzipped
tf.Examples), and the probes' wiring with a stand-in model (tests/e2e_pipeline_test.py checks
metrics.json on a real run)."""
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from models.ranking import representations
from pipeline import baselines, evaluation, probes, report
from schemas import features


# --- the printed table ---------------------------------------------------------------------------
def _metrics(probe_values):
    return {"dataset": "synthetic", "representation": "random_hash", "auc_overall": 0.71,
            "auc_new_items": 0.6, "auc_existing_items": 0.72, "auc_tail": 0.65,
            "auc_new_users": None, "auc_warm_users": 0.7, "num_train": 100, "num_eval": 20,
            "num_new_item_eval": 3, "blessed": True, "seconds": 12.34,
            "baselines": {name: {k: 0.5 + i / 100 for k in baselines.BASELINE_AUC_KEYS}
                          for i, name in enumerate(baselines.BASELINES)},
            "probes": probe_values}


def test_the_table_shows_the_baselines_under_the_model_and_its_probes():
    probe_values = dict(zip(probes.PROBE_KEYS, (0.69, 0.58, 0.66, None)))
    lines = report.format_table([_metrics(probe_values)]).splitlines()
    header = lines[0].split()
    assert header == list(report.TABLE_COLUMNS)
    assert {"auc_tail", "auc_new_users", "auc_warm_users"} <= set(header)
    rows = [line.split() for line in lines[2:6]]
    assert [r[1] for r in rows] == ["random_hash", *baselines.BASELINES]
    at = header.index("auc_overall")
    assert [r[at] for r in rows] == ["0.7100", "0.5000", "0.5100", "0.5200"]
    assert rows[0][header.index("auc_new_users")] == "-"
    assert rows[1][header.index("auc_warm_users")] == "0.5000"
    assert rows[1][header.index("num_train")] == "-"  # a baseline has no run columns
    assert lines[6] == ("Probes of random_hash (AUC): history labels shuffled 0.6900 (new items "
                        "0.5800); no history 0.6600 (new items -)")
    no_history = report.format_table([_metrics(None)]).splitlines()
    assert no_history[-1] == "Probes of random_hash: none (the model reads no history)"
    # a row without baselines or probes (an older metrics.json) prints as before
    old = {k: v for k, v in _metrics(None).items() if k not in ("baselines", "probes")}
    assert len(report.format_table([old]).splitlines()) == 3


def test_history_item_keys_are_the_representations_history_input():
    for rep in features.REPRESENTATIONS:
        extra = representations.representation_class(rep).extra_input_keys(512)
        assert evaluation.history_item_keys(rep, 512) == (
            representations.item_input_keys(rep, 512)[representations.HISTORY],) + (
            (extra[representations.HISTORY],) if representations.HISTORY in extra else ())


# --- the baselines from raw examples -------------------------------------------------------------
def _example(user, item, label, history_labels, flags):
    f = {features.USER_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()])),
         features.ITEM_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode()])),
         features.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
         features.HISTORY: tf.train.Feature(bytes_list=tf.train.BytesList(
             value=[b"x"] * len(history_labels))),
         features.HISTORY_LABELS: tf.train.Feature(int64_list=tf.train.Int64List(
             value=history_labels))}
    for k, v in flags.items():
        f[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
    return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()


def _raw_examples(root, rows_by_split):
    examples = standard_artifacts.Examples()
    examples.uri = str(root)
    examples.split_names = artifact_utils.encode_split_names(list(features.SPLITS))
    for split in features.SPLITS:
        split_dir = artifact_utils.get_split_uri([examples], split)
        os.makedirs(split_dir)
        with tf.io.TFRecordWriter(os.path.join(split_dir, "data-00000-of-00001.gz"),
                                  options="GZIP") as w:
            for row in rows_by_split.get(split, []):
                w.write(_example(*row))
    return examples


def _synthetic_rows(with_flags: bool, seed=0):
    rng = np.random.default_rng(seed)
    train_items = [f"i{k}" for k in range(12)]
    train = []
    for _ in range(150):
        item = train_items[min(int(rng.exponential(3)), 11)]  # a head and a tail
        user = f"u{rng.integers(0, 20)}"
        train.append((user, item, int(rng.integers(0, 2)), [], {}))
    counts = {i: sum(r[1] == i for r in train) for i in train_items}
    train_users = {r[0] for r in train}
    ev = []
    for _ in range(120):
        item = f"i{rng.integers(0, 16)}"  # i12..i15 are new
        user = f"u{rng.integers(0, 26)}"  # u20..u25 are new
        n_item = counts.get(item, 0)
        flags = {features.IS_NEW_ITEM: int(n_item == 0)}
        if with_flags:
            flags[features.IS_NEW_USER] = int(user not in train_users)
            flags[features.IS_TAIL_ITEM] = int(1 <= n_item <= 4)
        hist = [int(x) for x in rng.integers(0, 2, rng.integers(0, 9))]
        ev.append((user, item, int(rng.integers(0, 2)), hist, flags))
    return train, ev, counts, train_users


@pytest.mark.parametrize("with_flags", [True, False])
def test_baselines_from_raw_examples_follow_the_definition(tmp_path, with_flags):
    train, ev, counts, train_users = _synthetic_rows(with_flags)
    examples = _raw_examples(tmp_path / "examples", {features.TRAIN: train, features.EVAL: ev})
    h = 5
    got = evaluation.baseline_results(examples, history_length=h)

    # The definition, row by row.
    labels = np.array([r[2] for r in ev])
    mu = np.mean([r[2] for r in train])
    user_rate = np.array([(sum(r[3][:h]) + 1) / (len(r[3][:h]) + 2) for r in ev])
    item_rate = np.array([(sum(t[2] for t in train if t[1] == r[1]) + 5 * mu) /
                          (counts.get(r[1], 0) + 5) for r in ev])
    scores = {baselines.BASELINE_USER_RATE: user_rate, baselines.BASELINE_ITEM_RATE: item_rate,
              baselines.BASELINE_USER_ITEM_RATE: np.log(user_rate / (1 - user_rate))
              + np.log(item_rate / (1 - item_rate))}
    is_new_item = np.array([int(counts.get(r[1], 0) == 0) for r in ev])
    is_tail = np.array([int(1 <= counts.get(r[1], 0) <= 4) for r in ev])
    is_new_user = np.array([int(r[0] not in train_users) for r in ev])
    masks = baselines.slice_masks(is_new_item, is_tail, is_new_user)
    want = baselines.baseline_metrics(labels, scores, masks)
    assert set(got["metrics"]) == set(baselines.BASELINES)
    for name in baselines.BASELINES:
        assert set(got["metrics"][name]) == set(baselines.BASELINE_AUC_KEYS)
        for k, v in want[name].items():
            assert v is not None, (name, k)
            assert got["metrics"][name][k] == pytest.approx(v, abs=1e-12), (name, k)
    assert got["counts"] == baselines.slice_counts(masks)
    assert got["counts"]["num_new_users"] > 0 and got["counts"]["num_tail"] > 0
    assert got["undefined"] == []


def test_a_slice_of_one_class_has_no_auc(tmp_path):
    train, ev, _, train_users = _synthetic_rows(True, seed=1)
    ev = [(u, i, 1 if u not in train_users else lab, h, f) for u, i, lab, h, f in ev]
    examples = _raw_examples(tmp_path / "examples", {features.TRAIN: train, features.EVAL: ev})
    got = evaluation.baseline_results(examples, history_length=5)
    assert got["undefined"] == ["auc_new_users"]
    assert all(m["auc_new_users"] is None for m in got["metrics"].values())


# --- the probes' wiring --------------------------------------------------------------------------
class _StandIn:
    """A 'model' whose logit reads the history: labels weighted by position, the mask and
    whether the history items are padding."""

    def __init__(self, history_key, pad):
        self.history_key, self.pad = history_key, pad

    def logits(self, x):
        labels = np.asarray(x[features.HISTORY_LABELS_DENSE], np.float64)
        mask = np.asarray(x[features.HISTORY_MASK], np.float64)
        weights = np.arange(1, labels.shape[1] + 1)
        padded = (np.asarray(x[self.history_key]) == self.pad).mean(axis=1)
        return ((labels * weights).sum(1) + 0.3 * mask.sum(1) - padded
                + (np.asarray(x[features.ITEM_ID_FINGERPRINT]) % 7) / 10.0)

    def predict(self, ds, verbose=0):
        return np.concatenate([self.logits({k: v.numpy() for k, v in b.items()}) for b in ds])


def test_probe_metrics_score_the_perturbed_inputs():
    rng = np.random.default_rng(0)
    n, h = 300, 6
    pad = evaluation.empty_id_fingerprint()
    assert pad == int(tf.strings.to_hash_bucket_fast([features.HISTORY_PAD], 2 ** 62).numpy()[0])
    lengths = rng.integers(0, h + 1, n)
    mask = (np.arange(h)[None, :] < lengths[:, None]).astype(np.int64)
    arrays = {
        features.LABEL: rng.integers(0, 2, n),
        features.IS_NEW_ITEM: rng.integers(0, 2, n),
        features.USER_ID_HASHED: rng.integers(0, 50, n),
        features.ITEM_ID_FINGERPRINT: rng.integers(0, 2 ** 61, n),
        features.HISTORY_FINGERPRINT: np.where(mask == 1, rng.integers(0, 2 ** 61, (n, h)), pad),
        features.ITEM_CATALOG_ROW: rng.integers(0, 100, n),  # random_hash's rows (unread here)
        features.HISTORY_CATALOG_ROW: np.where(mask == 1, rng.integers(0, 100, (n, h)), -1),
        features.HISTORY_LABELS_DENSE: rng.integers(0, 2, (n, h)) * mask,
        features.HISTORY_MASK: mask}
    model = _StandIn(features.HISTORY_FINGERPRINT, pad)
    got = evaluation.probe_metrics(model, arrays, features.RANDOM_HASH, 512)
    assert tuple(got) == probes.PROBE_KEYS

    new = arrays[features.IS_NEW_ITEM] == 1
    labels = arrays[features.LABEL]
    # (scored as predict_scores does: the sigmoid of the logits, which may tie close logits)
    # (a row's shuffle follows its contents: those of the inputs the probe is given)
    inputs = {k: arrays[k] for k in evaluation.run_features(features.RANDOM_HASH, 512, True)}
    shuffled = tf.sigmoid(model.logits(probes.shuffle_history_labels(inputs))).numpy()
    empty = tf.sigmoid(model.logits(
        probes.remove_history(arrays, {features.HISTORY_FINGERPRINT: pad}))).numpy()
    assert got["auc_shuffled_labels"] == pytest.approx(baselines.exact_auc(labels, shuffled))
    assert got["auc_shuffled_labels_new_items"] == pytest.approx(
        baselines.exact_auc(labels[new], shuffled[new]))
    assert got["auc_no_history"] == pytest.approx(baselines.exact_auc(labels, empty))
    assert got["auc_no_history_new_items"] == pytest.approx(
        baselines.exact_auc(labels[new], empty[new]))
    assert got["auc_shuffled_labels"] != pytest.approx(
        baselines.exact_auc(labels, model.logits(arrays)))


def test_the_sid_summary_reports_a_reuse_run_and_its_drift():
    from pipeline.report import format_sid_summary
    base = {"num_items": 10, "num_levels": 3, "codebook_size": 8, "reconstruction_mse": 0.1,
            "utilization": [1.0], "collisions_before_breaker": 0, "largest_collision_group": 1,
            "duplicate_sids_after_breaker": 0, "hierarchy_cosine": [0.5], "random_pair_cosine": 0.2}
    assert "SID space" not in format_sid_summary(base)
    reuse = dict(base, sid_space={"mode": "reuse", "previous_catalog": {"uri": "x"},
                                  "new_items": 4, "existing_items": 6, "sid_changed": 0,
                                  "drift": {"mean_ratio": 1.8, "p95_ratio": 2.0,
                                            "refresh_due": True}})
    text = format_sid_summary(reuse)
    assert ("SID space reuse: 4 new items, 0 of 6 existing items changed SID; reconstruction "
            "error new / existing 1.80 (mean), 2.00 (p95); above the drift threshold: a refresh "
            "is due (--refresh_sids)") in text
