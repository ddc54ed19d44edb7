"""Runs the SemanticIdGen executor (DirectRunner, tfx_bsl RunInference) with a fake RQ-VAE
SavedModel over a tiny hand-made embeddings split; plus component wiring and a small
LocalDagRunner pipeline (e2e)."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, channel_utils, standard_artifacts
from tfx.utils import path_utils

from components.artifacts import ItemCatalog, SidReport
from components.semantic_id_gen import core
from models.rqvae import fake_rqvae
from components.semantic_id_gen import report as sid_report
from components.semantic_id_gen.component import SemanticIdGen
from components.semantic_id_gen.executor import Executor
from components.testing import write_examples_artifact
from schemas import features

E, L, K = 8, 3, 4
REQUIRED_REPORT_KEYS = (
    "num_items", "num_levels", "codebook_size", "utilization", "perplexity",
    "reconstruction_mse", "collisions_before_breaker", "colliding_groups",
    "largest_collision_group", "duplicate_sids_after_breaker", "unique_sid_share",
    "hierarchy_cosine", "random_pair_cosine")


def _items(n=40, seed=0):
    """(item_id, embedding, item_text): ids with spaces / commas / non-ASCII, and three items
    with the same embedding (so they collide)."""
    rng = np.random.default_rng(seed)
    ids = [f"m{i}" for i in range(n - 3)] + ["a b,c", "été", "x|y"]
    embs = rng.normal(size=(n, E)).astype(np.float32)
    if n >= 8:
        embs[[1, 5, 7]] = embs[1]
    return [(i, e.tolist(), f"Movie {i} (199{k % 10}) Drama") for k, (i, e) in
            enumerate(zip(ids, embs))]


def _example(item_id, embedding, text):
    ex = tf.train.Example()
    f = ex.features.feature
    f[features.ITEM_ID].bytes_list.value.append(item_id.encode())
    if embedding is not None:
        f[features.ITEM_EMBEDDING].float_list.value[:] = embedding
    f[features.ITEM_TEXT].bytes_list.value.append(text.encode())
    return ex


def _write_embeddings(uri, items):
    return write_examples_artifact(uri, {features.SPLIT_ALL: [_example(*it) for it in items]})


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(Model artifact, the fake module) with the SavedModel under <uri>/Format-Serving."""
    art = standard_artifacts.Model()
    art.uri = str(tmp_path_factory.mktemp("model"))
    module = fake_rqvae.save_fake_rqvae(path_utils.serving_model_path(art.uri), E, L, K)
    return art, module


def _run(tmp_path, items, model_artifact, collision_breaker=True, mode="train", previous=None,
         name=""):
    emb = _write_embeddings(str(tmp_path / f"embeddings{name}"), items)
    catalog, report = ItemCatalog(), SidReport()
    catalog.uri, report.uri = str(tmp_path / f"catalog{name}"), str(tmp_path / f"report{name}")
    os.makedirs(catalog.uri)
    os.makedirs(report.uri)
    inputs = {core.EMBEDDINGS_KEY: [emb], core.MODEL_KEY: [model_artifact]}
    if previous is not None:
        inputs[core.PREVIOUS_CATALOG_KEY] = [previous]
    Executor().Do(inputs, {core.CATALOG_KEY: [catalog], core.SID_REPORT_KEY: [report]},
                  {core.COLLISION_BREAKER_KEY: int(collision_breaker), core.NUM_LEVELS_KEY: L,
                   core.CODEBOOK_SIZE_KEY: K, core.SID_MODE_KEY: mode})
    return catalog, report


def _read_items(catalog_uri):
    files = glob.glob(os.path.join(catalog_uri, ItemCatalog.ITEMS_DIR, "*.gz"))
    assert files
    out = {}
    for rec in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        f = tf.train.Example.FromString(rec.numpy()).features.feature
        out[f[features.ITEM_ID].bytes_list.value[0]] = dict(
            sid=tuple(f[features.SEMANTIC_ID].int64_list.value),
            sid_str=f[features.SEMANTIC_ID_STR].bytes_list.value[0].decode(),
            embedding=list(f[features.ITEM_EMBEDDING].float_list.value),
            text=f[features.ITEM_TEXT].bytes_list.value[0])
    return out


