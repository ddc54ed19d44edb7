"""Small helpers the custom Beam components share for tf.Example artifacts."""
import os

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen import write_split
from tfx.proto import example_gen_pb2
from tfx.types import artifact as tfx_artifact
from tfx.components.util import examples_utils

from schemas import features

# What every custom component writes: gzipped TFRecords of tf.Examples (TFX's default).
FILE_FORMAT = example_gen_pb2.FORMAT_TFRECORDS_GZIP


def mark_tf_example_output(output: tfx_artifact.Artifact, derived_from: tfx_artifact.Artifact):
    """Records the payload and file format of an Examples output as TFX's ExampleGen does, and
    carries span and version over from the Examples it was derived from."""
    examples_utils.set_payload_format(output, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(output, write_split.to_file_format_str(FILE_FORMAT))
    for prop in ("span", "version"):
        if derived_from.has_property(prop):
            setattr(output, prop, getattr(derived_from, prop))


def single_item_id(example: tf.train.Example, who: str) -> bytes:
    """The one `item_id` bytes value of an example; ValueError naming the component otherwise."""
    feature = example.features.feature.get(features.ITEM_ID)
    values = feature.bytes_list.value if feature is not None else ()
    if len(values) != 1:
        raise ValueError(f"{who}: every row needs exactly one bytes value of "
                         f"{features.ITEM_ID!r}; got {list(values)!r}")
    return values[0]


@beam.ptransform_fn
def WriteExamples(serialized: beam.pvalue.PCollection, split_uri: str) -> beam.pvalue.PDone:
    """Serialized tf.Examples -> `<split_uri>/data_tfrecord-*.gz`, the layout and format of
    TFX's write_split.WriteSplit without its Reshuffle: a Reshuffle makes the in-memory
    DirectRunner hold the whole split in memory (1M embeddings = several GiB) and buys nothing
    here, since no reader depends on the records' order across files."""
    return serialized | "Write" >> beam.io.WriteToTFRecord(
        os.path.join(split_uri, write_split.DEFAULT_FILE_NAME), file_name_suffix=".gz")
