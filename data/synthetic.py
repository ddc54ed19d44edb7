"""A seeded synthetic dataset in the format of data/format.py, any size, streamed to disk.

Items: item_id `i<n>`, title (a quality word + 1-2 nouns from a small vocabulary), year, and 1-3
genres from a fixed list; the first genre is the item's topic. Each item has a latent quality;
the title's first word is chosen by quality octile, so the text carries the signal (cold items
are predictable from text). Popularity is Zipf-like over a random permutation of items.

Users: `u<n>`, power-law activity, two preferred topics, a bias. Half the time a user picks an
item of one of their topics (by that topic's popularity), otherwise any item by popularity.
P(label = 1) = sigmoid(TOPIC_WEIGHT * [topic in prefs] + QUALITY_WEIGHT * quality + user bias
+ OFFSET). Timestamps increase over the run, with some ties in the same second.

Texts: `text_mode="short"` (the default) writes the titles above, about 6-8 MiniLM tokens per
item with year and genres. `text_mode="realistic"` lengthens each title the way a real catalog's
"title: subtitle by author (publisher)" runs: a subtitle of common words, an author and a
publisher, with a token count drawn from a log-normal fitted to a 271k-book catalog (p50 ~20,
p90 ~35, p99 ~60, at most ~70 tokens). The quality word stays the title's first word and the
extra words come from their own random stream, so the labels, the interactions and every other
field are the same in both modes.

Interactions are generated in fixed-size chunks and written row by row: memory is O(items +
users), never O(interactions). Deterministic for a seed (the bad rows use their own stream, so
the good rows do not depend on `bad_rows`).
"""
from __future__ import annotations

import csv
import os
from typing import Dict, Iterator, List, Tuple

import numpy as np

from data import prepared
from schemas import features

GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western")
QUALITY_WORDS = ("Dreadful", "Dull", "Plain", "Decent", "Fine", "Bright", "Brilliant", "Masterful")
NOUNS = ("River", "Night", "Empire", "Garden", "Stranger", "Machine", "Summer", "Letter", "Shadow",
         "Harbor", "Storm", "Kingdom", "Mirror", "Journey", "Station", "Winter", "Island",
         "Promise", "Signal", "Forest", "Voyage", "Echo", "Crown", "Horizon")
ITEM_TEXT_FIELDS = ("title", "year", "genres")

TEXT_MODES = ("short", "realistic")
# Realistic texts: the whole text's MiniLM token count (title + year + genres, with [CLS] and
# [SEP]) ~ lognormal(median TEXT_TOKENS_MEDIAN, sigma TEXT_TOKENS_SIGMA), at most TEXT_TOKENS_MAX:
# ln(35 / 20) / 1.2816 = 0.437 puts p90 at 35, and p99 lands near 55-60.
TEXT_TOKENS_MEDIAN = 20.0
TEXT_TOKENS_SIGMA = 0.437
TEXT_TOKENS_MAX = 66  # a drawn count; the text adds a few tokens of variance (max ~70)
# Tokens of the short text before the subtitle is added (quality word, nouns, year, genres,
# [CLS], [SEP]), on average: the subtitle, author and publisher make up the rest.
SHORT_TEXT_TOKENS = 9
# Words that are one MiniLM (uncased WordPiece) token each, so a word count is a token count.
SUBTITLE_WORDS = (
    "the", "of", "a", "and", "in", "to", "story", "life", "war", "love", "history", "world",
    "new", "old", "last", "first", "time", "house", "city", "king", "queen", "man", "woman",
    "children", "family", "secret", "dark", "light", "long", "road", "home", "heart", "water",
    "fire", "stone", "blood", "sea", "sky", "land", "north", "south", "east", "west", "great",
    "little", "american", "english", "british", "modern", "ancient", "guide", "book", "volume",
    "edition", "collected", "selected", "poems", "essays", "letters", "novel", "tales", "art",
    "science", "music", "school", "street", "lost", "found", "death", "return", "memory",
    "between", "after", "before", "under", "against", "beyond", "within", "without", "every")
AUTHOR_FIRST = ("John", "Mary", "James", "Anne", "David", "Sarah", "Peter", "Helen", "Thomas",
                "Margaret", "Robert", "Susan", "William", "Laura", "Michael", "Alice")
