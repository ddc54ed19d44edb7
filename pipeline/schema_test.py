"""The curated schema agrees with schemas/features.py."""
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils

from schemas import features
from schemas import INTERACTIONS_SCHEMA


def _schema():
    return io_utils.SchemaReader().read(INTERACTIONS_SCHEMA)


def test_schema_has_exactly_the_interaction_features():
    names = {f.name for f in _schema().feature}
    assert names == set(features.INTERACTION_COLUMNS) | {
        features.HISTORY, features.HISTORY_LABELS, features.IS_NEW_ITEM, features.IS_NEW_USER,
        features.IS_TAIL_ITEM}


def test_serving_environment_lacks_label_and_bookkeeping():
    schema = _schema()
    assert set(schema.default_environment) == {"TRAINING", "SERVING"}
    not_serving = {f.name for f in schema.feature if "SERVING" in f.not_in_environment}
    assert not_serving == {features.LABEL, features.TIMESTAMP, features.IS_NEW_ITEM,
                           features.IS_NEW_USER, features.IS_TAIL_ITEM}
    assert set(features.SERVING_FEATURES) == {f.name for f in schema.feature} - not_serving


def test_history_lengths_are_not_fixed():
    by_name = {f.name: f for f in _schema().feature}
    for name in (features.HISTORY, features.HISTORY_LABELS):
        assert not by_name[name].HasField("shape")
        assert by_name[name].value_count.max == 0
    assert by_name[features.USER_ID].type == schema_pb2.BYTES


def test_row_flags_are_training_only_single_0_1_ints():
    by_name = {f.name: f for f in _schema().feature}
    for name in (features.IS_NEW_ITEM, features.IS_NEW_USER, features.IS_TAIL_ITEM):
        f = by_name[name]
        assert f.type == schema_pb2.INT, name
        assert (f.int_domain.min, f.int_domain.max) == (0, 1), name
        assert f.presence.min_fraction == 1.0, name
        assert [d.size for d in f.shape.dim] == [1], name
        assert list(f.not_in_environment) == ["SERVING"], name
