"""The validating ExampleGen executor run directly (Executor().Do) on tiny folders."""
import json
import os

import pytest
import tensorflow as tf
from google.protobuf import message
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import ValidatingExampleGen
from components.example_gen import executor
from data import format as fm
from schemas import features as F

ITEMS = ('item_id,title,genres\n'
         '007,"Bond, James",Action\n'
         '1,"Multi\nline",Drama\n'       # lines 3-4
         '2,Plain,Comedy\n'
         '1,Dup,War\n')                  # line 6: duplicate
GOOD = [("u1", "007", 100, 1), ("u2", "1", 101, 0), ("007", "2", 102, 1), ("u1", "2", 102, 0)] * 5


def _folder(tmp_path, interactions_body, items=ITEMS):
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    (d / F.ITEMS_FILE).write_text(items)
    (d / F.INTERACTIONS_FILE).write_text(",".join(F.INTERACTION_COLUMNS) + "\n" + interactions_body)
    return str(d)


def _body_with_bad_rows():
    lines = [",".join(map(str, r)) for r in GOOD]  # data lines 2..21
    lines.insert(3, "u9,7,103,1")     # line 5: unknown item ('007' is known, '7' is not)
    lines.insert(10, "u9,1,104,yes")  # line 12: bad label
    return "\n".join(lines) + "\n"


def exec_properties(component):
    """The exec properties as the orchestrator hands them to the executor (protos as JSON)."""
    return {k: proto_utils.proto_to_json(v) if isinstance(v, message.Message) else v
            for k, v in component.exec_properties.items() if v is not None}


def run_executor(input_base, table, max_bad_row_fraction, uri):
    component = ValidatingExampleGen(input_base, table, max_bad_row_fraction)
    examples = standard_artifacts.Examples()
    examples.uri = uri
    executor.Executor().Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]},
                           exec_properties(component))
    return examples


