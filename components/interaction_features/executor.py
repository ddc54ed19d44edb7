"""Beam wiring of InteractionFeatures; the rules live in core.py (see its docstring).

Pipeline (runner-agnostic: no shared local state, every DoFn is picklable):
  read Split-all (span mode: of every span of the window, rows tagged with their span)
  rows  -> (timestamp, 1) -> CombinePerKey(sum) -> CombineGlobally(cuts)    [one global combine]
  rows  -> AssignSplit(cuts side input) -> kept / dropped / held-out item ids (both holdouts)
  kept rows that flags look back at -> ((item id, split), 1) -> CombinePerKey(sum) -> AsDict
           side input [rows per item and split]
  kept  -> key by user -> GroupByKey -> UserHistories(train item counts) -> one tagged output per
           split (is_new_user from the user's own group: does it hold a train row?)
  per-split writes: WriteSplit (gzipped TFRecords Split-<name>/data_tfrecord-*.gz)
  stats -> CombinePerKey(sum) -> ToDict -> WriteSummary (split_summary.json)
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import apache_beam as beam
import tensorflow as tf
from absl import logging
from apache_beam.io.filesystems import FileSystems
from tfx import types
from tfx.components.example_gen import write_split
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

from components.interaction_features import core
from components import examples_io
from components import progress
from schemas import features

# Channel keys. ComponentSpec needs distinct names across INPUTS and OUTPUTS, so the input is
# `input_examples` (the component's constructor argument is still `examples=`).
INPUT_EXAMPLES_KEY = "input_examples"
# Optional: the Examples of earlier spans (a span-window Resolver), read with input_examples.
WINDOW_EXAMPLES_KEY = "window_examples"
EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY

_DROPPED = "dropped"
_HELDOUT_ITEMS = "heldout_items"
_HELDOUT_VALIDATION_ITEMS = "heldout_validation_items"
_STATS = "stats"
SPAN_PROPERTY = "span"


def _single(example: tf.train.Example, name: str, kind: str):
    feature = example.features.feature.get(name)
    values = getattr(feature, kind).value if feature is not None else ()
    if len(values) != 1:
        raise ValueError(
            f"InteractionFeatures: every input row needs exactly one {kind} value of "
            f"{name!r}; got {list(values)!r} in {example}")
    return values[0]


def parse_row(serialized: bytes, span: Optional[int] = None) -> core.Interaction:
    """A serialized input tf.Example -> core.Interaction (payload: the serialized example)."""
    example = tf.train.Example.FromString(serialized)
    label = _single(example, features.LABEL, "int64_list")
    if label not in (0, 1):
        raise ValueError(f"InteractionFeatures: {features.LABEL!r} must be 0 or 1, got {label}")
    return core.Interaction(
        user_id=_single(example, features.USER_ID, "bytes_list"),
        item_id=_single(example, features.ITEM_ID, "bytes_list"),
        timestamp=_single(example, features.TIMESTAMP, "int64_list"),
        label=label, split=None, payload=serialized, span=span)


def encode_row(row: core.Interaction, history: List[bytes], history_labels: List[int],
               flags: core.RowFlags) -> bytes:
    """The input example plus history, history_labels (possibly empty lists) and the 0/1 flags
    is_new_item, is_new_user and is_tail_item (one int64 each)."""
    example = tf.train.Example.FromString(row.payload)
    fmap = example.features.feature
    fmap[features.HISTORY].bytes_list.SetInParent()  # present even when empty
    fmap[features.HISTORY].bytes_list.value[:] = history
    fmap[features.HISTORY_LABELS].int64_list.SetInParent()
    fmap[features.HISTORY_LABELS].int64_list.value[:] = history_labels
    for name, value in flags.as_features().items():
        fmap[name].int64_list.value[:] = [int(value)]
    return example.SerializeToString()


class _CountsFn(beam.CombineFn):
    """Global combine over (key, count) pairs into {key: summed count}; subclasses turn the sums
    into cuts."""

    def create_accumulator(self) -> Dict[Any, int]:
        return {}

    def add_input(self, acc, element):
        key, count = element
        acc[key] = acc.get(key, 0) + count
        return acc

    def merge_accumulators(self, accumulators):
        merged: Dict[Any, int] = {}
        for acc in accumulators:
            for key, count in acc.items():
                merged[key] = merged.get(key, 0) + count
        return merged


class _TimeCutsFn(_CountsFn):
    """(timestamp, count) pairs -> core.TimeCuts."""

    def __init__(self, eval_fraction: float, validation_fraction: float):
        self._eval_fraction = eval_fraction
        self._validation_fraction = validation_fraction

    def extract_output(self, acc) -> core.TimeCuts:
        return core.compute_time_cuts(acc.items(), self._eval_fraction, self._validation_fraction)


class _SpanCutsFn(_CountsFn):
    """((span, timestamp), count) pairs -> core.TimeCuts (span mode)."""

    def __init__(self, plan: core.SpanPlan, validation_fraction: float):
        self._plan = plan
        self._validation_fraction = validation_fraction

    def extract_output(self, acc) -> core.TimeCuts:
        return core.compute_span_cuts(((span, ts, c) for (span, ts), c in acc.items()),
                                      self._plan, self._validation_fraction)


class _AssignSpanSplit(beam.DoFn):
    """Span mode: every row kept, its split from its span (core.assign_span_split)."""

    def __init__(self, plan: core.SpanPlan, seed: int):
        self._plan = plan
        self._seed = seed

    def process(self, row: core.Interaction, cuts: core.TimeCuts):
        unit = (core.row_hash_unit(self._seed, row.user_id, row.item_id, row.timestamp)
                if row.span in self._plan.replay_spans else 1.0)
        yield row._replace(
            split=core.assign_span_split(row.span, row.timestamp, self._plan, cuts, unit))


class _AssignSplit(beam.DoFn):
    """Kept rows (split set) to the main output; dropped rows and the ids of eval- and
    validation-held-out items tagged."""

    def __init__(self, seed: int, new_item_fraction: float, validation_new_item_fraction: float):
        self._seed = seed
        self._new_item_fraction = new_item_fraction
        self._validation_new_item_fraction = validation_new_item_fraction

    def process(self, row: core.Interaction, cuts: core.TimeCuts):
        heldout = core.heldout_split(row.item_id, self._seed, self._new_item_fraction,
                                     self._validation_new_item_fraction)
        if heldout is not None:
            yield beam.pvalue.TaggedOutput(
                _HELDOUT_ITEMS if heldout == features.EVAL else _HELDOUT_VALIDATION_ITEMS,
                row.item_id)
            if row.timestamp <= core.drop_cut(heldout, cuts):
                yield beam.pvalue.TaggedOutput(_DROPPED, 1)
                return
        yield row._replace(split=core.assign_split(row.timestamp, cuts))


class _UserHistories(beam.DoFn):
    """One user's rows -> output examples tagged by split, plus per-user (stat, count) pairs.
    History-only rows (span mode) feed the histories and are not written."""

    def __init__(self, history_length: int, span_mode: bool):
        self._history_length = history_length
        self._span_mode = span_mode

    def process(self, keyed_rows, item_split_rows):
        _, rows = keyed_rows
        rows = list(rows)
        counts = {key: 0 for key in core.COUNT_KEYS}
        user_splits = {row.split for row in rows}
        for row, history, history_labels in core.build_histories(rows, self._history_length):
            counts[core.SPLIT_COUNT_KEYS[row.split]] += 1
            if row.split == core.CONTEXT:
                continue
            seen = core.reference_splits(row.split, self._span_mode)
            flags = core.row_flags(bool(user_splits & seen),
                                   sum(item_split_rows.get((row.item_id, s), 0) for s in seen))
            for name, value in flags.as_features().items():
                key = core.FLAG_COUNT_KEYS[name].get(row.split)
                if key is not None:
                    counts[key] += value
            yield beam.pvalue.TaggedOutput(row.split, encode_row(row, history, history_labels, flags))
        if not user_splits & core.reference_splits(features.EVAL, self._span_mode):
            counts[core.EVAL_ROWS_FROM_USERS_ABSENT_FROM_TRAIN] = counts[core.NUM_EVAL]
        for key, value in counts.items():
            if value:
                yield beam.pvalue.TaggedOutput(_STATS, (key, value))


class _WriteSummary(beam.DoFn):
    """Writes split_summary.json (idempotent: a retried bundle rewrites the same file)."""

    def __init__(self, path: str, history_length: int, plan: Optional[core.SpanPlan]):
        self._path = path
        self._history_length = history_length
        self._plan = plan

    def process(self, counts: Dict[str, int], cuts: core.TimeCuts):
        summary = core.make_split_summary(counts, cuts, self._history_length, self._plan)
        with FileSystems.create(self._path) as f:
            f.write(json.dumps(summary, indent=2, sort_keys=True).encode("utf-8"))
        yield summary


def _read_exec_properties(exec_properties: Dict[str, Any]):
    eval_fraction = float(exec_properties[core.EVAL_FRACTION_KEY])
    validation_fraction = float(exec_properties[core.VALIDATION_FRACTION_KEY])
    new_item_fraction = float(exec_properties[core.NEW_ITEM_FRACTION_KEY])
    # Absent from exec properties recorded before the validation holdout existed: none.
    validation_new_item_fraction = float(
        exec_properties.get(core.VALIDATION_NEW_ITEM_FRACTION_KEY) or 0.0)
    seed = int(exec_properties[core.SEED_KEY])
    history_length = int(exec_properties[core.HISTORY_LENGTH_KEY])
    core.validate_params(eval_fraction, validation_fraction, new_item_fraction, history_length,
                         validation_new_item_fraction)
    # Absent from exec properties recorded before spans: one span, the time split.
    window_spans = int(exec_properties.get(core.WINDOW_SPANS_KEY) or 1)
    train_newest_span_only = bool(exec_properties.get(core.TRAIN_NEWEST_SPAN_ONLY_KEY) or 0)
    # Absent from exec properties recorded before replay: none.
    replay_share = float(exec_properties.get(core.REPLAY_SHARE_KEY) or 0.0)
    core.validate_replay_share(replay_share)
    return (eval_fraction, validation_fraction, new_item_fraction, validation_new_item_fraction,
            seed, history_length, window_spans, train_newest_span_only, replay_share)


def span_of(artifact: types.Artifact) -> int:
    """The Examples' span: ExampleGen's driver records it as a custom property (read by TFX's
    SpanRangeStrategy too); 0 when absent."""
    if artifact.has_custom_property(SPAN_PROPERTY):
        value = artifact.get_custom_property(SPAN_PROPERTY)
        return int(value) if value not in (None, "") else 0
    return int(getattr(artifact, SPAN_PROPERTY, 0) or 0)


def window_artifacts(current: types.Artifact, earlier: Sequence[types.Artifact]
                     ) -> Dict[int, types.Artifact]:
    """{span: Examples} to read: the current run's Examples for its span, and for each earlier
    span the newest artifact (highest MLMD id; a span ingested twice appears twice in the
    Resolver's list). Spans after the current one are left out."""
    current_span = span_of(current)
    by_span: Dict[int, types.Artifact] = {}
    for artifact in sorted(earlier, key=lambda a: a.id):
        span = span_of(artifact)
        if span < current_span:
            by_span[span] = artifact
    by_span[current_span] = current
    return by_span


class Executor(base_beam_executor.BaseBeamExecutor):
    """Splits SPLIT_ALL into train/validation/eval by time and adds history features."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        (eval_fraction, validation_fraction, new_item_fraction, validation_new_item_fraction,
         seed, history_length, window_spans, train_newest_span_only,
         replay_share) = _read_exec_properties(exec_properties)

        current = artifact_utils.get_single_instance(input_dict[INPUT_EXAMPLES_KEY])
        by_span = window_artifacts(current, input_dict.get(WINDOW_EXAMPLES_KEY) or [])
        plan = core.plan_spans(by_span, window_spans, train_newest_span_only, replay_share)
        # The spans the summary records: a window of one span (a pipeline's first span) is
        # split by time, and trained and evaluated on that span.
        summary_plan = plan
        if plan is None:
            sources = {None: current}
            if window_spans > 1:
                span = span_of(current)
                summary_plan = core.SpanPlan((span,), span, (span,))
        else:
            sources = {span: by_span[span] for span in plan.window}
            logging.info("InteractionFeatures: span window %s (Examples %s): evaluating span %d, "
                         "training on %s, replaying %s (share %s)", list(plan.window),
                         [by_span[s].id for s in plan.window], plan.eval_span,
                         list(plan.train_spans), list(plan.replay_spans), plan.replay_share)
            if new_item_fraction or validation_new_item_fraction:
                logging.info("InteractionFeatures: no held-out items in span mode (a span's new "
                             "items are the ones it brings); ignoring new_item_fraction=%s, "
                             "validation_new_item_fraction=%s", new_item_fraction,
                             validation_new_item_fraction)
                new_item_fraction = validation_new_item_fraction = 0.0
        output_artifact = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        output_artifact.split_names = artifact_utils.encode_split_names(list(features.SPLITS))
        summary_path = os.path.join(output_artifact.uri, core.SUMMARY_FILE)

        with self._make_beam_pipeline() as p:
            parsed = []
            for span, artifact in sources.items():
                name = "" if span is None else f"[span-{span}]"
                input_uri = artifact_utils.get_split_uri([artifact], features.SPLIT_ALL)
                parsed.append(p
                              | f"Read{name}" >> beam.io.ReadFromTFRecord(
                                  os.path.join(input_uri, "*"))
                              | f"Parse{name}" >> beam.Map(parse_row, span=span))
            rows = (parsed[0] if len(parsed) == 1 else parsed | "Spans" >> beam.Flatten())
            rows = rows | "Progress" >> beam.ParDo(
                progress.LogProgress("InteractionFeatures", "rows read"))
            if plan is None:
                cuts = (rows
                        | "TimestampOnes" >> beam.Map(lambda r: (r.timestamp, 1))
                        | "CountPerTimestamp" >> beam.CombinePerKey(sum)
                        | "TimeCuts" >> beam.CombineGlobally(
                            _TimeCutsFn(eval_fraction, validation_fraction)))
            else:
                cuts = (rows
                        | "SpanTimestampOnes" >> beam.Map(lambda r: ((r.span, r.timestamp), 1))
                        | "CountPerSpanTimestamp" >> beam.CombinePerKey(sum)
                        | "SpanCuts" >> beam.CombineGlobally(
                            _SpanCutsFn(plan, validation_fraction)))
            cuts_si = beam.pvalue.AsSingleton(cuts)

            assign = (_AssignSplit(seed, new_item_fraction, validation_new_item_fraction)
                      if plan is None else _AssignSpanSplit(plan, seed))
            assigned = rows | "AssignSplit" >> beam.ParDo(assign, cuts_si).with_outputs(
                _DROPPED, _HELDOUT_ITEMS, _HELDOUT_VALIDATION_ITEMS, main="kept")
            kept = assigned.kept

            # Rows per (item, split) of the splits flags look back at (absent: 0 rows).
            seen_splits = frozenset().union(*(core.reference_splits(split, plan is not None)
                                              for split in features.SPLITS))
            item_split_rows = (kept
                               | "SeenRows" >> beam.Filter(lambda r: r.split in seen_splits)
                               | "ItemSplitOnes" >> beam.Map(lambda r: ((r.item_id, r.split), 1))
                               | "CountRowsPerItemSplit" >> beam.CombinePerKey(sum))

            per_split = (kept
                         | "KeyByUser" >> beam.Map(lambda r: (r.user_id, r))
                         | "GroupByUser" >> beam.GroupByKey()
                         | "UserHistories" >> beam.ParDo(
                             _UserHistories(history_length, plan is not None),
                             beam.pvalue.AsDict(item_split_rows)).with_outputs(
                                 _STATS, *features.SPLITS))

            # Written as grouped: TFX's WriteSplit would Reshuffle first, one more shuffle of the
            # largest data in the pipeline (histories); the Trainer shuffles its rows itself.
            for split in features.SPLITS:
                _ = (per_split[split]
                     | f"WriteSplit[{split}]" >> beam.io.WriteToTFRecord(
                         os.path.join(
                             artifact_utils.get_split_uri(output_dict[EXAMPLES_KEY], split),
                             write_split.DEFAULT_TF_RECORD_FILE_NAME),
                         file_name_suffix=".gz"))

            dropped_stats = (assigned[_DROPPED]
                             | "DroppedStat" >> beam.Map(lambda c: (core.NUM_DROPPED_ROWS, c)))
            heldout_stats = (assigned[_HELDOUT_ITEMS]
                             | "DistinctHeldoutItems" >> beam.Distinct()
                             | "HeldoutStat" >> beam.Map(lambda _: (core.NUM_HELDOUT_ITEMS, 1)))
            heldout_validation_stats = (
                assigned[_HELDOUT_VALIDATION_ITEMS]
                | "DistinctHeldoutValidationItems" >> beam.Distinct()
                | "HeldoutValidationStat" >> beam.Map(
                    lambda _: (core.NUM_HELDOUT_VALIDATION_ITEMS, 1)))
            _ = ((per_split[_STATS], dropped_stats, heldout_stats, heldout_validation_stats)
                 | "FlattenStats" >> beam.Flatten()
                 | "SumStats" >> beam.CombinePerKey(sum)
                 | "StatsDict" >> beam.combiners.ToDict().with_defaults()
                 | "WriteSummary" >> beam.ParDo(
                     _WriteSummary(summary_path, history_length, summary_plan), cuts_si))

        examples_io.mark_tf_example_output(output_artifact, current)

        with fileio.open(summary_path) as f:
            summary = json.loads(f.read())
        logging.info(core.summary_line(summary))