AUTHOR_LAST = ("Smith", "Brown", "Wilson", "Taylor", "Johnson", "White", "Martin", "Hall",
               "Allen", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams")
PUBLISHERS = ("Penguin", "Random House", "Harper", "Oxford University Press", "Vintage",
              "Bantam", "Simon & Schuster", "Ballantine Books", "Scribner", "Knopf")

TOPIC_WEIGHT = 2.0
QUALITY_WEIGHT = 1.0
USER_BIAS_STD = 0.5
OFFSET = -1.0
ITEM_ZIPF = 1.0  # popularity of the item of rank r ~ r ** -ITEM_ZIPF
USER_ZIPF = 0.8
PREFERRED_TOPIC_SHARE = 0.5
TIE_SHARE = 0.05  # share of interactions in the same second as the previous one
START_TIMESTAMP = 1_577_836_800  # 2020-01-01
TIME_SPAN_S = 365 * 24 * 3600
_CHUNK = 65_536
_MARKER = ".synthetic.json"
_VERSION = 1

# Kinds of injected bad rows, cycled; each is rejected by data/format.py.
BAD_ROW_KINDS = ("wrong_field_count", "empty_user_id", "bad_timestamp", "fractional_timestamp",
                 "bad_label", "unknown_item")
UNKNOWN_ITEM_ID = "no_such_item"


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _zipf_cdf(n: int, s: float, rng: np.random.Generator) -> np.ndarray:
    """CDF over indices 0..n-1 whose popularity ranks are a random permutation."""
    w = np.empty(n, dtype=np.float64)
    w[rng.permutation(n)] = np.arange(1, n + 1, dtype=np.float64) ** -s
    c = np.cumsum(w)
    return c / c[-1]


def _sample(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


class _World:
    """Latent item and user attributes (O(items + users) memory)."""

    def __init__(self, num_users: int, num_items: int, seed: int):
        self.seed = seed
        rng = np.random.default_rng([seed, 0])
        g = len(GENRES)
        topic_w = np.arange(1, g + 1, dtype=np.float64) ** -0.7
        self.topic_p = topic_w[rng.permutation(g)] / topic_w.sum()
        self.item_topic = rng.choice(g, size=num_items, p=self.topic_p).astype(np.int16)
        self.item_quality = rng.normal(size=num_items).astype(np.float32)
        self.item_cdf = _zipf_cdf(num_items, ITEM_ZIPF, rng)
        # Per-topic popularity: items of topic t in index order, and their CDF.
        w = np.diff(np.concatenate([[0.0], self.item_cdf]))
        self.topic_items, self.topic_cdf = [], []
        for t in range(g):
            idx = np.flatnonzero(self.item_topic == t)
            self.topic_items.append(idx)
            c = np.cumsum(w[idx]) if len(idx) else np.zeros(0)
            self.topic_cdf.append(c / c[-1] if len(idx) else c)
        self.user_cdf = _zipf_cdf(num_users, USER_ZIPF, rng)
        self.user_bias = rng.normal(scale=USER_BIAS_STD, size=num_users).astype(np.float32)
        self.user_prefs = np.stack([rng.choice(g, size=num_users, p=self.topic_p),
                                    rng.choice(g, size=num_users, p=self.topic_p)], axis=1)
        self.rng_items = np.random.default_rng([seed, 1])
        self.rng_inter = np.random.default_rng([seed, 2])


def _realistic_title(title: str, rng: np.random.Generator) -> str:
    """`title` lengthened to a drawn token count: "title: subtitle by author (publisher)"."""
    target = min(TEXT_TOKENS_MAX, int(round(TEXT_TOKENS_MEDIAN
                                            * np.exp(TEXT_TOKENS_SIGMA * rng.standard_normal()))))
    author = f"{AUTHOR_FIRST[rng.integers(len(AUTHOR_FIRST))]} " \
             f"{AUTHOR_LAST[rng.integers(len(AUTHOR_LAST))]}"
    publisher = PUBLISHERS[rng.integers(len(PUBLISHERS))]
    # ":" "by" author (2) "(" publisher (~2) ")": about 7 tokens besides the subtitle.
    words = max(0, target - SHORT_TEXT_TOKENS - 7)
    subtitle = " ".join(SUBTITLE_WORDS[k] for k in rng.integers(0, len(SUBTITLE_WORDS), words))
    return f"{title}: {subtitle} by {author} ({publisher})" if subtitle else \
        f"{title} by {author} ({publisher})"


def _item_rows(world: _World, num_items: int,
               text_mode: str = "short") -> Iterator[Tuple[str, str, str, str]]:
    rng = world.rng_items
    text_rng = np.random.default_rng([world.seed, 4])  # its own stream: other fields unchanged
    octile = np.quantile(world.item_quality, np.linspace(0, 1, len(QUALITY_WORDS) + 1)[1:-1]) \
        if num_items > 1 else np.zeros(len(QUALITY_WORDS) - 1)
    for start in range(0, num_items, _CHUNK):
        n = min(_CHUNK, num_items - start)
        q_word = np.searchsorted(octile, world.item_quality[start:start + n])
        n_nouns = rng.integers(1, 3, size=n)
        nouns = rng.integers(0, len(NOUNS), size=(n, 2))
        years = rng.integers(1950, 2024, size=n)
        n_genres = rng.choice(3, size=n, p=(0.5, 0.35, 0.15)) + 1
        extra = rng.integers(0, len(GENRES), size=(n, 2))
        for j in range(n):
            i = start + j
            title = " ".join([QUALITY_WORDS[q_word[j]]] + [NOUNS[k] for k in nouns[j, :n_nouns[j]]])
            if text_mode == "realistic":
                title = _realistic_title(title, text_rng)
            genres = [GENRES[world.item_topic[i]]]
            for k in extra[j, :n_genres[j] - 1]:
                if GENRES[k] not in genres:
                    genres.append(GENRES[k])
            yield f"i{i}", title, str(years[j]), " ".join(genres)


def _interaction_chunks(world: _World, num_interactions: int
                        ) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    rng = world.rng_inter
    mean_gap = max(TIME_SPAN_S / max(num_interactions, 1), 1.0)
    t = START_TIMESTAMP
    for start in range(0, num_interactions, _CHUNK):
        n = min(_CHUNK, num_interactions - start)
        users = _sample(world.user_cdf, rng.random(n))
        items = _sample(world.item_cdf, rng.random(n))
        by_topic = rng.random(n) < PREFERRED_TOPIC_SHARE
        pick = world.user_prefs[users, rng.integers(0, 2, size=n)]
        u_topic = rng.random(n)
        for tp in range(len(GENRES)):
            sel = by_topic & (pick == tp)
            if sel.any() and len(world.topic_items[tp]):
                items[sel] = world.topic_items[tp][_sample(world.topic_cdf[tp], u_topic[sel])]
        match = (world.item_topic[items][:, None] == world.user_prefs[users]).any(axis=1)
        logit = (TOPIC_WEIGHT * match + QUALITY_WEIGHT * world.item_quality[items]
                 + world.user_bias[users] + OFFSET)
        labels = (rng.random(n) < _sigmoid(logit)).astype(np.int64)
        gaps = np.where(rng.random(n) < TIE_SHARE, 0, rng.geometric(1.0 / mean_gap, size=n))
        gaps[0] = gaps[0] if start else 0
        ts = t + np.cumsum(gaps)
        t = int(ts[-1])
        yield users, items, ts, labels


def _bad_row(kind: str, line: int) -> Dict[str, str]:
    row = {features.USER_ID: f"bad{line}", features.ITEM_ID: "i0",
           features.TIMESTAMP: str(START_TIMESTAMP), features.LABEL: "1"}
    if kind == "empty_user_id":
        row[features.USER_ID] = ""
    elif kind == "bad_timestamp":
        row[features.TIMESTAMP] = "yesterday"
    elif kind == "fractional_timestamp":
        row[features.TIMESTAMP] = f"{START_TIMESTAMP}.5"
    elif kind == "bad_label":
        row[features.LABEL] = "yes"
    elif kind == "unknown_item":
        row[features.ITEM_ID] = UNKNOWN_ITEM_ID
    return row


def _params(num_users, num_items, num_interactions, seed, bad_rows, text_mode) -> Dict:
    params = {"num_users": num_users, "num_items": num_items,
              "num_interactions": num_interactions, "seed": seed, "bad_rows": bad_rows,
              "version": _VERSION}
    if text_mode != "short":  # the default's marker stays as it was written before text modes
        params["text_mode"] = text_mode
    return params


def generate_synthetic(out_dir: str, num_users: int, num_items: int, num_interactions: int,
                       seed: int = 0, bad_rows: int = 0, force: bool = False,
                       text_mode: str = "short") -> Dict:
    """Writes out_dir/items.csv and out_dir/interactions.csv.

    `text_mode` (TEXT_MODES): "short" titles or "realistic" catalog-length ones (module
    docstring); only items.csv's title differs between them.

    `bad_rows` extra invalid rows (kinds BAD_ROW_KINDS, cycled) are placed at seeded positions
    among the interactions. When the files exist and the marker records the same parameters,
    nothing is rewritten unless `force`.
    Returns {"dir", "paths": {"items", "interactions"}, "counts": {"items", "interactions"
    (valid rows), "bad_rows", "positives", "users" (users with an interaction)}, "bad_rows":
    [{"line", "kind"}] (physical lines in interactions.csv, header = line 1)}.
    """
    for name, v in (("num_users", num_users), ("num_items", num_items),
                    ("num_interactions", num_interactions)):
        if v <= 0:
            raise ValueError(f"generate_synthetic: {name} must be positive, got {v}")
    if bad_rows < 0:
        raise ValueError(f"generate_synthetic: bad_rows must be >= 0, got {bad_rows}")
    if text_mode not in TEXT_MODES:
        raise ValueError(f"generate_synthetic: text_mode must be one of {TEXT_MODES}, "
                         f"got {text_mode!r}")
    params = _params(num_users, num_items, num_interactions, seed, bad_rows, text_mode)
    paths = {"items": os.path.join(out_dir, features.ITEMS_FILE),
             "interactions": os.path.join(out_dir, features.INTERACTIONS_FILE)}

    def is_current(m: Dict) -> bool:
        return m.get("params") == params and "counts" in m and "bad_rows" in m

    def write() -> Dict:
        counts, bad_list = _write_files(paths, num_users, num_items, num_interactions, seed,
                                        bad_rows, text_mode)
        return {"params": params, "counts": counts, "bad_rows": bad_list}
    record = prepared.write_once(out_dir, paths.values(), _MARKER, is_current, write, force=force)
    counts, bad_list = record["counts"], record["bad_rows"]
    return {"dir": out_dir, "paths": paths, "counts": counts, "bad_rows": bad_list}


def _write_files(paths: Dict[str, str], num_users: int, num_items: int, num_interactions: int,
                 seed: int, bad_rows: int, text_mode: str) -> Tuple[Dict, List[Dict]]:
    """Generates the two files into `paths` (each replaced whole); returns (counts, bad rows)."""
    world = _World(num_users, num_items, seed)
    tmp = {k: p + ".tmp" for k, p in paths.items()}
    with open(tmp["items"], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow((features.ITEM_ID,) + ITEM_TEXT_FIELDS)
        for row in _item_rows(world, num_items, text_mode):
            w.writerow(row)

    total = num_interactions + bad_rows
    bad_rng = np.random.default_rng([seed, 3])
    bad_pos = np.sort(bad_rng.choice(total, size=bad_rows, replace=False)) if bad_rows else []
    bad_at = {int(p): BAD_ROW_KINDS[j % len(BAD_ROW_KINDS)] for j, p in enumerate(bad_pos)}
    bad_list: List[Dict] = []
    active = np.zeros(num_users, dtype=bool)
    positives = 0
    cols = features.INTERACTION_COLUMNS
    with open(tmp["interactions"], "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        r = 0  # data-row index (line = r + 2)

        def flush_bad():
            nonlocal r
            while r in bad_at:
                line = r + 2
                row = _bad_row(bad_at[r], line)
                fields = [row[c] for c in cols]
                if bad_at[r] == "wrong_field_count":
                    fields = fields[:-1]
                w.writerow(fields)
                bad_list.append({"line": line, "kind": bad_at[r]})
                r += 1

        for users, items, ts, labels in _interaction_chunks(world, num_interactions):
            active[users] = True
            positives += int(labels.sum())
            for u, i, t, l in zip(users.tolist(), items.tolist(), ts.tolist(), labels.tolist()):
                flush_bad()
                row = {features.USER_ID: f"u{u}", features.ITEM_ID: f"i{i}",
                       features.TIMESTAMP: t, features.LABEL: l}
                w.writerow([row[c] for c in cols])
                r += 1
        flush_bad()
    for k in paths:
        os.replace(tmp[k], paths[k])
    counts = {"items": num_items, "interactions": num_interactions, "bad_rows": bad_rows,
              "positives": positives, "users": int(active.sum())}
    return counts, bad_list
