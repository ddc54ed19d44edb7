"""Runs the InteractionFeatures executor (DirectRunner) on a tiny hand-made `all` split."""
import collections
import glob
import json
import os
import random

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, channel_utils, standard_artifacts

from components.interaction_features import core
from components.interaction_features.component import InteractionFeatures
from components.interaction_features.executor import (EXAMPLES_KEY, INPUT_EXAMPLES_KEY,
                                                      WINDOW_EXAMPLES_KEY, Executor)
from components.testing import write_examples_artifact
from schemas import features

SEED = 1
NEW_ITEM_FRACTION = 0.25
HISTORY_LENGTH = 4


def _make_rows():
    """(user, item, ts, label) rows with many same-second ties, a user seen only in the eval
    period and an item (not held out) first seen in the eval period."""
    rnd = random.Random(0)
    rows = [(f"u{rnd.randrange(8)}", f"i{rnd.randrange(30)}", rnd.randrange(100), rnd.randrange(2))
            for _ in range(240)]
    late_item = next(f"late{i}" for i in range(100)
                     if not core.is_heldout_item(f"late{i}", SEED, NEW_ITEM_FRACTION))
    rows += [("late_user", "i1", 99, 1), ("late_user", late_item, 99, 0), ("u1", late_item, 99, 1)]
    return rows, late_item.encode()


def _example(user, item, ts, label):
    return tf.train.Example(features=tf.train.Features(feature={
        features.USER_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()])),
        features.ITEM_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode()])),
        features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[ts])),
        features.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }))


def _run(tmp_path, rows, eval_fraction, validation_fraction, validation_new_item_fraction=None,
         name="output"):
    """validation_new_item_fraction None: the exec property is absent (as recorded before it
    existed)."""
    inp = write_examples_artifact(str(tmp_path / f"input-{name}"),
                                  {features.SPLIT_ALL: [_example(*r) for r in rows]})
    out = standard_artifacts.Examples()
    out.uri = str(tmp_path / name)
    os.makedirs(out.uri)
    props = {
        core.EVAL_FRACTION_KEY: eval_fraction,
        core.VALIDATION_FRACTION_KEY: validation_fraction,
        core.NEW_ITEM_FRACTION_KEY: NEW_ITEM_FRACTION,
        core.SEED_KEY: SEED,
        core.HISTORY_LENGTH_KEY: HISTORY_LENGTH,
    }
    if validation_new_item_fraction is not None:
        props[core.VALIDATION_NEW_ITEM_FRACTION_KEY] = validation_new_item_fraction
    Executor().Do({INPUT_EXAMPLES_KEY: [inp]}, {EXAMPLES_KEY: [out]}, props)
    return out


def _read_split(out, split):
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([out], split), "data_tfrecord-*.gz"))
    assert files, f"no files for split {split}"
    result = []
    for rec in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        ex = tf.train.Example.FromString(rec.numpy())
        f = ex.features.feature
        for key in (features.HISTORY, features.HISTORY_LABELS, features.IS_NEW_ITEM,
                    features.IS_NEW_USER, features.IS_TAIL_ITEM):
            assert f[key].WhichOneof("kind") is not None, f"{key} missing"
        result.append(dict(
            user=f[features.USER_ID].bytes_list.value[0],
            item=f[features.ITEM_ID].bytes_list.value[0],
            ts=f[features.TIMESTAMP].int64_list.value[0],
            label=f[features.LABEL].int64_list.value[0],
            history=list(f[features.HISTORY].bytes_list.value),
            history_labels=list(f[features.HISTORY_LABELS].int64_list.value),
            is_new_item=list(f[features.IS_NEW_ITEM].int64_list.value),
            is_new_user=list(f[features.IS_NEW_USER].int64_list.value),
            is_tail_item=list(f[features.IS_TAIL_ITEM].int64_list.value)))
    return result


