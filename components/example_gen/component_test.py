"""The ValidatingExampleGen factory, and one tiny LocalDagRunner run of both components."""
import glob
import os

import pytest
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from components.example_gen import ValidatingExampleGen
from components.example_gen import executor
from components.example_gen.executor_test import read_examples
from data import format as fm
from data.synthetic import generate_synthetic
from schemas import features as F


def test_factory_configuration(tmp_path):
    c = ValidatingExampleGen(str(tmp_path), fm.INTERACTIONS_TABLE, 0.05)
    assert c.id == "InteractionExampleGen"
    assert ValidatingExampleGen(str(tmp_path), fm.ITEMS_TABLE, 0.05).id == "ItemExampleGen"
    assert ValidatingExampleGen(str(tmp_path), fm.ITEMS_TABLE, 0.05, "X").id == "X"
    p = c.exec_properties  # protos arrive as JSON, as the executor gets them
    input_config = proto_utils.json_to_proto(p["input_config"], example_gen_pb2.Input())
    output_config = proto_utils.json_to_proto(p["output_config"], example_gen_pb2.Output())
    assert [(s.name, s.pattern) for s in input_config.splits] == \
        [(F.SPLIT_ALL, F.INTERACTIONS_FILE)]
    assert [(s.name, s.hash_buckets) for s in output_config.split_config.splits] == \
        [(F.SPLIT_ALL, 1)]
    cfg = executor.unpack_custom_config(p["custom_config"])
    assert cfg[executor.TABLE_KEY] == fm.INTERACTIONS_TABLE
    assert cfg[executor.MAX_BAD_ROW_FRACTION_KEY] == 0.05
    assert p["output_data_format"] == example_gen_pb2.FORMAT_TF_EXAMPLE
    with pytest.raises(ValueError, match="table"):
        ValidatingExampleGen(str(tmp_path), "users", 0.05)
    with pytest.raises(ValueError, match="max_bad_row_fraction"):
        ValidatingExampleGen(str(tmp_path), fm.ITEMS_TABLE, 1.5)


def _pipeline(root, data_dir):
    comps = [ValidatingExampleGen(data_dir, fm.ITEMS_TABLE, 0.05),
             ValidatingExampleGen(data_dir, fm.INTERACTIONS_TABLE, 0.05)]
    return tfx_pipeline.Pipeline(
        pipeline_name="example_gen_test", pipeline_root=os.path.join(root, "root"),
        components=comps, enable_cache=True,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            os.path.join(root, "metadata.db")))


def test_local_dag_runner(tmp_path):
    root = str(tmp_path)
    data = generate_synthetic(os.path.join(root, "data"), num_users=20, num_items=15,
                              num_interactions=300, seed=0, bad_rows=3)
    LocalDagRunner().run(_pipeline(root, data["dir"]))
    [uri] = glob.glob(os.path.join(root, "root", "InteractionExampleGen", "examples", "*"))
    assert len(read_examples(uri)) == 300
    with open(os.path.join(uri, executor.REJECTS_DIR_NAME, "interactions.rejects.txt")) as f:
        lines = [int(x.split(":")[1]) for x in f.read().splitlines()]
    assert lines == [b["line"] for b in data["bad_rows"]]
    [uri] = glob.glob(os.path.join(root, "root", "ItemExampleGen", "examples", "*"))
    assert len(read_examples(uri)) == 15

    # items.csv changing re-runs InteractionExampleGen (its rows depend on the item ids).
    items = data["paths"]["items"]
    os.utime(items, ns=(os.stat(items).st_atime_ns, os.stat(items).st_mtime_ns + 10**9))
    LocalDagRunner().run(_pipeline(root, data["dir"]))
    assert len(glob.glob(os.path.join(root, "root", "InteractionExampleGen", "examples", "*"))) == 2


def _write_spans(data_dir, data):
    """The synthetic files cut into two spans: span 1 has the first 10 items and their
    interactions; span 2 every item (appended) and the rest of the interactions."""
    import csv
    with open(data["paths"]["items"], newline="", encoding="utf-8") as f:
        items = list(csv.reader(f))
    with open(data["paths"]["interactions"], newline="", encoding="utf-8") as f:
        inter = [r for r in csv.reader(f)]
    head, rows = inter[0], [r for r in inter[1:] if len(r) == len(inter[0])]
    first = {r[0] for r in items[1:11]}
    col = head.index(F.ITEM_ID)
    parts = {1: (items[:11], [r for r in rows if r[col] in first]),
             2: (items, [r for r in rows if r[col] not in first])}
    for span, (item_rows, inter_rows) in parts.items():
        for table, body in ((fm.ITEMS_TABLE, item_rows), (fm.INTERACTIONS_TABLE,
                                                          [head] + inter_rows)):
            folder = os.path.join(data_dir, table, f"span-{span}")
            os.makedirs(folder)
            with open(os.path.join(folder, fm.TABLE_FILES[table]), "w", newline="",
                      encoding="utf-8") as f:
                csv.writer(f).writerows(body)
    return parts


def test_span_layout_reads_the_latest_span_against_its_own_items(tmp_path):
    from ml_metadata.metadata_store import metadata_store
    root = str(tmp_path)
    data = generate_synthetic(os.path.join(root, "flat"), num_users=20, num_items=15,
                              num_interactions=300, seed=0)
    data_dir = os.path.join(root, "spans")
    parts = _write_spans(data_dir, data)
    assert fm.table_spans(data_dir, fm.ITEMS_TABLE) == [1, 2]
    assert fm.table_pattern(data_dir, fm.INTERACTIONS_TABLE) == (
        "interactions/span-{SPAN}/interactions.csv")
    assert fm.table_file(data_dir, fm.ITEMS_TABLE) == os.path.join(
        data_dir, "items", "span-2", "items.csv")
    assert fm.items_file_for("interactions/span-2/interactions.csv") == os.path.join(
        "items", "span-2", "items.csv")
    assert fm.count_items(data_dir) == 15

    LocalDagRunner().run(_pipeline(root, data_dir))
    [uri] = glob.glob(os.path.join(root, "root", "InteractionExampleGen", "examples", "*"))
    # span 2's interactions, every one accepted: their items are only in span 2's items.csv
    assert len(read_examples(uri)) == len(parts[2][1]) > 0
    [uri] = glob.glob(os.path.join(root, "root", "ItemExampleGen", "examples", "*"))
    assert len(read_examples(uri)) == 15
    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(
        os.path.join(root, "metadata.db")))
    spans = {a.custom_properties["span"].int_value  # what TFX's ExampleGen driver records
             for a in store.get_artifacts_by_type("Examples")}
    assert spans == {2}