def _check_catalog(catalog, report, items, module, collision_breaker):
    ids = sorted(i.encode() for i, _, _ in items)
    by_id = {i.encode(): (np.asarray(e, np.float32), t.encode()) for i, e, t in items}
    codes, _ = fake_rqvae.encode_numpy(module, np.stack([by_id[i][0] for i in ids]))
    expected = core.break_collisions(dict(zip(ids, map(tuple, codes.tolist()))),
                                     collision_breaker)
    # catalog.tsv: sorted by id, rows 0..N-1, SIDs = model codes + breaker
    with open(os.path.join(catalog.uri, ItemCatalog.CATALOG_TSV), "rb") as f:
        lines = f.read().split(b"\n")
    assert lines[-1] == b""
    rows = [line.split(b"\t") for line in lines[:-1]]
    assert [r[0] for r in rows] == ids
    assert [int(r[1]) for r in rows] == list(range(len(ids)))
    assert [r[2].decode() for r in rows] == [core.sid_to_str(expected[i]) for i in ids]
    # embeddings.npy row-aligned
    npy = np.load(os.path.join(catalog.uri, ItemCatalog.EMBEDDINGS_NPY))
    assert npy.dtype == np.float32 and npy.shape == (len(ids), E)
    np.testing.assert_array_equal(npy, np.stack([by_id[i][0] for i in ids]))
    # metadata.json
    with open(os.path.join(catalog.uri, ItemCatalog.METADATA_JSON)) as f:
        meta = json.load(f)
    assert meta[core.NUM_ITEMS] == len(ids) and meta[core.NUM_LEVELS] == L
    assert meta[core.SID_LENGTH] == L + int(collision_breaker)
    assert meta[core.CODEBOOK_SIZE] == K and meta[core.EMBEDDING_DIM] == E
    assert meta[core.COLLISION_BREAKER] is collision_breaker
    # items/ TFRecords
    got = _read_items(catalog.uri)
    assert sorted(got) == ids
    for i in ids:
        assert got[i]["sid"] == expected[i]
        assert got[i]["sid_str"] == core.sid_to_str(expected[i])
        np.testing.assert_array_equal(got[i]["embedding"], by_id[i][0])
        assert got[i]["text"] == by_id[i][1]
    # report files
    for name in (SidReport.JSON_FILE, SidReport.MD_FILE, SidReport.PNG_FILE):
        assert os.path.getsize(os.path.join(report.uri, name)) > 0
    with open(os.path.join(report.uri, SidReport.JSON_FILE)) as f:
        rep = json.load(f)
    assert set(REQUIRED_REPORT_KEYS) <= set(rep)
    assert set(rep) == set(sid_report.REPORT_KEYS) | {core.SID_SPACE}
    assert rep["num_items"] == len(ids) and len(rep["utilization"]) == L
    assert len(rep["hierarchy_cosine"]) == L
    assert catalog.get_int_custom_property(core.NUM_ITEMS) == len(ids)
    return rep, expected


def test_executor_with_breaker(tmp_path, model):
    items = _items()
    catalog, report = _run(tmp_path, items, model[0], collision_breaker=True)
    rep, expected = _check_catalog(catalog, report, items, model[1], True)
    assert len(set(expected.values())) == len(items)
    assert rep["duplicate_sids_after_breaker"] == 0
    assert rep["collisions_before_breaker"] >= 3 and rep["largest_collision_group"] >= 3
    # the three identical embeddings share L codes and get 0, 1, 2 in id order
    same = sorted([items[1][0].encode(), items[5][0].encode(), items[7][0].encode()])
    assert len({expected[i][:L] for i in same}) == 1
    assert len({expected[i][L] for i in same}) == 3
    assert rep["hierarchy_pairs"][L - 1] >= 3


def test_executor_without_breaker(tmp_path, model):
    items = _items(n=24, seed=1)
    catalog, report = _run(tmp_path, items, model[0], collision_breaker=False)
    rep, expected = _check_catalog(catalog, report, items, model[1], False)
    assert all(len(s) == L for s in expected.values())
    assert rep["duplicate_sids_after_breaker"] == rep["collisions_before_breaker"] >= 3


@pytest.mark.parametrize("bad_index,embedding,match", [
    (4, [float("nan")] * E, "'m4'.*non-finite"),
    (6, [1.0] * (E + 1), "'m6'.*dimension 9.*RQ-VAE's input dimension is 8"),
    (2, None, "'m2'.*no 'embedding'"),
])
def test_bad_embedding_fails_naming_item(tmp_path, model, bad_index, embedding, match):
    items = _items(n=10)
    items[bad_index] = (items[bad_index][0], embedding, "bad")
    with pytest.raises(Exception, match=match):
        _run(tmp_path, items, model[0])