def _check_flags_and_flag_counts(got, summary):
    """is_new_item / is_new_user / is_tail_item on every row, and their summary counts, against
    the brute-force answer from the train split as written."""
    train_users = {r["user"] for r in got[features.TRAIN]}
    train_item_rows = collections.Counter(r["item"] for r in got[features.TRAIN])
    for split, split_rows in got.items():
        for r in split_rows:
            n = train_item_rows.get(r["item"], 0)
            assert r["is_new_item"] == [int(n == 0)], (split, r)
            assert r["is_new_user"] == [int(r["user"] not in train_users)], (split, r)
            assert r["is_tail_item"] == [int(1 <= n <= 4)], (split, r)
    assert all(r["is_new_item"] == [0] and r["is_new_user"] == [0] for r in got[features.TRAIN])
    for flag, per_split in core.FLAG_COUNT_KEYS.items():
        for split, key in per_split.items():
            assert summary[key] == sum(r[flag][0] for r in got[split]), key


def _expected_history(kept, user, ts):
    earlier = sorted((r for r in kept if r[0] == user and r[2] < ts),
                     key=lambda r: (r[2], r[1], r[3]), reverse=True)[:HISTORY_LENGTH]
    return [r[1] for r in earlier], [r[3] for r in earlier]


def test_executor_splits_histories_and_summary(tmp_path):
    rows, late_item = _make_rows()
    out = _run(tmp_path, rows, eval_fraction=0.25, validation_fraction=0.2)

    assert artifact_utils.decode_split_names(out.split_names) == list(features.SPLITS)
    got = {split: _read_split(out, split) for split in features.SPLITS}
    with open(os.path.join(out.uri, core.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert set(summary) == set(core.SUMMARY_KEYS)
    t_e, t_v = summary[core.EVAL_CUT_TIMESTAMP], summary[core.VALIDATION_CUT_TIMESTAMP]
    cuts = core.compute_time_cuts([(r[2], 1) for r in rows], 0.25, 0.2)
    assert (t_e, t_v) == (cuts.eval_cut, cuts.validation_cut)
    assert t_v < t_e

    # time split
    assert got[features.EVAL] and got[features.VALIDATION] and got[features.TRAIN]
    assert all(r["ts"] > t_e for r in got[features.EVAL])
    assert all(t_v < r["ts"] <= t_e for r in got[features.VALIDATION])
    assert all(r["ts"] <= t_v for r in got[features.TRAIN])

    # held-out items: none in train/validation or in their histories; dropped rows counted
    def heldout(item):
        return core.is_heldout_item(item, SEED, NEW_ITEM_FRACTION)

    b = [(u.encode(), i.encode(), ts, lab) for u, i, ts, lab in rows]
    dropped = [r for r in b if heldout(r[1]) and r[2] <= t_e]
    kept = [r for r in b if not (heldout(r[1]) and r[2] <= t_e)]
    assert dropped and any(heldout(r["item"]) for r in got[features.EVAL])
    for split in (features.TRAIN, features.VALIDATION):
        for r in got[split]:
            assert not heldout(r["item"])
            assert not any(heldout(h) for h in r["history"])
    for r in got[features.EVAL]:  # a held-out item in history is an earlier *eval* interaction
        for h in r["history"]:
            if heldout(h):
                assert any(k[0] == r["user"] and k[1] == h and t_e < k[2] < r["ts"] for k in kept)
    assert sum(len(v) for v in got.values()) == len(kept)

    # histories: exactly the brute-force answer
    for split_rows in got.values():
        for r in split_rows:
            hist, labels = _expected_history(kept, r["user"], r["ts"])
            assert (r["history"], r["history_labels"]) == (hist, labels)

    # is_new_item (validation and eval rows of items absent from train), is_new_user, is_tail_item
    train_items = {r["item"] for r in got[features.TRAIN]}
    assert all(r["is_new_item"] == [0] for r in got[features.TRAIN])
    for split in (features.VALIDATION, features.EVAL):
        for r in got[split]:
            assert r["is_new_item"] == [int(r["item"] not in train_items)]
    late = [r for r in got[features.EVAL] if r["item"] == late_item]
    assert late and all(r["is_new_item"] == [1] for r in late)  # new without being held out
    _check_flags_and_flag_counts(got, summary)
    assert any(r["is_tail_item"] == [1] for split in got.values() for r in split)
    late_user = [r for r in got[features.EVAL] if r["user"] == b"late_user"]
    assert late_user and all(r["is_new_user"] == [1] for r in late_user)
    assert summary[core.NUM_HELDOUT_VALIDATION_ITEMS] == 0  # no validation holdout by default

    # summary counts agree with the files
    train_users = {r["user"] for r in got[features.TRAIN]}
    assert summary[core.NUM_TRAIN] == len(got[features.TRAIN])
    assert summary[core.NUM_VALIDATION] == len(got[features.VALIDATION])
    assert summary[core.NUM_EVAL] == len(got[features.EVAL])
    assert summary[core.NUM_NEW_ITEM_EVAL] == sum(r["is_new_item"][0] for r in got[features.EVAL])
    assert summary[core.NUM_DROPPED_ROWS] == len(dropped)
    assert summary[core.NUM_HELDOUT_ITEMS] == len({r[1] for r in b if heldout(r[1])})
    assert summary[core.EVAL_ROWS_FROM_USERS_ABSENT_FROM_TRAIN] == sum(
        r["user"] not in train_users for r in got[features.EVAL]) >= 2  # late_user's rows
    assert summary[core.HISTORY_LENGTH] == HISTORY_LENGTH


def test_executor_without_validation(tmp_path):
    rows, _ = _make_rows()
    out = _run(tmp_path, rows, eval_fraction=0.25, validation_fraction=0.0)
    got = {split: _read_split(out, split) for split in features.SPLITS}
    with open(os.path.join(out.uri, core.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert got[features.VALIDATION] == [] and summary[core.NUM_VALIDATION] == 0
    assert summary[core.VALIDATION_CUT_TIMESTAMP] == summary[core.EVAL_CUT_TIMESTAMP]
    assert summary[core.NUM_TRAIN] == len(got[features.TRAIN]) > 0


def test_executor_degenerate_input_fails_clearly(tmp_path):
    rows = [("u0", "i0", 5, 1), ("u1", "i1", 5, 0), ("u2", "i2", 5, 1)]  # every row ties
    with pytest.raises(Exception, match="eval split would be empty"):
        _run(tmp_path, rows, eval_fraction=0.5, validation_fraction=0.0)


def test_component_wiring():
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    c = InteractionFeatures(examples=examples, eval_fraction=0.2, validation_fraction=0,
                            new_item_fraction=0.1, seed=3, history_length=5)
    assert c.outputs[EXAMPLES_KEY].type == standard_artifacts.Examples
    assert c.exec_properties[core.VALIDATION_FRACTION_KEY] == 0.0
    assert c.exec_properties[core.HISTORY_LENGTH_KEY] == 5
    with pytest.raises(ValueError, match="history_length"):
        InteractionFeatures(examples=examples, eval_fraction=0.2, validation_fraction=0.1,
                            new_item_fraction=0.1, seed=3, history_length=0)


def _read_all(out):
    got = {split: _read_split(out, split) for split in features.SPLITS}
    with open(os.path.join(out.uri, core.SUMMARY_FILE)) as f:
        return got, json.load(f)


def _split_records(out):
    """Every split's records, each re-serialized deterministically (the map order of a
    tf.Example's features is not fixed on the wire), sorted."""
    result = {}
    for split in features.SPLITS:
        files = sorted(glob.glob(os.path.join(artifact_utils.get_split_uri([out], split), "*.gz")))
        result[split] = sorted(
            tf.train.Example.FromString(rec.numpy()).SerializeToString(deterministic=True)
            for rec in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    return result


def test_validation_new_item_holdout(tmp_path):
    rows, _ = _make_rows()
    vnif = 0.25
    out = _run(tmp_path, rows, eval_fraction=0.25, validation_fraction=0.2,
               validation_new_item_fraction=vnif)
    got, summary = _read_all(out)
    assert set(summary) == set(core.SUMMARY_KEYS)
    t_e, t_v = summary[core.EVAL_CUT_TIMESTAMP], summary[core.VALIDATION_CUT_TIMESTAMP]
    assert t_v < t_e

    def kind(item):
        return core.heldout_split(item, SEED, NEW_ITEM_FRACTION, vnif)

    b = [(u.encode(), i.encode(), ts, lab) for u, i, ts, lab in rows]
    dropped = [r for r in b if (kind(r[1]) == features.EVAL and r[2] <= t_e)
               or (kind(r[1]) == features.VALIDATION and r[2] <= t_v)]
    kept = [r for r in b if r not in dropped]
    val_items = {r[1] for r in b if kind(r[1]) == features.VALIDATION}
    assert val_items and not val_items & {r[1] for r in b if kind(r[1]) == features.EVAL}
    assert any(r[1] in val_items and r[2] <= t_v for r in b)  # something to drop

    # validation-held-out items: in no train row or train history; new in validation and eval
    for r in got[features.TRAIN]:
        assert kind(r["item"]) is None and not any(kind(h) for h in r["history"])
    val_rows = [r for r in got[features.VALIDATION] if r["item"] in val_items]
    eval_rows = [r for r in got[features.EVAL] if r["item"] in val_items]
    assert val_rows and eval_rows
    assert all(r["is_new_item"] == [1] and r["is_tail_item"] == [0] for r in val_rows + eval_rows)
    for split in (features.VALIDATION, features.EVAL):  # only later, kept rows in histories
        for r in got[split]:
            for h in r["history"]:
                if h in val_items:
                    assert any(k[0] == r["user"] and k[1] == h and t_v < k[2] < r["ts"]
                               for k in kept)
    assert sum(len(v) for v in got.values()) == len(kept)
    for split_rows in got.values():
        for r in split_rows:
            assert (r["history"], r["history_labels"]) == _expected_history(kept, r["user"], r["ts"])

    _check_flags_and_flag_counts(got, summary)
    assert summary[core.NUM_NEW_ITEM_VALIDATION] >= len(val_rows)
    assert summary[core.NUM_DROPPED_ROWS] == len(dropped)
    assert summary[core.NUM_HELDOUT_VALIDATION_ITEMS] == len(val_items)
    assert summary[core.NUM_HELDOUT_ITEMS] == len({r[1] for r in b if kind(r[1]) == features.EVAL})
    assert summary[core.NUM_TRAIN] == len(got[features.TRAIN])
    assert summary[core.NUM_VALIDATION] == len(got[features.VALIDATION])


def test_default_validation_holdout_changes_nothing(tmp_path):
    rows, _ = _make_rows()
    absent = _run(tmp_path, rows, 0.25, 0.2, validation_new_item_fraction=None, name="absent")
    zero = _run(tmp_path, rows, 0.25, 0.2, validation_new_item_fraction=0.0, name="zero")
    assert _split_records(absent) == _split_records(zero)
    assert _read_all(absent)[1] == _read_all(zero)[1]


def test_component_validation_new_item_fraction():
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    c = InteractionFeatures(examples=examples, eval_fraction=0.2, validation_fraction=0.1,
                            new_item_fraction=0.1, seed=3, history_length=5)
    assert c.exec_properties[core.VALIDATION_NEW_ITEM_FRACTION_KEY] == 0.0
    c = InteractionFeatures(examples=examples, eval_fraction=0.2, validation_fraction=0.1,
                            new_item_fraction=0.1, seed=3, history_length=5,
                            validation_new_item_fraction=0.2)
    assert c.exec_properties[core.VALIDATION_NEW_ITEM_FRACTION_KEY] == 0.2
    with pytest.raises(ValueError, match="below 1"):
        InteractionFeatures(examples=examples, eval_fraction=0.2, validation_fraction=0.1,
                            new_item_fraction=0.5, seed=3, history_length=5,
                            validation_new_item_fraction=0.5)


def _span_artifact(tmp_path, name, span, rows, artifact_id):
    art = write_examples_artifact(str(tmp_path / name),
                                  {features.SPLIT_ALL: [_example(*r) for r in rows]})
    art.id = artifact_id
    art.set_int_custom_property("span", span)
    return art


def _span_rows():
    """Three spans of 60 rows, times increasing with the span; items i0..i9 from span 1, new
    items n2_* in span 2 and n3_* in span 3; user `late` only in span 3."""
    rnd = random.Random(3)
    spans = {}
    for span in (1, 2, 3):
        pool = [f"i{k}" for k in range(10)] + [f"n{s}_{k}" for s in range(2, span + 1)
                                               for k in range(3)]
        spans[span] = [(f"u{rnd.randrange(5)}", rnd.choice(pool), 100 * span + rnd.randrange(50),
                        rnd.randrange(2)) for _ in range(60)]
    spans[3] += [("late", "n3_0", 399, 1)]
    return spans


@pytest.mark.parametrize("newest_only,replay", [(False, 0.0), (True, 0.0), (True, 0.5)])
def test_span_window_evaluates_the_newest_span_and_trains_on_the_earlier_ones(tmp_path, newest_only,
                                                                             replay):
    spans = _span_rows()
    stale = _span_artifact(tmp_path, "span1-old", 1, spans[1][:5], artifact_id=1)  # re-ingested
    window = [stale, _span_artifact(tmp_path, "span1", 1, spans[1], artifact_id=4),
              _span_artifact(tmp_path, "span2", 2, spans[2], artifact_id=5)]
    current = _span_artifact(tmp_path, "span3", 3, spans[3], artifact_id=6)
    out = standard_artifacts.Examples()
    out.uri = str(tmp_path / "output")
    os.makedirs(out.uri)
    props = {core.EVAL_FRACTION_KEY: 0.2, core.VALIDATION_FRACTION_KEY: 0.2,
             core.NEW_ITEM_FRACTION_KEY: 0.25, core.SEED_KEY: SEED,
             core.HISTORY_LENGTH_KEY: HISTORY_LENGTH, core.WINDOW_SPANS_KEY: 3,
             core.TRAIN_NEWEST_SPAN_ONLY_KEY: int(newest_only), core.REPLAY_SHARE_KEY: replay}
    Executor().Do({INPUT_EXAMPLES_KEY: [current], WINDOW_EXAMPLES_KEY: window + [current]},
                  {EXAMPLES_KEY: [out]}, props)
    got = {split: _read_split(out, split) for split in features.SPLITS}
    with open(os.path.join(out.uri, core.SUMMARY_FILE)) as f:
        summary = json.load(f)

    key = lambda r: (r["user"], r["item"], r["ts"], r["label"])  # noqa: E731
    as_set = lambda rows: collections.Counter((u.encode(), i.encode(), t, y) for u, i, t, y in rows)  # noqa: E731
    # Eval: exactly span 3 (no held-out drops in span mode); validation: span 2's last 20%.
    assert collections.Counter(map(key, got[features.EVAL])) == as_set(spans[3])
    span2_ts = sorted(r[2] for r in spans[2])
    assert {r["ts"] for r in got[features.VALIDATION]} <= set(span2_ts[-12:])
    assert summary[core.VALIDATION_CUT_TIMESTAMP] == span2_ts[-13]
    trained = spans[2] if newest_only else spans[1] + spans[2]
    cut = summary[core.VALIDATION_CUT_TIMESTAMP]
    # Replay: span 1's rows whose seeded hash falls under (0.5 x span 2's train rows) / 60.
    newest_train = sum(1 for r in spans[2] if r[2] <= cut)
    replayed = [r for r in spans[1] if core.row_hash_unit(
        SEED, r[0].encode(), r[1].encode(), r[2]) < replay * newest_train / 60]
    assert bool(replayed) == (replay > 0) and len(replayed) < 60
    assert collections.Counter(map(key, got[features.TRAIN])) == as_set(
        [r for r in trained if r[2] <= cut] + replayed)
    assert summary[core.NUM_HISTORY_ONLY_ROWS] == (60 - len(replayed) if newest_only else 0)
    assert (summary[core.EVAL_SPAN], summary[core.TRAIN_SPANS], summary[core.WINDOW_SPANS]) == (
        3, [2] if newest_only else [1, 2], [1, 2, 3])
    assert (summary[core.REPLAY_SPANS], summary[core.REPLAY_SHARE]) == (
        [1] if replay else [], replay)

    # Histories run over the whole window (span 1 rows too, written or not).
    all_rows = spans[1] + spans[2] + spans[3]
    for r in got[features.EVAL] + got[features.TRAIN]:
        items, labels = _expected_history(
            [(u.encode(), i.encode(), t, y) for u, i, t, y in all_rows], r["user"], r["ts"])
        assert (r["history"], r["history_labels"]) == (items, labels)
    # Eval flags look back over spans 1 and 2: n3_* items and the late user are new.
    earlier = spans[1] + spans[2]
    item_rows = collections.Counter(i.encode() for _, i, _, _ in earlier)
    users = {u.encode() for u, _, _, _ in earlier}
    for r in got[features.EVAL]:
        n = item_rows.get(r["item"], 0)
        assert r["is_new_item"] == [int(n == 0)] and r["is_tail_item"] == [int(1 <= n <= 4)]
        assert r["is_new_user"] == [int(r["user"] not in users)]
    assert summary[core.NUM_NEW_ITEM_EVAL] == sum(
        1 for r in spans[3] if r[1].startswith("n3_")) > 0
    # Validation flags look back over the rows at or before the cut, in every earlier span.
    before = collections.Counter(i.encode() for _, i, t, _ in earlier if t <= cut)
    for r in got[features.VALIDATION]:
        assert r["is_new_item"] == [int(before.get(r["item"], 0) == 0)]


def test_one_span_in_the_window_is_the_time_split(tmp_path):
    rows, _ = _make_rows()
    plain = _run(tmp_path, rows, eval_fraction=0.25, validation_fraction=0.2, name="plain")
    current = _span_artifact(tmp_path, "span1", 1, rows, artifact_id=2)
    out = standard_artifacts.Examples()
    out.uri = str(tmp_path / "spans")
    os.makedirs(out.uri)
    Executor().Do({INPUT_EXAMPLES_KEY: [current], WINDOW_EXAMPLES_KEY: [current]},
                  {EXAMPLES_KEY: [out]},
                  {core.EVAL_FRACTION_KEY: 0.25, core.VALIDATION_FRACTION_KEY: 0.2,
                   core.NEW_ITEM_FRACTION_KEY: NEW_ITEM_FRACTION, core.SEED_KEY: SEED,
                   core.HISTORY_LENGTH_KEY: HISTORY_LENGTH, core.WINDOW_SPANS_KEY: 3})
    for split in features.SPLITS:
        assert sorted(map(str, _read_split(out, split))) == sorted(map(str, _read_split(plain, split)))
    with open(os.path.join(out.uri, core.SUMMARY_FILE)) as f:
        summary = json.load(f)
    assert (summary[core.EVAL_SPAN], summary[core.TRAIN_SPANS]) == (1, [1])
