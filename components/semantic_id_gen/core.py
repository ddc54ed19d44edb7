"""Pure logic of SemanticIdGen: item validation, the collision breaker, catalog files.

Nothing here imports TFX, Beam or TensorFlow (numpy only); the executor wires these functions
into Beam and report.py computes the SID report.

Rules
-----
Items (the embeddings Examples, split `all`): item_id (one bytes value), embedding (float list),
  item_text (bytes, optional: empty when absent).
  * item_id must be non-empty and hold no tab, newline or carriage return (catalog.tsv is
    tab-separated, one line per item); item ids must be unique.
  * embedding must be present, have the expected dimension (the RQ-VAE's input dimension when
    its `encode` signature declares it, else the dimension of the first item by item id) and be
    all finite. Any bad item fails the component with an error naming the item id: no item ever
    gets a silent SID.
Codes: the RQ-VAE gives L codes per item, each in [0, codebook_size).
Collision breaker (TIGER, Rajput et al. 2023): items are grouped by their L codes. With the
  breaker every semantic_id has L + 1 codes: the L codes, then 0 for an item alone in its group;
  in a group of m > 1 items the items get 0, 1, ..., m - 1 in item-id order (ids compared as
  byte strings, i.e. code point order for UTF-8). Without the breaker the semantic_id is the L
  codes (duplicates may remain). semantic_id_str joins the codes with SID_SEPARATOR ("12-5-40-0").
Catalog (components/artifacts.py ItemCatalog): rows sorted by item id, row = 0..N-1.
"""
from __future__ import annotations

import collections
import json
import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from schemas import features

# --- channel keys and exec property keys of the component -----------------------------------
EMBEDDINGS_KEY = "embeddings"
MODEL_KEY = "model"
CATALOG_KEY = "catalog"
SID_REPORT_KEY = "sid_report"
COLLISION_BREAKER_KEY = "collision_breaker"
NUM_LEVELS_KEY = "num_levels"
CODEBOOK_SIZE_KEY = "codebook_size"
# The SID space (--rqvae_mode): "train" codes every item with a freshly trained RQ-VAE; "reuse"
# keeps the previous catalog's SIDs and codes only new items with the previous RQ-VAE.
SID_MODE_KEY = "sid_mode"
SID_MODES = ("train", "reuse")
PREVIOUS_CATALOG_KEY = "previous_catalog"  # optional: the last catalog (reuse; refresh_sids)
SPM_MODELS_KEY = "spm_models"  # optional: the reused SentencePiece models (lineage only)
# A frozen RQ-VAE whose mean reconstruction error on new items passes this multiple of its
# error on the existing ones warns that a refresh is due (docs/continuous.md).
DRIFT_WARN_RATIO = 1.5

# --- metadata.json keys -------------------------------------------------------------------------
NUM_ITEMS = "num_items"
NUM_LEVELS = "num_levels"
SID_LENGTH = "sid_length"
CODEBOOK_SIZE = "codebook_size"
EMBEDDING_DIM = "embedding_dim"
COLLISION_BREAKER = "collision_breaker"
MAX_BREAKER_CODE = "max_breaker_code"  # largest collision-breaker code given (0: none needed)
SID_SPACE = "sid_space"  # where the SIDs come from: mode, model lineage, new items, drift
METADATA_KEYS = (NUM_ITEMS, NUM_LEVELS, SID_LENGTH, CODEBOOK_SIZE, EMBEDDING_DIM,
                 COLLISION_BREAKER, MAX_BREAKER_CODE)

_FORBIDDEN_ID_CHARS = (b"\t", b"\n", b"\r")

Codes = Tuple[int, ...]
IdLike = Union[bytes, str]


def as_bytes(x: IdLike) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode("utf-8")


def show_id(item_id: IdLike) -> str:
    """An item id for error messages (repr keeps tabs/newlines visible)."""
    return repr(as_bytes(item_id).decode("utf-8", errors="backslashreplace"))


