"""item id -> catalog row and Semantic ID codes, inside the TF graph.

The tables are built from the ItemCatalog's catalog.tsv (item_id, row, semantic_id_str) with
`tf.lookup.TextFileInitializer`, so the file travels with the saved graph as an asset (no graph
constants: a million-item catalog stays far from GraphDef's 2 GB limit) and serving resolves
every catalog item, including items never seen in training. An id not in the catalog (or the
history padding "") gets row -1 and codes -1.
"""
import json
import os

import tensorflow as tf

from schemas import artifact_layout, features

UNKNOWN = -1
# The catalog file's name among the Transform graph's assets (TextFileInitializer keeps it).
CATALOG_ASSET = artifact_layout.ItemCatalog.CATALOG_TSV
_TSV_ITEM_ID, _TSV_ROW, _TSV_SID = 0, 1, 2


def read_catalog_metadata(catalog_dir: str) -> dict:
    path = os.path.join(catalog_dir, artifact_layout.ItemCatalog.METADATA_JSON)
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


class CatalogLookup:
    def __init__(self, catalog_dir: str):
        self.metadata = read_catalog_metadata(catalog_dir)
        self.sid_length = int(self.metadata["sid_length"])
        tsv = os.path.join(catalog_dir, artifact_layout.ItemCatalog.CATALOG_TSV)
        self._rows = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(tsv, tf.string, _TSV_ITEM_ID, tf.int64, _TSV_ROW,
                                          delimiter="\t"), UNKNOWN)
        self._sids = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(tsv, tf.string, _TSV_ITEM_ID, tf.string, _TSV_SID,
                                          delimiter="\t"), "")

    def rows(self, item_ids: tf.Tensor) -> tf.Tensor:
        """Catalog rows, same shape as `item_ids`."""
        return self._rows.lookup(item_ids)

    def semantic_ids(self, item_ids: tf.Tensor) -> tf.Tensor:
        """Codes of shape item_ids.shape + [sid_length]; all -1 for an unknown id."""
        flat = tf.reshape(item_ids, [-1])
        sid_str = self._sids.lookup(flat)
        # "12-5-40-0" -> "12 5 40 0": an unknown id's "" then splits into no tokens at all.
        tokens = tf.strings.split(tf.strings.regex_replace(sid_str, features.SID_SEPARATOR, " "))
        codes = tf.strings.to_number(
            tokens.to_tensor(default_value=str(UNKNOWN), shape=[None, self.sid_length]), tf.int64)
        return tf.reshape(codes, tf.concat([tf.shape(item_ids), [self.sid_length]], axis=0))
