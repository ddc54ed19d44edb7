"""Executor of the validating ExampleGen: items.csv / interactions.csv -> tf.Examples.

items.csv is streamed by one DoFn (tf.io.gfile + the csv module, data/format.py): duplicate
item ids are found in file order. interactions.csv is cut into byte ranges at newlines
(data_format.plan_row_ranges: one pass counting newlines) that workers parse in parallel, each
knowing the physical line it starts at; a file holding a double quote (a quoted field may span
lines) is read by one DoFn instead. Every row keeps its physical line number either way.
Accepted rows become serialized tf.Examples; rejected rows go to a side output written, sorted
by line, to `<examples uri>/rejects/<table>.rejects.txt`, with
counts in `<examples uri>/rejects/<table>.summary.json`. After the Beam pipeline, `Do` raises
RejectedRowsError when the rejected fraction is above max_bad_row_fraction.

For interactions, the accepted item ids of items.csv (same input_base folder) are read in the
Beam pipeline and passed to the parser as a side input.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional

from absl import logging
import apache_beam as beam
import tensorflow as tf
from google.protobuf import json_format
from google.protobuf import struct_pb2
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

from components import progress
from data import format as data_format
from data.format import gfile_open
from schemas import features

# custom_config keys
TABLE_KEY = "table"
MAX_BAD_ROW_FRACTION_KEY = "max_bad_row_fraction"
COMPONENT_ID_KEY = "component_id"
ITEMS_FINGERPRINT_KEY = "items_fingerprint"  # only there to bust the cache when items.csv changes

REJECTS_DIR_NAME = "rejects"
_REJECTS_DIR_PROPERTY = "_semids_rejects_dir"  # exec_properties entry Do adds for the PTransform
_EXAMPLES, _REJECTS, _STATS = "examples", "rejects", "stats"
_FIRST_REJECTS_SHOWN = 10
# Byte range of interactions.csv one worker parses: ~100k rows; a 2M-row file -> ~20 ranges.
RANGE_BYTES = 4 << 20


def rejects_path(rejects_dir: str, table: str) -> str:
    return os.path.join(rejects_dir, f"{table}.rejects.txt")


def summary_path(rejects_dir: str, table: str) -> str:
    return os.path.join(rejects_dir, f"{table}.summary.json")


def rejects_dir_of(examples_uri: str) -> str:
    return os.path.join(examples_uri, REJECTS_DIR_NAME)


# --- custom_config -----------------------------------------------------------------------------

def pack_custom_config(values: Dict[str, Any]) -> example_gen_pb2.CustomConfig:
    """A CustomConfig holding `values` as a google.protobuf.Struct."""
    s = struct_pb2.Struct()
    s.update(values)
    cc = example_gen_pb2.CustomConfig()
    cc.custom_config.Pack(s)
    return cc


def unpack_custom_config(raw: Any) -> Dict[str, Any]:
    """custom_config as the executor gets it (JSON string, proto or dict) -> dict."""
    if raw is None or raw == "":
        raise ValueError("validating ExampleGen: custom_config is missing (build the component "
                         "with components.example_gen.ValidatingExampleGen)")
    if isinstance(raw, dict):
        return dict(raw)
    if isinstance(raw, str):
        cc = example_gen_pb2.CustomConfig()
        json_format.Parse(raw, cc)
    else:
        cc = raw
    s = struct_pb2.Struct()
    if not cc.custom_config.Unpack(s):
        raise ValueError(f"validating ExampleGen: custom_config is not a Struct: {cc}")
    return json_format.MessageToDict(s)


def _config(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
    cfg = unpack_custom_config(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY))
    table = cfg.get(TABLE_KEY)
    if table not in data_format.TABLES:
        raise ValueError(f"validating ExampleGen: custom_config table must be one of "
                         f"{data_format.TABLES}, got {table!r}")
    frac = float(cfg.get(MAX_BAD_ROW_FRACTION_KEY, 0.0))
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"validating ExampleGen: max_bad_row_fraction must be in [0, 1), "
                         f"got {frac}")
    cfg[MAX_BAD_ROW_FRACTION_KEY] = frac
    cfg.setdefault(COMPONENT_ID_KEY, "ValidatingExampleGen")
    return cfg


# --- Beam pieces -------------------------------------------------------------------------------

def interaction_example(record: Dict[str, Any]) -> bytes:
    """Serialized tf.train.Example of an interactions.csv record."""
    ex = tf.train.Example()
    f = ex.features.feature
    f[features.USER_ID].bytes_list.value.append(record[features.USER_ID].encode("utf-8"))
    f[features.ITEM_ID].bytes_list.value.append(record[features.ITEM_ID].encode("utf-8"))
    f[features.TIMESTAMP].int64_list.value.append(record[features.TIMESTAMP])
    f[features.LABEL].int64_list.value.append(record[features.LABEL])
    return ex.SerializeToString()


def item_example(record: Dict[str, Any]) -> bytes:
    """Serialized tf.train.Example of an items.csv record."""
    ex = tf.train.Example()
    f = ex.features.feature
    for name, value in record.items():
        if name == features.ITEM_EMBEDDING:
            f[name].float_list.value.extend(value)
        else:
            f[name].bytes_list.value.append(value.encode("utf-8"))
    return ex.SerializeToString()


def _accepted_item_ids(items_path: str):
    _, rows = data_format.read_items(items_path, opener=gfile_open)
    for _, record, _ in rows:
        if record is not None:
            yield record[features.ITEM_ID]


class _ParseFile(beam.DoFn):
    """(path, byte range or None) -> serialized tf.Examples (main), (line, reject text)
    (rejects), counts (stats). None: the whole file."""

    def __init__(self, table: str):
        self._table = table

    def setup(self):
        self._known = None  # the item-id set, built once per worker from the side input

    def process(self, source, known_item_ids: Optional[Iterable[str]] = None):
        path, row_range = source
        if self._table == data_format.INTERACTIONS_TABLE:
            if self._known is None and known_item_ids is not None:
                self._known = set(known_item_ids)
            if row_range is None:
                _, rows = data_format.read_interactions(path, self._known, opener=gfile_open)
            else:
                _, rows = data_format.read_interactions_range(path, row_range, self._known,
                                                              opener=gfile_open)
            to_example = interaction_example
        else:
            _, rows = data_format.read_items(path, opener=gfile_open)
            to_example = item_example
        accepted = rejected = 0
        for line, record, reject in rows:
            if reject is not None:
                rejected += 1
                yield beam.pvalue.TaggedOutput(_REJECTS, (line, str(reject)))
            else:
                accepted += 1
                yield to_example(record)
        yield beam.pvalue.TaggedOutput(_STATS, {"file": path, "rows_accepted": accepted,
                                                "rows_rejected": rejected})


def _write_rejects(rejects: List, stats: List[Dict[str, Any]], rejects_dir: str, table: str):
    rejects = sorted(rejects)
    tf.io.gfile.makedirs(rejects_dir)
    rpath = rejects_path(rejects_dir, table)
    with tf.io.gfile.GFile(rpath, "w") as f:
        f.write("")  # GFile creates the file on the first write: an empty list still makes one
        for _, text in rejects:
            f.write(text + "\n")
    accepted = sum(s["rows_accepted"] for s in stats)
    rejected = sum(s["rows_rejected"] for s in stats)
    total = accepted + rejected
    files = list(dict.fromkeys(s["file"] for s in stats))  # one stats row per byte range
    summary = {"table": table, "file": ",".join(files), "rows_total": total,
               "rows_accepted": accepted, "rows_rejected": rejected,
               "rejected_fraction": rejected / total if total else 0.0,
               "rejects_file": rpath,
               "first_rejects": [t for _, t in rejects[:_FIRST_REJECTS_SHOWN]]}
    with tf.io.gfile.GFile(summary_path(rejects_dir, table), "w") as f:
        json.dump(summary, f, indent=2)


def _single_file(input_base: str, pattern: str) -> str:
    full = os.path.join(input_base, pattern)
    files = tf.io.gfile.glob(full)
    if not files:
        raise FileNotFoundError(f"validating ExampleGen: no file matches {full} "
                                "(the data format is described in data/format.py)")
    if len(files) > 1:
        raise ValueError(f"validating ExampleGen: {full} matches {len(files)} files; "
                         "expected exactly one")
    return files[0]


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _CsvToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                  split_pattern: str) -> beam.pvalue.PCollection:
    """Reads one CSV file of the bring-your-own-data format into serialized tf.Examples."""
    cfg = _config(exec_properties)
    table = cfg[TABLE_KEY]
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    path = _single_file(input_base, split_pattern)
    data_format.check_header(path, table, opener=gfile_open)  # fatal errors surface here
    ranges = None
    if table == data_format.INTERACTIONS_TABLE:
        ranges = data_format.plan_row_ranges(path, opener=gfile_open, target_bytes=RANGE_BYTES)
        if ranges is None:
            logging.info("%s: read by one worker (it holds a double quote: a quoted field may "
                         "span lines)", os.path.basename(path))
    if ranges is None:
        source = pipeline | "SourcePath" >> beam.Create([(path, None)])
    else:
        logging.info("%s: %d byte ranges parsed in parallel", os.path.basename(path), len(ranges))
        source = (pipeline
                  | "SourceRanges" >> beam.Create([(path, r) for r in ranges])
                  | "SpreadRanges" >> beam.Reshuffle())
    outputs = [_REJECTS, _STATS]
    if table == data_format.INTERACTIONS_TABLE:
        # items.csv beside interactions.csv, or the same span's in the span layout.
        items_path = os.path.join(input_base, data_format.items_file_for(split_pattern))
        if not tf.io.gfile.exists(items_path):
            raise FileNotFoundError(
                f"validating ExampleGen: {items_path} is missing; interactions are checked "
                f"against the item ids of {features.ITEMS_FILE} in the same folder (the same "
                "span's, items/span-N/, in the span layout)")
        data_format.check_header(items_path, data_format.ITEMS_TABLE, opener=gfile_open)
        item_ids = (pipeline
                    | "ItemsPath" >> beam.Create([items_path])
                    | "ReadItemIds" >> beam.FlatMap(_accepted_item_ids))
        parsed = source | "Parse" >> beam.ParDo(
            _ParseFile(table), beam.pvalue.AsIter(item_ids)).with_outputs(*outputs, main=_EXAMPLES)
    else:
        parsed = source | "Parse" >> beam.ParDo(_ParseFile(table)).with_outputs(
            *outputs, main=_EXAMPLES)
    rejects_dir = exec_properties.get(_REJECTS_DIR_PROPERTY)
    if rejects_dir:
        _ = (parsed[_REJECTS]
             | "CollectRejects" >> beam.combiners.ToList()
             | "WriteRejects" >> beam.Map(_write_rejects, stats=beam.pvalue.AsList(parsed[_STATS]),
                                          rejects_dir=rejects_dir, table=table))
    return parsed[_EXAMPLES] | "Progress" >> beam.ParDo(
        progress.LogProgress(cfg[COMPONENT_ID_KEY], "rows accepted"))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Validating ExampleGen executor (see the module docstring)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _CsvToExample

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        cfg = _config(exec_properties)
        table, name = cfg[TABLE_KEY], cfg[COMPONENT_ID_KEY]
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        rejects_dir = rejects_dir_of(examples.uri)
        exec_properties = dict(exec_properties)
        exec_properties[_REJECTS_DIR_PROPERTY] = rejects_dir
        super().Do(input_dict, output_dict, exec_properties)

        with tf.io.gfile.GFile(summary_path(rejects_dir, table)) as f:
            summary = json.load(f)
        examples.set_int_custom_property("rows_accepted", summary["rows_accepted"])
        examples.set_int_custom_property("rows_rejected", summary["rows_rejected"])
        rpath = summary["rejects_file"]
        file_name = os.path.basename(summary["file"])
        if summary["rejected_fraction"] > cfg[MAX_BAD_ROW_FRACTION_KEY]:
            raise data_format.RejectedRowsError(
                file_name, summary["rows_total"], summary["rows_rejected"],
                cfg[MAX_BAD_ROW_FRACTION_KEY], rpath, summary["first_rejects"])
        if summary["rows_accepted"] == 0:
            raise ValueError(f"{name}: {file_name} has no data rows")
        logging.info("%s: %s rows accepted, %s rejected (see %s)", name,
                     f"{summary['rows_accepted']:,}", f"{summary['rows_rejected']:,}", rpath)
