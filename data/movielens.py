"""MovieLens-100K (from the installed recbole package) as the two CSVs of data/format.py.

items.csv: item_id,title,year,genres (genres space-separated as recbole writes them, e.g.
"Animation Children's Comedy"); interactions.csv: user_id,item_id,timestamp,label with
label = 1 when the rating is >= 4. The output goes under outputs/ (git-ignored): the data is
never committed.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
from typing import Dict, List, Tuple

from schemas import features

ITEM_TEXT_FIELDS = ("title", "year", "genres")
POSITIVE_MIN_RATING = 4.0
_SOURCE_DIR = ("dataset_example", "ml-100k")
_INTER_FILE = "ml-100k.inter"
_ITEM_FILE = "ml-100k.item"
_MARKER = ".movielens.json"
_CONVERTER_VERSION = 1


def movielens_source_dir() -> str:
    """Folder of recbole's bundled ml-100k files (recbole is located, not imported)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "MovieLens-100K is read from the 'recbole' package, which is not installed in this "
            "Python environment. Run `make setup` (it installs the pinned stack into .venv), "
            "or use dataset=synthetic / dataset=csv.")
    d = os.path.join(list(spec.submodule_search_locations)[0], *_SOURCE_DIR)
    for name in (_INTER_FILE, _ITEM_FILE):
        if not os.path.isfile(os.path.join(d, name)):
            raise RuntimeError(f"recbole is installed but {os.path.join(d, name)} is missing; "
                               "reinstall it with `make setup`.")
    return d


def _sha256(paths: List[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _tsv_rows(path: str, expected_header: Tuple[str, ...]):
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        if tuple(h.split(":")[0] for h in header) != expected_header:
            raise ValueError(f"{path}: unexpected header {header}")
        for n, line in enumerate(f, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != len(expected_header):
                raise ValueError(f"{path}:{n}: expected {len(expected_header)} tab-separated "
                                 f"fields, got {len(parts)}")
            yield parts


def prepare_movielens(out_dir: str) -> Dict:
    """Writes out_dir/items.csv and out_dir/interactions.csv from recbole's ml-100k.

    Idempotent: when both files exist and the marker file records the same source checksum,
    nothing is rewritten (file times stay, so TFX's input fingerprint and cache hold).
    Returns {"paths": {"items": ..., "interactions": ...}, "counts": {...}, "dir": out_dir}.
    """
    src = movielens_source_dir()
    inter_src, item_src = os.path.join(src, _INTER_FILE), os.path.join(src, _ITEM_FILE)
    checksum = _sha256([inter_src, item_src])
    os.makedirs(out_dir, exist_ok=True)
    paths = {"items": os.path.join(out_dir, features.ITEMS_FILE),
             "interactions": os.path.join(out_dir, features.INTERACTIONS_FILE)}
    marker = os.path.join(out_dir, _MARKER)
    if all(os.path.isfile(p) for p in paths.values()) and os.path.isfile(marker):
        try:
            with open(marker) as f:
                m = json.load(f)
            if m.get("source_sha256") == checksum and m.get("version") == _CONVERTER_VERSION:
                return {"paths": paths, "counts": m["counts"], "dir": out_dir}
        except (OSError, ValueError, KeyError):
            pass

    counts = {"items": 0, "interactions": 0, "positives": 0, "users": 0}
    tmp = {k: p + ".tmp" for k, p in paths.items()}
    with open(tmp["items"], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow((features.ITEM_ID,) + ITEM_TEXT_FIELDS)
        for item_id, title, year, genres in _tsv_rows(
                item_src, ("item_id", "movie_title", "release_year", "class")):
            w.writerow((item_id.strip(), title.strip(), year.strip(), genres.strip()))
            counts["items"] += 1
    users = set()
    with open(tmp["interactions"], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(features.INTERACTION_COLUMNS)
        for user_id, item_id, rating, ts in _tsv_rows(
                inter_src, ("user_id", "item_id", "rating", "timestamp")):
            label = 1 if float(rating) >= POSITIVE_MIN_RATING else 0
            row = {features.USER_ID: user_id.strip(), features.ITEM_ID: item_id.strip(),
                   features.TIMESTAMP: int(float(ts)), features.LABEL: label}
            w.writerow([row[c] for c in features.INTERACTION_COLUMNS])
            users.add(row[features.USER_ID])
            counts["interactions"] += 1
            counts["positives"] += label
    counts["users"] = len(users)
    for k in paths:
        os.replace(tmp[k], paths[k])
    with open(marker, "w") as f:
        json.dump({"source": src, "source_sha256": checksum, "version": _CONVERTER_VERSION,
                   "counts": counts}, f, indent=2, sort_keys=True)
    return {"paths": paths, "counts": counts, "dir": out_dir}
