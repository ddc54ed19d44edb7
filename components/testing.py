"""Test helper shared by the components' executor tests: a hand-made Examples artifact."""
import os
from typing import Dict, Sequence, Union

import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts


def write_examples_artifact(uri: str, examples_by_split: Dict[str, Sequence[Union[tf.train.Example, bytes]]],
                            shards: int = 2) -> standard_artifacts.Examples:
    """An Examples artifact at `uri` whose splits hold the given tf.Examples (or serialized
    ones) in `shards` gzipped TFRecord files each, the layout TFX components write."""
    art = standard_artifacts.Examples()
    art.uri = uri
    art.split_names = artifact_utils.encode_split_names(list(examples_by_split))
    for split, examples in examples_by_split.items():
        split_dir = artifact_utils.get_split_uri([art], split)
        os.makedirs(split_dir)
        for shard in range(shards):
            path = os.path.join(split_dir, f"data_tfrecord-{shard:05d}-of-{shards:05d}.gz")
            with tf.io.TFRecordWriter(path, options="GZIP") as w:
                for ex in examples[shard::shards]:
                    w.write(ex if isinstance(ex, bytes) else ex.SerializeToString())
    return art