def test_tab_in_item_id_fails(tmp_path, model):
    items = _items(n=10)
    items[3] = ("bad\tid", items[3][1], "x")
    with pytest.raises(Exception, match=r"'bad\\tid' contains"):
        _run(tmp_path, items, model[0])


def test_duplicate_item_id_fails(tmp_path, model):
    items = _items(n=10)
    items[4] = (items[0][0], items[4][1], "dup")
    with pytest.raises(Exception, match="'m0' appears more than once"):
        _run(tmp_path, items, model[0])


def test_num_levels_mismatch_fails(tmp_path, model):
    emb = _write_embeddings(str(tmp_path / "embeddings"), _items(n=4))
    with pytest.raises(ValueError, match="gives 3 codes per item but num_levels is 4"):
        Executor().Do({core.EMBEDDINGS_KEY: [emb], core.MODEL_KEY: [model[0]]},
                      {core.CATALOG_KEY: [ItemCatalog()], core.SID_REPORT_KEY: [SidReport()]},
                      {core.COLLISION_BREAKER_KEY: 1, core.NUM_LEVELS_KEY: 4,
                       core.CODEBOOK_SIZE_KEY: K})


def test_validate_against_first_item_when_model_dim_unknown():
    from components.semantic_id_gen import executor
    first = executor._FirstItemDim()
    acc = first.create_accumulator()
    for item in [(b"b", b"", np.ones(3)), (b"a", b"", np.ones(2)), (b"0", b"", None)]:
        acc = first.add_input(acc, item)
    ref = first.extract_output(first.merge_accumulators([acc, None]))
    assert ref == (b"a", 2)
    ok = list(executor._ValidateItem(None).process((b"c", b"t", np.ones(2)), ref))
    assert ok[0].item_id == b"c" and ok[0].embedding.shape == (2,)
    with pytest.raises(ValueError, match=r"'b'.*dimension 3, the first item's \('a'\) dimension"):
        list(executor._ValidateItem(None).process((b"b", b"", np.ones(3)), ref))


def test_component_wiring():
    emb = channel_utils.as_channel([standard_artifacts.Examples()])
    mdl = channel_utils.as_channel([standard_artifacts.Model()])
    c = SemanticIdGen(embeddings=emb, model=mdl, num_levels=4, codebook_size=64)
    assert c.outputs[core.CATALOG_KEY].type == ItemCatalog
    assert c.outputs[core.SID_REPORT_KEY].type == SidReport
    assert c.exec_properties[core.COLLISION_BREAKER_KEY] is True
    assert c.exec_properties[core.NUM_LEVELS_KEY] == 4
    with pytest.raises(ValueError, match="num_levels"):
        SemanticIdGen(embeddings=emb, model=mdl, num_levels=0, codebook_size=64)


@pytest.mark.e2e
def test_local_dag_runner_pipeline(tmp_path, model):
    """Importer(embeddings) + Importer(Model) + SemanticIdGen under LocalDagRunner."""
    from tfx import v1 as tfx
    from tfx.orchestration import metadata

    items = _items(n=20, seed=2)
    emb = _write_embeddings(str(tmp_path / "embeddings"), items)
    emb_importer = tfx.dsl.Importer(
        source_uri=emb.uri, artifact_type=standard_artifacts.Examples,
        properties={"split_names": artifact_utils.encode_split_names([features.SPLIT_ALL])},
    ).with_id("embeddings_importer")
    model_importer = tfx.dsl.Importer(source_uri=model[0].uri,
                                      artifact_type=standard_artifacts.Model
                                      ).with_id("model_importer")
    sid_gen = SemanticIdGen(embeddings=emb_importer.outputs["result"],
                            model=model_importer.outputs["result"], num_levels=L,
                            codebook_size=K)
    root = str(tmp_path / "pipeline")
    db = str(tmp_path / "metadata.db")
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="sid-e2e", pipeline_root=root,
        components=[emb_importer, model_importer, sid_gen], enable_cache=False,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(db))
    tfx.orchestration.LocalDagRunner().run(pipeline)

    catalogs = glob.glob(os.path.join(root, "SemanticIdGen", core.CATALOG_KEY, "*"))
    reports = glob.glob(os.path.join(root, "SemanticIdGen", core.SID_REPORT_KEY, "*"))
    assert len(catalogs) == len(reports) == 1
    catalog, report = ItemCatalog(), SidReport()
    catalog.uri, report.uri = catalogs[0], reports[0]
    with open(os.path.join(catalog.uri, ItemCatalog.CATALOG_TSV), "rb") as f:
        assert len(f.read().splitlines()) == len(items)
    with open(os.path.join(report.uri, SidReport.JSON_FILE)) as f:
        rep = json.load(f)
    assert rep["num_items"] == len(items) and rep["duplicate_sids_after_breaker"] == 0


