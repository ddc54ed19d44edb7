"""The validating ExampleGen: TFX's FileBasedExampleGen with the executor of executor.py.

    from components.example_gen import ValidatingExampleGen
    item_gen = ValidatingExampleGen(data_dir, "items", config.max_bad_row_fraction)
    interaction_gen = ValidatingExampleGen(data_dir, "interactions", config.max_bad_row_fraction)
    # -> ids 'ItemExampleGen' / 'InteractionExampleGen'; outputs['examples'] has one split 'all'.
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import fingerprint
from components.example_gen import executor
from data import format as data_format
from schemas import features

COMPONENT_IDS = {data_format.INTERACTIONS_TABLE: "InteractionExampleGen",
                 data_format.ITEMS_TABLE: "ItemExampleGen"}


def _fingerprint(path: str) -> str:
    """size and mtime of a file ('' when absent), as TFX fingerprints its input files."""
    try:
        st = tf.io.gfile.stat(path)
    except tf.errors.NotFoundError:
        return ""
    return f"{path}:size={st.length}:mtime_nsec={st.mtime_nsec}"


def ValidatingExampleGen(input_base: str, table: str, max_bad_row_fraction: float,
                         instance_name: Optional[str] = None,
                         items_fingerprint: Optional[str] = None) -> FileBasedExampleGen:
    """A FileBasedExampleGen reading `<input_base>/<table file>` with row validation.

    table: "interactions" (interactions.csv, checked against items.csv in the same folder) or
    "items" (items.csv). Output: one split features.SPLIT_ALL of gzipped tf.Examples; rejects
    under `<examples uri>/rejects/`. The run fails (RejectedRowsError) when more than
    `max_bad_row_fraction` of the rows are rejected. instance_name: the component id
    (default InteractionExampleGen / ItemExampleGen). items_fingerprint (interactions only):
    None = stat items.csv now (a local run); a given string is used as it is (pipeline/vertex.py
    passes "" so that compiling for Vertex does not read gs:// at build time).
    """
    if table not in data_format.TABLES:
        raise ValueError(f"ValidatingExampleGen: table must be one of {data_format.TABLES}, "
                         f"got {table!r}")
    if not 0.0 <= max_bad_row_fraction < 1.0:
        raise ValueError(f"ValidatingExampleGen: max_bad_row_fraction must be in [0, 1), "
                         f"got {max_bad_row_fraction}")
    component_id = instance_name or COMPONENT_IDS[table]
    values = {executor.TABLE_KEY: table,
              executor.MAX_BAD_ROW_FRACTION_KEY: float(max_bad_row_fraction),
              executor.COMPONENT_ID_KEY: component_id,
              # The executor's code (components/fingerprint.py): FileBasedExampleGen's spec is
              # TFX's, so the fingerprint rides in custom_config, which TFX's cache keys on too.
              fingerprint.CODE_FINGERPRINT_KEY: fingerprint.code_fingerprint(executor.__name__)}
    if table == data_format.INTERACTIONS_TABLE:
        # TFX fingerprints only the files of the split pattern (interactions.csv); the accepted
        # rows also depend on items.csv (the latest span's in the span layout), so its
        # fingerprint goes into the exec properties.
        values[executor.ITEMS_FINGERPRINT_KEY] = (
            _fingerprint(data_format.table_file(input_base, data_format.ITEMS_TABLE))
            if items_fingerprint is None else items_fingerprint)
    # The table's file, or <table>/span-{SPAN}/<file>: TFX's driver then reads the latest span
    # and records it as the Examples' span.
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=features.SPLIT_ALL,
                                    pattern=data_format.table_pattern(input_base, table))])
    output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=features.SPLIT_ALL, hash_buckets=1)]))
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=output_config,
        custom_config=executor.pack_custom_config(values),
        custom_executor_spec=executor_spec.BeamExecutorSpec(executor.Executor),
    ).with_id(component_id)