def validate_params(num_levels: int, codebook_size: int) -> None:
    """Raises ValueError on levels / codebook sizes that cannot describe an RQ-VAE."""
    for name, value in ((NUM_LEVELS_KEY, num_levels), (CODEBOOK_SIZE_KEY, codebook_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"SemanticIdGen: {name} must be a positive integer, got {value!r}")


def validate_item_id(item_id: IdLike) -> bytes:
    """The id as bytes; ValueError if it is empty or holds a tab / newline / carriage return."""
    b = as_bytes(item_id)
    if not b:
        raise ValueError("SemanticIdGen: an item has an empty item_id")
    for ch in _FORBIDDEN_ID_CHARS:
        if ch in b:
            raise ValueError(
                f"SemanticIdGen: item_id {show_id(b)} contains {ch!r}; catalog.tsv is "
                "tab-separated with one item per line, so ids may not contain tabs or newlines")
    return b


def validate_embedding(item_id: IdLike, values: Optional[Sequence[float]],
                       expected_dim: Optional[int], reference: str = "expected") -> np.ndarray:
    """The embedding as float32 [E]; ValueError naming the item if it is missing, of the wrong
    dimension (when expected_dim is given) or not all finite. `reference` says where
    expected_dim comes from, for the message."""
    if values is None or len(values) == 0:
        raise ValueError(f"SemanticIdGen: item {show_id(item_id)} has no "
                         f"{features.ITEM_EMBEDDING!r} values")
    emb = np.asarray(values, dtype=np.float32).reshape(-1)
    if expected_dim is not None and emb.shape[0] != expected_dim:
        raise ValueError(
            f"SemanticIdGen: item {show_id(item_id)} has a {features.ITEM_EMBEDDING!r} of "
            f"dimension {emb.shape[0]}, {reference} dimension is {expected_dim}")
    bad = ~np.isfinite(emb)
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"SemanticIdGen: item {show_id(item_id)} has a non-finite "
            f"{features.ITEM_EMBEDDING!r} value ({emb[first]} at index {first}; "
            f"{int(bad.sum())} non-finite values)")
    return emb


def validate_codes(item_id: IdLike, codes: Iterable[int], num_levels: int,
                   codebook_size: int) -> Codes:
    """The model's codes for one item as a tuple of ints; ValueError if there are not
    num_levels of them or one is outside [0, codebook_size)."""
    out = tuple(int(c) for c in codes)
    if len(out) != num_levels:
        raise ValueError(
            f"SemanticIdGen: the RQ-VAE gave {len(out)} codes for item {show_id(item_id)}, "
            f"expected num_levels = {num_levels}")
    if any(c < 0 or c >= codebook_size for c in out):
        raise ValueError(
            f"SemanticIdGen: the RQ-VAE gave codes {list(out)} for item {show_id(item_id)}, "
            f"outside [0, codebook_size = {codebook_size})")
    return out


def sid_to_str(codes: Iterable[int]) -> str:
    """"12-5-40-0" for (12, 5, 40, 0)."""
    return features.SID_SEPARATOR.join(str(int(c)) for c in codes)


def group_semantic_ids(codes: Sequence[int], item_ids: Iterable[IdLike],
                       collision_breaker: bool) -> List[Tuple[bytes, Codes]]:
    """(item_id, semantic_id) for the items of one group (all with these L codes), sorted by
    item id. With the breaker, the (L+1)-th code is 0 for a lone item, else 0, 1, 2, ... in
    item-id order. ValueError on a repeated item id."""
    ids = sorted(as_bytes(i) for i in item_ids)
    for a, b in zip(ids, ids[1:]):
        if a == b:
            raise ValueError(f"SemanticIdGen: item_id {show_id(a)} appears more than once in the "
                             "embeddings")
    base = tuple(int(c) for c in codes)
    if not collision_breaker:
        return [(i, base) for i in ids]
    return [(i, base + (n,)) for n, i in enumerate(ids)]


def break_collisions(codes_by_item: Union[Mapping[IdLike, Sequence[int]],
                                          Iterable[Tuple[IdLike, Sequence[int]]]],
                     collision_breaker: bool = True) -> Dict[bytes, Codes]:
    """item_id -> semantic_id for every item (see the module docstring). Deterministic: the
    result depends only on the set of (item_id, codes) pairs, not on their order."""
    pairs = codes_by_item.items() if isinstance(codes_by_item, Mapping) else codes_by_item
    groups: Dict[Codes, List[bytes]] = collections.defaultdict(list)
    seen = set()
    for item_id, codes in pairs:
        b = as_bytes(item_id)
        if b in seen:
            raise ValueError(f"SemanticIdGen: item_id {show_id(b)} appears more than once in the "
                             "embeddings")
        seen.add(b)
        groups[tuple(int(c) for c in codes)].append(b)
    out: Dict[bytes, Codes] = {}
    for codes, ids in groups.items():
        out.update(group_semantic_ids(codes, ids, collision_breaker))
    return out