def _catalog_lines(catalog):
    with open(os.path.join(catalog.uri, ItemCatalog.CATALOG_TSV), "rb") as f:
        return {line.split(b"\t")[0]: line.split(b"\t")[2] for line in f.read().splitlines()}


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """A different RQ-VAE (another seed): coding the same items again would change their SIDs."""
    art = standard_artifacts.Model()
    art.uri = str(tmp_path_factory.mktemp("other_model"))
    module = fake_rqvae.save_fake_rqvae(path_utils.serving_model_path(art.uri), E, L, K, seed=7)
    return art, module


def test_reuse_keeps_every_existing_sid_and_codes_only_new_items(tmp_path, model, other_model):
    items = _items(n=30, seed=2)
    first, _ = _run(tmp_path, items, model[0], name="1")
    grown = items + [(f"new{i}", e, t) for i, (_, e, t) in enumerate(_items(n=12, seed=3))]
    # The frozen space is the previous catalog's: even a model that codes the old items
    # differently leaves their SIDs alone (they are not coded again).
    second, report = _run(tmp_path, grown, other_model[0], mode="reuse", previous=first, name="2")
    before, after = _catalog_lines(first), _catalog_lines(second)
    assert len(after) == len(grown)
    assert {i: after[i] for i in before} == before  # byte-identical
    new_ids = sorted(set(after) - set(before))
    assert len(new_ids) == 12
    # new items: the other model's codes, breaker codes past the group's largest
    codes, _ = fake_rqvae.encode_numpy(other_model[1], np.stack(
        [np.asarray(e, np.float32) for i, e, _ in grown if i.encode() in new_ids]))
    for item_id, c in zip([i.encode() for i, _, _ in grown if i.encode() in new_ids], codes):
        assert after[item_id].decode().split("-")[:L] == [str(int(x)) for x in c]
    assert len(set(after.values())) == len(after)  # still unique with the breaker
    with open(os.path.join(second.uri, ItemCatalog.METADATA_JSON)) as f:
        space = json.load(f)[core.SID_SPACE]
    assert space["mode"] == "reuse" and space["new_items"] == 12
    assert space["sid_changed"] == 0 and space["existing_items"] == 30
    assert space["previous_catalog"]["uri"] == first.uri
    assert len(space["rqvae"]["sha256"]) == 64
    assert space["drift"]["num_new"] == 12 and space["drift"]["mean_ratio"] > 0
    errors = np.load(os.path.join(second.uri, ItemCatalog.RECONSTRUCTION_ERRORS_NPY))
    assert errors.shape == (42,) and np.isfinite(errors).all()
    with open(os.path.join(report.uri, SidReport.JSON_FILE)) as f:
        assert json.load(f)[core.SID_SPACE]["new_items"] == 12


def test_refresh_recodes_and_counts_changed_sids(tmp_path, model, other_model):
    items = _items(n=30, seed=2)
    first, _ = _run(tmp_path, items, model[0], name="1")
    second, _ = _run(tmp_path, items, other_model[0], mode="train", previous=first, name="2")
    with open(os.path.join(second.uri, ItemCatalog.METADATA_JSON)) as f:
        space = json.load(f)[core.SID_SPACE]
    before, after = _catalog_lines(first), _catalog_lines(second)
    changed = sum(before[i] != after[i] for i in before)
    assert space["mode"] == "train" and space["sid_changed"] == changed > 0
    assert space["sid_changed_share"] == pytest.approx(changed / 30)


def test_reuse_without_a_previous_catalog_says_to_train_first(tmp_path, model):
    with pytest.raises(ValueError, match="run once with --rqvae_mode train first"):
        _run(tmp_path, _items(n=10), model[0], mode="reuse")


def test_reuse_refuses_a_previous_catalog_of_another_sid_shape(tmp_path, model):
    first, _ = _run(tmp_path, _items(n=10), model[0], name="1", collision_breaker=False)
    with pytest.raises(ValueError, match=r"has collision_breaker False \(this run: True\).*"
                                         "--refresh_sids"):
        _run(tmp_path, _items(n=12), model[0], mode="reuse", previous=first, name="2")
