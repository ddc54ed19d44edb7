"""prepare_dataset(config): the folder with the two CSVs for each dataset kind."""
import importlib.util
import os

import pytest

from pipeline.inputs import prepare_dataset
from schemas import features as F
from pipeline.config import RunConfig


def _has_both(d):
    return all(os.path.isfile(os.path.join(d, n)) for n in (F.ITEMS_FILE, F.INTERACTIONS_FILE))


def test_synthetic(tmp_path):
    cfg = RunConfig(dataset="synthetic", output_dir=str(tmp_path), synthetic_num_users=20,
                    synthetic_num_items=10, synthetic_num_interactions=100)
    d = prepare_dataset(cfg)
    assert d == cfg.prepared_data_dir and _has_both(d)
    with open(os.path.join(d, F.INTERACTIONS_FILE)) as f:
        assert sum(1 for _ in f) == 101


@pytest.mark.skipif(importlib.util.find_spec("recbole") is None, reason="recbole not installed")
def test_ml100k(tmp_path):
    cfg = RunConfig(dataset="ml100k", output_dir=str(tmp_path))
    d = prepare_dataset(cfg)
    assert d == cfg.prepared_data_dir and _has_both(d)


def test_csv(tmp_path):
    d = tmp_path / "mydata"
    d.mkdir()
    (d / F.ITEMS_FILE).write_text("item_id\n1\n")
    cfg = RunConfig(dataset="csv", data_dir=str(d))
    with pytest.raises(FileNotFoundError, match=F.INTERACTIONS_FILE):
        prepare_dataset(cfg)
    (d / F.INTERACTIONS_FILE).write_text(",".join(F.INTERACTION_COLUMNS) + "\n")
    assert prepare_dataset(cfg) == str(d)


def test_the_schema_is_staged_under_a_path_named_by_its_content(tmp_path):
    """ImportSchemaGen caches on the schema_file path: an edited schema must get a new path."""
    from pipeline.inputs import staged_schema
    cfg = RunConfig(output_dir=str(tmp_path / "out"))
    schema = tmp_path / "interactions.pbtxt"
    schema.write_text('feature { name: "a" type: INT }\n')
    first = staged_schema(cfg, str(schema))
    assert staged_schema(cfg, str(schema)) == first
    with open(first) as f:
        assert f.read() == schema.read_text()
    schema.write_text('feature { name: "b" type: INT }\n')
    second = staged_schema(cfg, str(schema))
    assert second != first and os.path.basename(second) == "interactions.pbtxt"
    with open(second) as f:
        assert '"b"' in f.read()