def extend_semantic_ids(previous: Mapping[IdLike, Sequence[int]],
                        new_codes: Union[Mapping[IdLike, Sequence[int]],
                                         Iterable[Tuple[IdLike, Sequence[int]]]],
                        num_levels: int, collision_breaker: bool = True) -> Dict[bytes, Codes]:
    """item_id -> semantic_id of a grown catalog whose SID space is frozen (`--rqvae_mode
    reuse`): every item of `previous` (the last catalog's semantic_ids) keeps its semantic_id
    exactly, and is not coded again; each new item gets its L codes from the frozen RQ-VAE and,
    with the breaker, the next free breaker code of its group: new items of a group take the
    codes after the largest that group holds, in item-id order. ValueError on a new item that is
    already in `previous`, or on a repeated new item."""
    out: Dict[bytes, Codes] = {as_bytes(i): tuple(int(c) for c in sid)
                               for i, sid in previous.items()}
    next_free: Dict[Codes, int] = collections.defaultdict(int)
    if collision_breaker:
        for sid in out.values():
            base = sid[:num_levels]
            next_free[base] = max(next_free[base], int(sid[num_levels]) + 1)
    pairs = new_codes.items() if isinstance(new_codes, Mapping) else new_codes
    groups: Dict[Codes, List[bytes]] = collections.defaultdict(list)
    for item_id, codes in pairs:
        b = as_bytes(item_id)
        if b in out:
            raise ValueError(f"SemanticIdGen: new item {show_id(b)} is already in the previous "
                             "catalog; its Semantic ID is frozen there")
        groups[tuple(int(c) for c in codes)].append(b)
    for base, ids in groups.items():
        for n, (item_id, sid) in enumerate(group_semantic_ids(base, ids, collision_breaker)):
            out[item_id] = base + (next_free[base] + n,) if collision_breaker else sid
    return out


def changed_semantic_ids(previous: Mapping[IdLike, Sequence[int]],
                         current: Mapping[IdLike, Sequence[int]]) -> Tuple[int, int]:
    """(items of `previous` still in the catalog whose semantic_id differs in `current`, items
    of `previous` still in the catalog): what a `--refresh_sids` run reports."""
    cur = {as_bytes(i): tuple(int(c) for c in s) for i, s in current.items()}
    kept = [(as_bytes(i), tuple(int(c) for c in s)) for i, s in previous.items()
            if as_bytes(i) in cur]
    return sum(1 for i, s in kept if cur[i] != s), len(kept)


def reconstruction_drift(existing_errors: Sequence[float], new_errors: Sequence[float],
                         warn_ratio: float) -> Dict:
    """The drift signal of a frozen RQ-VAE: mean and p95 of its reconstruction error on the new
    items and on the existing ones, their ratios (new / existing) and whether the mean ratio
    passes `warn_ratio` (a refresh is due). Ratios are None when either side is empty."""
    def stats(values):
        a = np.asarray(values, dtype=np.float64)
        a = a[np.isfinite(a)]
        if not a.size:
            return None, None
        return float(a.mean()), float(np.percentile(a, 95))

    (e_mean, e_p95), (n_mean, n_p95) = stats(existing_errors), stats(new_errors)

    def ratio(a, b):
        return None if a is None or not b else a / b

    mean_ratio = ratio(n_mean, e_mean)
    return {"num_existing": len(existing_errors), "num_new": len(new_errors),
            "existing_mean": e_mean, "existing_p95": e_p95, "new_mean": n_mean, "new_p95": n_p95,
            "mean_ratio": mean_ratio, "p95_ratio": ratio(n_p95, e_p95), "warn_ratio": warn_ratio,
            "refresh_due": bool(mean_ratio is not None and mean_ratio > warn_ratio)}


def sid_space_line(sid_space: Mapping) -> str:
    """The log line of a run that had a previous catalog."""
    drift = sid_space.get("drift") or {}
    ratio = drift.get("mean_ratio")
    return (f"SemanticIdGen ({sid_space['mode']}): {sid_space.get('new_items', 0):,} new items, "
            f"{sid_space.get('sid_changed', 0):,} of {sid_space.get('existing_items', 0):,} "
            f"existing items changed SID; reconstruction error new / existing "
            f"{'n/a' if ratio is None else f'{ratio:.2f}'} (mean)")


def drift_warning(drift: Mapping) -> str:
    return (f"SemanticIdGen: the frozen RQ-VAE reconstructs the new items "
            f"{drift['mean_ratio']:.2f}x worse than the existing ones (mean {drift['new_mean']:.4g} vs "
            f"{drift['existing_mean']:.4g}; p95 {drift['new_p95']:.4g} vs "
            f"{drift['existing_p95']:.4g}), above {drift['warn_ratio']}x: a refresh of the "
            "Semantic IDs is due (run with --refresh_sids)")