def read_examples(uri, split=F.SPLIT_ALL):
    files = tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*.gz"))
    assert files, f"no examples under {uri}"
    return [tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _value(ex, name):
    f = ex.features.feature[name]
    kind = f.WhichOneof("kind")
    vals = list(getattr(f, kind).value)
    return [v.decode() for v in vals] if kind == "bytes_list" else vals


@pytest.mark.parametrize("record", [
    {F.USER_ID: "007", F.ITEM_ID: "i1", F.TIMESTAMP: 881250949, F.LABEL: 1},
    {F.USER_ID: "Zoë ☃", F.ITEM_ID: "x" * 300, F.TIMESTAMP: -5, F.LABEL: 0},
    {F.USER_ID: "u", F.ITEM_ID: "i", F.TIMESTAMP: 2 ** 63 - 1, F.LABEL: 0},
])
def test_interaction_example_encoding(record):
    expected = tf.train.Example()
    for k in (F.USER_ID, F.ITEM_ID):
        expected.features.feature[k].bytes_list.value.append(record[k].encode())
    for k in (F.TIMESTAMP, F.LABEL):
        expected.features.feature[k].int64_list.value.append(record[k])
    assert tf.train.Example.FromString(executor.interaction_example(record)) == expected
    parsed = tf.io.parse_single_example(executor.interaction_example(record), {
        F.USER_ID: tf.io.FixedLenFeature([], tf.string),
        F.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
        F.LABEL: tf.io.FixedLenFeature([], tf.int64)})
    assert parsed[F.USER_ID].numpy() == record[F.USER_ID].encode()
    assert parsed[F.TIMESTAMP].numpy() == record[F.TIMESTAMP]
    assert parsed[F.LABEL].numpy() == record[F.LABEL]


def test_item_example_encoding():
    record = {F.ITEM_ID: "007", "title": "Amélie, \"x\"\nmore", "year": "",
              F.ITEM_EMBEDDING: [0.5, -1e-3, 3e38, 0.0]}
    expected = tf.train.Example()
    for k in (F.ITEM_ID, "title", "year"):
        expected.features.feature[k].bytes_list.value.append(record[k].encode())
    expected.features.feature[F.ITEM_EMBEDDING].float_list.value.extend(record[F.ITEM_EMBEDDING])
    assert tf.train.Example.FromString(executor.item_example(record)) == expected
    parsed = tf.io.parse_single_example(executor.item_example(record), {
        F.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
        F.ITEM_EMBEDDING: tf.io.FixedLenFeature([4], tf.float32)})
    assert parsed[F.ITEM_ID].numpy() == b"007"
    assert parsed[F.ITEM_EMBEDDING].numpy().tolist() == pytest.approx(record[F.ITEM_EMBEDDING])


@pytest.mark.parametrize("range_bytes", [executor.RANGE_BYTES, 40])
def test_interactions_examples_rejects_and_summary(tmp_path, monkeypatch, range_bytes):
    # 40 bytes: the file is parsed as ~10 byte ranges, yet every reject keeps its line number
    monkeypatch.setattr(executor, "RANGE_BYTES", range_bytes)
    uri = str(tmp_path / "out")
    data_dir = _folder(tmp_path, _body_with_bad_rows())
    examples = run_executor(data_dir, fm.INTERACTIONS_TABLE, 0.1, uri)
    assert examples.split_names == f'["{F.SPLIT_ALL}"]'
    got = sorted((_value(e, F.USER_ID)[0], _value(e, F.ITEM_ID)[0], _value(e, F.TIMESTAMP)[0],
                  _value(e, F.LABEL)[0]) for e in read_examples(uri))
    assert got == sorted(GOOD)  # every accepted row, ids as strings ('007' stays '007')
    e = read_examples(uri)[0]
    assert e.features.feature[F.TIMESTAMP].HasField("int64_list")
    assert e.features.feature[F.LABEL].HasField("int64_list")
    assert e.features.feature[F.USER_ID].HasField("bytes_list")

    rejects_dir = os.path.join(uri, executor.REJECTS_DIR_NAME)
    with open(os.path.join(rejects_dir, "interactions.rejects.txt")) as f:
        assert f.read().splitlines() == [
            f"{F.INTERACTIONS_FILE}:5: {F.ITEM_ID} '7' is not in {F.ITEMS_FILE}",
            f"{F.INTERACTIONS_FILE}:12: {F.LABEL} 'yes' is not 0 or 1"]
    with open(os.path.join(rejects_dir, "interactions.summary.json")) as f:
        s = json.load(f)
    assert (s["rows_total"], s["rows_accepted"], s["rows_rejected"]) == (22, 20, 2)
    assert s["rejected_fraction"] == pytest.approx(2 / 22)
    assert s["file"].endswith(F.INTERACTIONS_FILE) and "," not in s["file"]
    assert examples.get_int_custom_property("rows_rejected") == 2


def test_threshold_raises_rejected_rows_error(tmp_path):
    uri = str(tmp_path / "out")
    with pytest.raises(fm.RejectedRowsError) as info:
        run_executor(_folder(tmp_path, _body_with_bad_rows()), fm.INTERACTIONS_TABLE, 0.05, uri)
    msg = str(info.value)
    rejects = os.path.join(uri, executor.REJECTS_DIR_NAME, "interactions.rejects.txt")
    for part in (F.INTERACTIONS_FILE, "2 of 22 rows", "max_bad_row_fraction=0.05", rejects,
                 f"{F.INTERACTIONS_FILE}:12: {F.LABEL} 'yes' is not 0 or 1"):
        assert part in msg
    assert os.path.isfile(rejects)  # written before the run stops


def test_items_examples_with_embedding_and_multiline_line_numbers(tmp_path):
    items = ('item_id,title,embedding,year\n'
             '007,"Two\nlines",0.5 1,1999\n'   # lines 2-3
             '8,B,1 2 3,2000\n'                 # line 4: wrong dimension
             '9,C,3 4,\n')
    uri = str(tmp_path / "out")
    run_executor(_folder(tmp_path, "", items=items), fm.ITEMS_TABLE, 0.5, uri)
    got = {_value(e, F.ITEM_ID)[0]: e for e in read_examples(uri)}
    assert set(got) == {"007", "9"}
    assert _value(got["007"], "title") == ["Two\nlines"]
    assert _value(got["007"], "year") == ["1999"]
    assert _value(got["007"], F.ITEM_EMBEDDING) == [0.5, 1.0]
    assert _value(got["9"], "year") == [""]
    with open(os.path.join(uri, executor.REJECTS_DIR_NAME, "items.rejects.txt")) as f:
        assert f.read() == f"{F.ITEMS_FILE}:4: {F.ITEM_EMBEDDING} has dimension 3, expected 2\n"


def test_items_duplicates_and_clean_run_writes_empty_rejects(tmp_path):
    uri = str(tmp_path / "out")
    run_executor(_folder(tmp_path, ""), fm.ITEMS_TABLE, 0.3, uri)
    assert sorted(_value(e, F.ITEM_ID)[0] for e in read_examples(uri)) == ["007", "1", "2"]
    with open(os.path.join(uri, executor.REJECTS_DIR_NAME, "items.rejects.txt")) as f:
        assert f.read() == f"{F.ITEMS_FILE}:6: duplicate {F.ITEM_ID} '1' (first on line 3)\n"


def test_bad_header_is_fatal(tmp_path):
    d = _folder(tmp_path, "")
    with open(os.path.join(d, F.INTERACTIONS_FILE), "w") as f:
        f.write("user_id,item_id,timestamp\nu1,1,5\n")
    with pytest.raises(fm.HeaderError, match=f"{F.INTERACTIONS_FILE}: header is missing "
                                             f"required column '{F.LABEL}'"):
        run_executor(d, fm.INTERACTIONS_TABLE, 0.05, str(tmp_path / "out"))


def test_missing_items_file_is_fatal_for_interactions(tmp_path):
    d = _folder(tmp_path, "u1,1,5,1\n")
    os.remove(os.path.join(d, F.ITEMS_FILE))
    with pytest.raises(FileNotFoundError, match=F.ITEMS_FILE):
        run_executor(d, fm.INTERACTIONS_TABLE, 0.05, str(tmp_path / "out"))
