"""Item representations: Transform outputs of one item in, one embedding out.

Every representation has the same interface, so the ranking model applies the same one to the
candidate and to every history item:
    rep = make_representation(name, options)
    emb = rep(transformed_features, role)  # role CANDIDATE -> [batch, d]; HISTORY -> [batch, H, d]
`rep.table_rows` is the number of embedding rows the item feature uses (the table budget B caps
it; dense_content has none).

Transform emits budget-independent inputs (an id fingerprint, the SID codes, the catalog row,
SentencePiece piece ids per budget); the representation maps them to rows of its tables. So one
Transform output serves every representation and budget, and changing either reruns only the
Trainer.

Which Transform outputs a representation reads is said once, here: each class's
`input_keys(table_budget)` ({role: key}), and `model_input_keys(representation, table_budget,
use_history)` for everything the ranking model reads (models/ranking/model.py reads its inputs
by the same keys; the experiment runner loads exactly these).
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple, Type

import numpy as np
import tensorflow as tf

from schemas import features

CANDIDATE = "candidate"
HISTORY = "history"
ROLES = (CANDIDATE, HISTORY)

# The Transform outputs the ranking model reads besides the item representation's: the user, and
# with history the history's labels and padding mask.
USER_KEY = features.USER_ID_HASHED
HISTORY_LABELS_KEY = features.HISTORY_LABELS_DENSE
HISTORY_MASK_KEY = features.HISTORY_MASK

# Rows start at zero: a row no training item reached (a new item, a hash bucket or SID prefix
# never seen) then reads as the average item, not as noise.
_INIT = tf.keras.initializers.Zeros()
# Odd 64-bit constants of splitmix64: an integer hash for ids larger than their table.
_MIX_1 = np.int64(-4658895280553007687)  # 0xBF58476D1CE4E5B9
_MIX_2 = np.int64(-7723592293110705685)  # 0x94D049BB133111EB


@dataclasses.dataclass(frozen=True)
class RepresentationOptions:
    table_budget: int  # B: cap on the item feature's embedding rows
    embedding_dim: int
    sid_length: int = 0  # S: codes per SID (RQ-VAE levels + the collision breaker)
    codebook_size: int = 0  # K
    catalog_embeddings: Optional[np.ndarray] = None  # [N, E] frozen content embeddings
    # L2 on every embedding row a batch reads, table by table (frequency-weighted, as in sparse
    # training): a row shared by many items (a SID prefix) then carries what they have in common
    # and an item's own rows only what sets it apart, which a new item inherits.
    l2: float = 0.0
    # In training, the share of candidates seen as the model would see a new item: only a
    # random number of their leading tables / pieces is kept (none for random_hash).
    cold_start_dropout: float = 0.0
    catalog_size: int = 0  # N: items in the catalog (0 without one)


def hash_int64(x: tf.Tensor, num_rows: int, salt: int = 0) -> tf.Tensor:
    """A well-mixed int64 hash of `x` into [0, num_rows) (splitmix64's finaliser; int64
    multiplication wraps around, which is what the mixing wants)."""
    z = x + tf.constant(salt * 0x9E3779B9 + 1, tf.int64)
    z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(30, tf.int64))) * _MIX_1
    z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(27, tf.int64))) * _MIX_2
    z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(31, tf.int64)))
    return tf.math.floormod(z, num_rows)


class ItemRepresentation(tf.keras.layers.Layer):
    """Base: maps the transformed features of the candidate or of the history to embeddings.

    A subclass names the Transform output it reads per role in CANDIDATE_KEY / HISTORY_KEY (or
    overrides `input_keys` when the key depends on the budget) and reads it with `input_key`."""

    table_rows: int = 0
    CANDIDATE_KEY: str = ""
    HISTORY_KEY: str = ""

    def __init__(self, options: RepresentationOptions, **kwargs):
        super().__init__(**kwargs)
        self.table_budget = int(options.table_budget)
        self.l2 = float(options.l2)
        self.cold_start_dropout = float(options.cold_start_dropout)

    def kept_parts(self, batch_shape, num_parts: int, role: str, training) -> Optional[tf.Tensor]:
        """[batch, num_parts] 0/1: which leading parts of each candidate to keep (cold-start
        dropout); None when everything is kept."""
        if not (training and role == CANDIDATE and self.cold_start_dropout > 0):
            return None
        batch = batch_shape[0]
        drop = tf.random.uniform([batch, 1]) < self.cold_start_dropout
        keep = tf.random.uniform([batch, 1], 0, num_parts, dtype=tf.int32)  # 0..num_parts-1
        keep = tf.where(drop, keep, num_parts)
        return tf.cast(tf.range(num_parts)[None, :] < keep, tf.float32)

    def regularise(self, rows: tf.Tensor, training) -> tf.Tensor:
        """Adds the L2 penalty of looked-up rows [..., d] (zero rows cost nothing) when
        training; returns them unchanged."""
        if training and self.l2 > 0:
            per_example = tf.reduce_sum(tf.reshape(tf.square(rows), [tf.shape(rows)[0], -1]), 1)
            self.add_loss(self.l2 * tf.reduce_mean(per_example))
        return rows

    @classmethod
    def input_keys(cls, table_budget: int) -> Dict[str, str]:
        """{role: the Transform output this representation reads for it} at budget B."""
        return {CANDIDATE: cls.CANDIDATE_KEY, HISTORY: cls.HISTORY_KEY}

    @classmethod
    def extra_input_keys(cls, table_budget: int) -> Dict[str, str]:
        """{role: a second Transform output read beside input_keys'} (none here)."""
        return {}

    @classmethod
    def table_layout(cls, table_budget: int, sid_length: int, codebook_size: int,
                     **kwargs) -> Tuple:
        """What the budget B changes in this representation: two budgets with the same layout
        build the same model on the same inputs. Here: everything (B itself)."""
        return ("budget", int(table_budget))

    def input_key(self, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        return self.input_keys(self.table_budget)[role]

    def call(self, inputs: Dict[str, tf.Tensor], role: str = CANDIDATE, training=False) -> tf.Tensor:
        raise NotImplementedError

    def shared_state(self) -> Dict[str, tf.keras.layers.Layer]:
        """Constructor arguments a second instance (the item prior) takes from this one instead
        of building its own: frozen, untrained state only (none here)."""
        return {}


class RandomHash(ItemRepresentation):
    """random_hash: an id table of B rows keyed by nothing but the item's identity. While the
    catalog leaves a row to spare (N < B) each catalog item has its own row, its catalog row (a
    vocabulary over the catalog, as TFT's compute_and_apply_vocabulary would build), and an id
    outside the catalog is hashed into the spare rows, which no training item reaches; beyond
    that the id's fingerprint is hashed into the B rows and items collide at random. It is given
    both inputs (the mode depends on N, which input keys do not know) and reads what it needs."""

    CANDIDATE_KEY = features.ITEM_ID_FINGERPRINT
    HISTORY_KEY = features.HISTORY_FINGERPRINT
    ROW_KEYS = {CANDIDATE: features.ITEM_CATALOG_ROW, HISTORY: features.HISTORY_CATALOG_ROW}

    def __init__(self, options: RepresentationOptions, **kwargs):
        super().__init__(options, **kwargs)
        self.table_rows = options.table_budget
        self.catalog_size = int(options.catalog_size)
        self.one_row_per_item = 0 < self.catalog_size < self.table_rows
        self.table = tf.keras.layers.Embedding(self.table_rows, options.embedding_dim,
                                               embeddings_initializer=_INIT, name="item_hash")

    @classmethod
    def extra_input_keys(cls, table_budget: int) -> Dict[str, str]:
        return dict(cls.ROW_KEYS)

    def call(self, inputs, role=CANDIDATE, training=False):
        fp = inputs[self.input_key(role)]
        if self.one_row_per_item:
            row = tf.cast(inputs[self.ROW_KEYS[role]], tf.int64)
            spare = self.catalog_size + tf.math.floormod(fp, self.table_rows - self.catalog_size)
            index = tf.where(row < 0, spare, row)
        else:
            index = tf.math.floormod(fp, self.table_rows)
        rows = self.table(index)
        kept = self.kept_parts(tf.shape(fp), 1, role, training)
        if kept is not None:
            rows = rows * kept
        if role == HISTORY and HISTORY_MASK_KEY in inputs:  # padding reads no row
            rows = rows * tf.cast(tf.expand_dims(inputs[HISTORY_MASK_KEY], -1), rows.dtype)
        return self.regularise(rows, training)


def split_budget(key_spaces: Sequence[int], budget: int):
    """Rows per table when `budget` is split evenly across tables whose distinct keys number
    `key_spaces`: a table never gets more rows than it has keys (then it is exact) and a larger
    one is hashed into its share."""
    share = budget // len(key_spaces)
    if share < 1:
        raise ValueError(f"table budget {budget} is smaller than the {len(key_spaces)} tables")
    return [min(k, share) for k in key_spaces]


class _SidTables(ItemRepresentation):
    """Shared machinery: one table per SID-derived key, embeddings summed over the keys; an item
    not in the catalog (codes -1) gets a zero embedding."""

    CANDIDATE_KEY = features.ITEM_SID
    HISTORY_KEY = features.HISTORY_SID

    def __init__(self, options: RepresentationOptions, key_spaces: Sequence[int], **kwargs):
        super().__init__(options, **kwargs)
        if options.sid_length < 1 or options.codebook_size < 2:
            raise ValueError(f"{self.name}: needs sid_length and codebook_size of the catalog")
        self.options = options
        self.key_spaces = list(key_spaces)
        self.rows = split_budget(self.key_spaces, options.table_budget)
        self.table_rows = int(sum(self.rows))
        self.tables = [tf.keras.layers.Embedding(r, options.embedding_dim,
                                                 embeddings_initializer=_INIT, name=f"table_{i}")
                       for i, r in enumerate(self.rows)]

    @classmethod
    def table_layout(cls, table_budget, sid_length, codebook_size, **kwargs):
        """Rows per table: once every table is exact, a larger B changes nothing (sid_ngram_1
        has L x K rows at any budget above that)."""
        return tuple(split_budget(cls.key_spaces_of(sid_length, codebook_size, **kwargs),
                                  table_budget))

    @staticmethod
    def key_spaces_of(sid_length: int, codebook_size: int, **kwargs) -> List[int]:
        """Distinct keys of each table."""
        raise NotImplementedError

    def keys(self, codes: tf.Tensor):
        """[..., S] codes -> one [...] int64 key per table (exact key in [0, key_space))."""
        raise NotImplementedError

    def _row(self, i: int, key: tf.Tensor) -> tf.Tensor:
        if self.key_spaces[i] <= self.rows[i]:
            return key
        return hash_int64(key, self.rows[i], salt=i)

    def call(self, inputs, role=CANDIDATE, training=False):
        codes = inputs[self.input_key(role)]
        known = tf.cast(tf.reduce_all(codes >= 0, axis=-1, keepdims=True), tf.float32)
        codes = tf.maximum(codes, 0)
        kept = self.kept_parts(tf.shape(codes), len(self.tables), role, training)
        total = 0.0
        for i, key in enumerate(self.keys(codes)):
            weight = known if kept is None else known * kept[:, i:i + 1]
            total += self.regularise(self.tables[i](self._row(i, key)) * weight, training)
        return total


class SidNgram(_SidTables):
    """sid_ngram_N: the SID in non-overlapping groups of N codes (an odd last group stays a
    unigram), one table of K^n rows per group position, group embeddings summed."""

    def __init__(self, options: RepresentationOptions, n: int, **kwargs):
        super().__init__(options, self.key_spaces_of(options.sid_length, options.codebook_size,
                                                     n=n), **kwargs)
        self.groups = self.groups_of(options.sid_length, n)

    @staticmethod
    def groups_of(sid_length: int, n: int) -> Tuple[Tuple[int, ...], ...]:
        return tuple(tuple(range(g, min(g + n, sid_length))) for g in range(0, sid_length, n))

    @staticmethod
    def key_spaces_of(sid_length, codebook_size, n=1, **kwargs):
        return [codebook_size ** len(g) for g in SidNgram.groups_of(sid_length, n)]

    def keys(self, codes):
        K = self.options.codebook_size
        out = []
        for group in self.groups:
            key = tf.zeros_like(codes[..., 0])
            for level in group:
                key = key * K + codes[..., level]
            out.append(key)
        return out


class SidPrefixNgram(_SidTables):
    """sid_prefix_ngram: one embedding per SID prefix (lengths 1..S), each in its own table
    (exact while K^l fits its share, hashed beyond), summed."""

    def __init__(self, options: RepresentationOptions, **kwargs):
        super().__init__(options, self.key_spaces_of(options.sid_length, options.codebook_size),
                         **kwargs)

    @staticmethod
    def key_spaces_of(sid_length, codebook_size, **kwargs):
        # K^l overflows int64 for long prefixes: past 2^62 keys a table is hashed anyway.
        return [min(codebook_size ** l, 2 ** 62) for l in range(1, sid_length + 1)]

    def keys(self, codes):
        K = self.options.codebook_size
        out, key = [], tf.zeros_like(codes[..., 0])
        for level in range(self.options.sid_length):
            key = key * K + codes[..., level]  # the exact prefix value while K^l fits in int64
            if K ** (level + 1) > 2 ** 62:  # past that, a hash chained over the prefix
                key = hash_int64(key, 2 ** 62, salt=level)
            out.append(key)
        return out


def frozen_table(emb: np.ndarray) -> tf.keras.layers.Embedding:
    """A non-trainable Embedding holding `emb` plus one zero row (ids outside the catalog,
    row -1, and history padding). It is created empty and assigned once built: an initializer's
    config, the whole table included, would go into the SavedModel's Keras metadata, which a
    270k-item catalog pushes past protobuf's 2 GB (docs/perf/notes.md)."""
    rows, dim = emb.shape[0] + 1, emb.shape[1]
    layer = tf.keras.layers.Embedding(rows, dim, trainable=False, embeddings_initializer="zeros",
                                      name="frozen_content")
    with tf.init_scope():  # eager, so the table is never a constant in a traced graph
        layer.build(tf.TensorShape([None]))
        layer.embeddings.assign(np.concatenate([emb, np.zeros((1, dim), emb.dtype)])
                                .astype(np.float32))
    return layer


class DenseContent(ItemRepresentation):
    """dense_content: the frozen content embedding of the item's catalog row through a learned
    projection; no id table (0 rows). The frozen table lives in the model, not in the examples.
    (serving_by_sid may pass features.ITEM_CONTENT_EMBEDDING instead of the candidate's row: an
    item added after export; that is a serving input, not a Transform output.)"""

    CANDIDATE_KEY = features.ITEM_CATALOG_ROW
    HISTORY_KEY = features.HISTORY_CATALOG_ROW

    def __init__(self, options: RepresentationOptions,
                 frozen_content: Optional[tf.keras.layers.Embedding] = None, **kwargs):
        super().__init__(options, **kwargs)
        emb = options.catalog_embeddings
        if emb is None:
            raise ValueError("dense_content needs the catalog's content embeddings")
        self.num_items = emb.shape[0]
        if frozen_content is None:
            frozen_content = frozen_table(emb)
        self.content = frozen_content
        self.projection = tf.keras.layers.Dense(options.embedding_dim, name="content_projection")
        self.table_rows = 0

    @classmethod
    def table_layout(cls, table_budget, sid_length, codebook_size, **kwargs):
        """No id table: every budget builds the same model."""
        return ()

    def shared_state(self):
        """The frozen catalog table: the item prior reads the same one (it is N x E floats)."""
        return {"frozen_content": self.content}

    def call(self, inputs, role=CANDIDATE, training=False):
        if role == CANDIDATE and features.ITEM_CONTENT_EMBEDDING in inputs:
            # serving_by_sid: an item added after export brings its own content embedding.
            return self.projection(inputs[features.ITEM_CONTENT_EMBEDDING])
        rows = inputs[self.input_key(role)]
        rows = tf.where(rows < 0, tf.constant(self.num_items, tf.int64), rows)
        return self.projection(self.content(rows))


class SidSpm(ItemRepresentation):
    """sid_spm: the SID sentence cut into SentencePiece pieces (a model per budget B, trained on
    the training impressions: frequent code runs are one piece, rare items fall back to shorter
    ones); one table of B rows, piece embeddings summed."""

    def __init__(self, options: RepresentationOptions, **kwargs):
        super().__init__(options, **kwargs)
        self.table_rows = options.table_budget
        self.table = tf.keras.layers.Embedding(self.table_rows, options.embedding_dim,
                                               embeddings_initializer=_INIT, name="spm_pieces")

    @classmethod
    def input_keys(cls, table_budget: int) -> Dict[str, str]:
        """The pieces of the SentencePiece model of budget B (Transform emits one per budget)."""
        return {CANDIDATE: features.item_spm_pieces(table_budget),
                HISTORY: features.history_spm_pieces(table_budget)}

    def call(self, inputs, role=CANDIDATE, training=False):
        pieces = inputs[self.input_key(role)]
        present = tf.cast(tf.expand_dims(pieces >= 0, -1), tf.float32)
        kept = self.kept_parts(tf.shape(pieces), pieces.shape[-1], role, training)
        if kept is not None:
            present = present * tf.expand_dims(kept, -1)
        rows = self.regularise(self.table(tf.maximum(pieces, 0)) * present, training)
        return tf.reduce_sum(rows, axis=-2)


# representation name -> (class, its extra constructor arguments)
_REPRESENTATIONS: Dict[str, Tuple[Type[ItemRepresentation], dict]] = {
    features.RANDOM_HASH: (RandomHash, {}),
    features.SID_NGRAM_1: (SidNgram, {"n": 1}),
    features.SID_NGRAM_2: (SidNgram, {"n": 2}),
    features.SID_PREFIX_NGRAM: (SidPrefixNgram, {}),
    features.DENSE_CONTENT: (DenseContent, {}),
    features.SID_SPM: (SidSpm, {}),
}


def _lookup(name: str) -> Tuple[Type[ItemRepresentation], dict]:
    try:
        return _REPRESENTATIONS[name]
    except KeyError:
        raise ValueError(f"unknown representation {name!r}; "
                         f"known: {features.REPRESENTATIONS}") from None


def representation_class(name: str) -> Type[ItemRepresentation]:
    return _lookup(name)[0]


def table_layout(name: str, table_budget: int, sid_length: int, codebook_size: int) -> Tuple:
    """What the budget changes in representation `name` (ItemRepresentation.table_layout): two
    budgets with the same layout train the same model."""
    cls, kwargs = _lookup(name)
    return cls.table_layout(int(table_budget), int(sid_length), int(codebook_size), **kwargs)


def make_representation(name: str, options: RepresentationOptions,
                        layer_name: Optional[str] = None, **shared) -> ItemRepresentation:
    """The representation `name` as a layer (named `layer_name`, default `name`); `shared`: the
    `shared_state()` of another instance of it."""
    cls, kwargs = _lookup(name)
    return cls(options, name=layer_name or name, **kwargs, **shared)


def item_input_keys(representation: str, table_budget: int) -> Dict[str, str]:
    """{role: Transform output} that `representation` reads at budget B."""
    return representation_class(representation).input_keys(int(table_budget))


def model_input_keys(representation: str, table_budget: int, use_history: bool,
                     use_user_id: bool = True) -> Tuple[str, ...]:
    """Every Transform output the ranking model (models/ranking/model.py) reads for one
    configuration, the label aside: the user (with use_user_id), the candidate's item input
    and, with history, the history's item input, labels and mask."""
    item = item_input_keys(representation, table_budget)
    extra = representation_class(representation).extra_input_keys(int(table_budget))
    keys = ([USER_KEY] if use_user_id else []) + [item[CANDIDATE]] + (
        [extra[CANDIDATE]] if CANDIDATE in extra else [])
    if use_history:
        keys += [item[HISTORY]] + ([extra[HISTORY]] if HISTORY in extra else [])
        keys += [HISTORY_LABELS_KEY, HISTORY_MASK_KEY]
    return tuple(dict.fromkeys(keys))
