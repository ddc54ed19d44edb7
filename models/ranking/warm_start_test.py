"""Warm start: weights saved and restored exactly, the frozen table rebuilt from the new
catalog, and every refusal with its message (models/ranking/warm_start.py)."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from models.ranking import training, warm_start
from models.ranking.model_test import BUDGET, N_ITEMS, cfg, transformed_batch
from models.ranking.trainer_module import warm_start_weights
from schemas import features

LINEAGE = {"rqvae_sha256": "a" * 64, "spm_sha256": "b" * 64}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return transformed_batch(400, rng), rng.normal(size=(N_ITEMS, 12)).astype(np.float32)


@pytest.mark.parametrize("representation", [features.SID_PREFIX_NGRAM, features.DENSE_CONTENT])
def test_restored_trainable_weights_equal_the_base_models_exactly(representation, data, tmp_path,
                                                                  seeded_training):
    batch, embeddings = data
    config = cfg(representation)
    base = training.build_model(config, embeddings)
    base(batch)
    folder = warm_start.save(base, warm_start.model_config(config, LINEAGE), str(tmp_path))

    # The next span's catalog: the same items with other content rows (rows move, items grow).
    grown = np.concatenate([embeddings[::-1], embeddings[:3]])
    model = training.build_model(config, grown)
    model(batch)
    warm_start.restore(model, warm_start.load_weights(folder))
    for a, b in zip(base.trainable_variables, model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # (frozen_table adds one zero row for ids outside the catalog)
    frozen = [v for v in model.non_trainable_variables if tuple(v.shape) == (len(grown) + 1, 12)]
    assert len(frozen) == (1 if representation == features.DENSE_CONTENT else 0)
    for table in frozen:  # rebuilt from the new catalog, not carried over
        np.testing.assert_array_equal(table.numpy()[:-1], grown)
    with open(os.path.join(folder, "model_config.json")) as f:
        saved = json.load(f)
    assert saved["shape"]["representation"] == representation
    assert len(saved["variables"]) == len(base.trainable_variables)


def test_train_model_starts_from_the_given_weights(data, seeded_training):
    batch, _ = data
    ds = tf.data.Dataset.from_tensor_slices(batch).batch(100)
    config = dataclasses.replace(cfg(features.RANDOM_HASH), max_epochs=1, seed=5)
    base = training.build_model(config)
    base(batch)
    weights = [v.numpy() for v in base.trainable_variables]
    zero_lr = dataclasses.replace(config, learning_rate=0.0, seed=6)
    warm, summary = training.train_model(zero_lr, ds, ds, verbose=0, initial_weights=weights)
    assert summary["warm_started"]
    for a, b in zip(weights, warm.trainable_variables):  # nothing moved at learning rate 0
        np.testing.assert_array_equal(a, b.numpy())


def _config(representation=features.SID_SPM, **changes):
    return warm_start.model_config(dataclasses.replace(cfg(representation), **changes), LINEAGE)


@pytest.mark.parametrize("current,expected", [
    (_config(features.SID_PREFIX_NGRAM), "the representation changed: 'sid_spm' -> "
                                         "'sid_prefix_ngram'"),
    (_config(item_table_size=BUDGET * 2), f"the table budget changed: {BUDGET} -> {BUDGET * 2}"),
    (_config(embedding_dim=16), "the model shape (embedding_dim) changed: 8 -> 16"),
    (_config(hidden_units=(32,)), "the model shape (hidden_units) changed: [16] -> [32]"),
    (warm_start.model_config(cfg(features.SID_SPM), dict(LINEAGE, rqvae_sha256="c" * 64)),
     "the SID space changed: another RQ-VAE than the base model was trained on"),
    (warm_start.model_config(cfg(features.SID_SPM), dict(LINEAGE, spm_sha256="d" * 64)),
     "the SID space changed: another SentencePiece model than the base model was trained on"),
])
def test_each_refusal_says_what_changed(current, expected):
    reasons = warm_start.refusal_reasons(_config(), current)
    assert len(reasons) == 1 and reasons[0].startswith(expected), reasons


def test_a_matching_model_is_not_refused_and_random_hash_ignores_the_sid_space():
    assert warm_start.refusal_reasons(_config(), _config()) == []
    base = warm_start.model_config(cfg(features.RANDOM_HASH), LINEAGE)
    other_sids = warm_start.model_config(cfg(features.RANDOM_HASH),
                                         {"rqvae_sha256": "e" * 64, "spm_sha256": None})
    assert warm_start.refusal_reasons(base, other_sids) == []


def test_the_trainer_refuses_with_its_reasons_and_trains_from_scratch(tmp_path):
    model_uri = tmp_path / "Model" / "7"
    folder = model_uri / "warm_start"
    folder.mkdir(parents=True)
    (folder / "model_config.json").write_text(json.dumps(_config()))
    serving = str(model_uri / "Format-Serving")
    weights, what = warm_start_weights(serving, _config(embedding_dim=16))
    assert weights is None and not what["restored"] and what["base_model"] == serving
    assert what["refused"] == ["the model shape (embedding_dim) changed: 8 -> 16"]
    assert warm_start_weights(None, _config()) == (None, {"base_model": None, "restored": False,
                                                          "base_model_spans": None,
                                                          "refused": []})
    (folder / "model_config.json").unlink()
    _, what = warm_start_weights(serving, _config())
    assert what["refused"] == ["the base model has no model_config.json"]


def test_the_spans_a_model_trained_on_ride_in_its_config_and_never_refuse(tmp_path):
    from schemas import artifact_layout
    assert warm_start.trained_spans(str(tmp_path)) is None  # no split summary
    layout = artifact_layout.InteractionExamples
    with open(tmp_path / artifact_layout.TransformGraph.SPLIT_SUMMARY_FILE, "w") as f:
        json.dump({layout.EVAL_SPAN: 4, layout.TRAIN_SPANS: [3], layout.WINDOW_SPANS: [2, 3, 4]}, f)
    spans = warm_start.trained_spans(str(tmp_path))
    assert spans == {"train": [3], "eval": 4}
    base = warm_start.model_config(cfg(features.SID_SPM), LINEAGE, spans)
    now = warm_start.model_config(cfg(features.SID_SPM), LINEAGE, {"train": [4], "eval": 5})
    assert base["spans"] == spans and warm_start.refusal_reasons(base, now) == []
    with open(tmp_path / artifact_layout.TransformGraph.SPLIT_SUMMARY_FILE, "w") as f:
        json.dump({layout.EVAL_SPAN: 4, layout.TRAIN_SPANS: [3], layout.REPLAY_SPANS: [1, 2]}, f)
    assert warm_start.trained_spans(str(tmp_path)) == {"train": [3], "eval": 4, "replay": [1, 2]}


def test_random_hash_rows_follow_their_items_into_a_grown_catalog(data, tmp_path):
    batch, _ = data
    config = dataclasses.replace(cfg(features.RANDOM_HASH), catalog_size=N_ITEMS)
    assert warm_start.one_row_per_item(warm_start.model_config(config, LINEAGE))
    base = training.build_model(config)
    base(batch)
    items = [f"item{i}" for i in range(N_ITEMS)]
    folder = warm_start.save(base, warm_start.model_config(config, LINEAGE), str(tmp_path), items)
    # The next catalog: a new item sorts first, so every old item's row moves down by one.
    grown = ["item-new"] + items
    now = warm_start.model_config(dataclasses.replace(config, catalog_size=N_ITEMS + 1), LINEAGE)
    weights, what = warm_start_weights(os.path.join(folder, "..", "Format-Serving"), now, grown)
    assert what["restored"], what
    tables = [i for i, v in enumerate(base.trainable_variables) if "item_hash" in v.name]
    assert len(tables) == 2  # the representation's and the item prior's
    for i in tables:
        old = base.trainable_variables[i].numpy()
        np.testing.assert_array_equal(weights[i][1:N_ITEMS + 1], old[:N_ITEMS])
        np.testing.assert_array_equal(weights[i][0], 0)  # the new item: an untrained row
    # Hashed <-> one row per item: the rows mean other things, refused.
    hashed = warm_start.model_config(dataclasses.replace(config, catalog_size=BUDGET), LINEAGE)
    reasons = warm_start.refusal_reasons(now, hashed)
    assert reasons == [f"random_hash's rows changed meaning: one row per catalog item "
                       f"({N_ITEMS + 1} catalog items) -> the id hashed into the budget "
                       f"({BUDGET} catalog items)"]
    os.remove(os.path.join(folder, "catalog_items.txt"))
    _, what = warm_start_weights(os.path.join(folder, "..", "Format-Serving"), now, grown)
    assert not what["restored"] and "catalog_items.txt" in what["refused"][0]