def check_unique_ids(sorted_ids: Sequence[bytes]) -> None:
    """ValueError naming the first repeated id of an id-sorted sequence."""
    for a, b in zip(sorted_ids, sorted_ids[1:]):
        if a == b:
            raise ValueError(f"SemanticIdGen: item_id {show_id(a)} appears more than once in the "
                             "embeddings")


def catalog_tsv(sorted_ids: Sequence[bytes], semantic_ids: Sequence[Sequence[int]]) -> bytes:
    """catalog.tsv: `item_id \\t row \\t semantic_id_str` per item, rows 0..N-1 in the given
    (item-id sorted) order. Ids are checked again (no tab/newline, sorted, unique)."""
    check_unique_ids(sorted_ids)
    lines = []
    prev = None
    for row, (item_id, sid) in enumerate(zip(sorted_ids, semantic_ids)):
        validate_item_id(item_id)
        if prev is not None and item_id < prev:
            raise ValueError("SemanticIdGen: catalog rows must be sorted by item_id")
        prev = item_id
        lines.append(item_id + b"\t" + str(row).encode() + b"\t" + sid_to_str(sid).encode())
    return b"".join(line + b"\n" for line in lines)


def parse_catalog_line(line: Union[str, bytes], sid_length: int,
                       component: str = "SemanticIdGen") -> Tuple[bytes, Codes]:
    """One catalog.tsv line (item_id <TAB> row <TAB> "12-5-40-0") -> (item_id, codes); errors
    name `component`, the reader."""
    raw = line if isinstance(line, bytes) else line.encode("utf-8")
    raw = raw.rstrip(b"\r\n")
    parts = raw.split(b"\t")
    if len(parts) != 3:
        raise ValueError(f"{component}: catalog.tsv line {raw!r} does not have 3 tab-separated "
                         "fields (item_id, row, semantic_id_str)")
    item_id, _, sid = parts
    try:
        codes = tuple(int(c) for c in sid.decode("utf-8").split(features.SID_SEPARATOR))
    except ValueError:
        raise ValueError(f"{component}: bad Semantic ID {sid!r} of item {item_id!r} in "
                         "catalog.tsv") from None
    if len(codes) != sid_length:
        raise ValueError(f"{component}: item {item_id!r} has a Semantic ID of {len(codes)} codes "
                         f"in catalog.tsv, the catalog's sid_length is {sid_length}")
    return item_id, codes


def parse_catalog_tsv(text: Union[str, bytes], sid_length: int,
                      component: str = "SemanticIdGen") -> Dict[bytes, Codes]:
    """catalog.tsv -> {item_id: codes}."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    return dict(parse_catalog_line(line, sid_length, component)
                for line in raw.splitlines() if line)


def make_metadata(num_items: int, num_levels: int, codebook_size: int, embedding_dim: int,
                  collision_breaker: bool, semantic_ids: Sequence[Sequence[int]]) -> Dict:
    """metadata.json of the catalog."""
    max_breaker = (max((int(s[-1]) for s in semantic_ids), default=0)
                   if collision_breaker else 0)
    return {
        NUM_ITEMS: int(num_items),
        NUM_LEVELS: int(num_levels),
        SID_LENGTH: int(num_levels) + (1 if collision_breaker else 0),
        CODEBOOK_SIZE: int(codebook_size),
        EMBEDDING_DIM: int(embedding_dim),
        COLLISION_BREAKER: bool(collision_breaker),
        MAX_BREAKER_CODE: int(max_breaker),
    }


def to_json(obj) -> str:
    """JSON with non-finite floats written as null (json.dumps would write NaN)."""
    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (np.integer,)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            return float(x) if math.isfinite(float(x)) else None
        return x
    return json.dumps(clean(obj), indent=2, sort_keys=True)


def summary_line(report: Mapping) -> str:
    """The one log line of a finished run (from sid_report.json's dict)."""
    util = report.get("utilization") or [0.0]
    return (f"SemanticIdGen: {report['num_items']:,} items, {report['num_levels']} levels x "
            f"{report['codebook_size']} codes, level-1 utilisation {100 * util[0]:.0f}%, "
            f"{report['colliding_groups']:,} collisions ({report['collisions_before_breaker']:,} "
            f"items, largest group {report['largest_collision_group']}), "
            f"{report['duplicate_sids_after_breaker']:,} duplicates after breaker"
            f"{'' if report.get('collision_breaker', True) else ' (breaker off)'}")
