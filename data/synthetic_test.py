"""The seeded synthetic generator (small sizes; well under a second each)."""
import collections
import os

import pytest

from data import format as fm
from data import synthetic
from schemas import features as F

SIZES = dict(num_users=200, num_items=150, num_interactions=4000)


def _gen(tmp_path, name, **kw):
    args = dict(SIZES, seed=0)
    args.update(kw)
    return synthetic.generate_synthetic(os.path.join(str(tmp_path), name), **args)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _parsed(result):
    _, items = fm.read_items(result["paths"]["items"])
    items = list(items)
    ids = {r[F.ITEM_ID] for _, r, _ in items if r}
    _, rows = fm.read_interactions(result["paths"]["interactions"], ids)
    return items, list(rows)


def test_deterministic_for_a_seed(tmp_path):
    a, b, c = _gen(tmp_path, "a"), _gen(tmp_path, "b"), _gen(tmp_path, "c", seed=1)
    for k in ("items", "interactions"):
        assert _read(a["paths"][k]) == _read(b["paths"][k])
        assert _read(a["paths"][k]) != _read(c["paths"][k])
    assert a["counts"] == b["counts"]


def test_counts_and_contract(tmp_path):
    r = _gen(tmp_path, "a")
    items, rows = _parsed(r)
    assert not [x for _, _, x in items if x] and not [x for _, _, x in rows if x]
    assert len(items) == SIZES["num_items"] == r["counts"]["items"]
    assert len(rows) == SIZES["num_interactions"] == r["counts"]["interactions"]
    recs = [rec for _, rec, _ in rows]
    assert len({x[F.USER_ID] for x in recs}) == r["counts"]["users"] <= SIZES["num_users"]
    assert sum(x[F.LABEL] for x in recs) == r["counts"]["positives"]
    assert 0.2 < r["counts"]["positives"] / len(recs) < 0.8
    genres = items[0][1]["genres"].split()
    assert 1 <= len(genres) <= 3 and all(g in synthetic.GENRES for g in genres)


def test_timestamps_increase_with_ties_and_popularity_is_skewed(tmp_path):
    _, rows = _parsed(_gen(tmp_path, "a"))
    ts = [rec[F.TIMESTAMP] for _, rec, _ in rows]
    assert all(x <= y for x, y in zip(ts, ts[1:]))
    assert sum(x == y for x, y in zip(ts, ts[1:])) > 0
    counts = sorted(collections.Counter(rec[F.ITEM_ID] for _, rec, _ in rows).values())
    assert counts[-1] > 10 * counts[len(counts) // 2]  # head item >> median item


def test_labels_are_learnable_from_text(tmp_path):
    items, rows = _parsed(_gen(tmp_path, "a", num_interactions=20000))
    word = {rec[F.ITEM_ID]: rec["title"].split()[0] for _, rec, _ in items}
    pos, tot = collections.Counter(), collections.Counter()
    for _, rec, _ in rows:
        w = word[rec[F.ITEM_ID]]
        tot[w] += 1
        pos[w] += rec[F.LABEL]
    best, worst = synthetic.QUALITY_WORDS[-1], synthetic.QUALITY_WORDS[0]
    assert pos[best] / tot[best] > pos[worst] / tot[worst] + 0.3


def test_bad_rows_at_known_lines(tmp_path):
    clean = _gen(tmp_path, "clean")
    r = _gen(tmp_path, "bad", bad_rows=8)
    assert r["counts"]["bad_rows"] == 8 and r["counts"]["interactions"] == SIZES["num_interactions"]
    _, rows = _parsed(r)
    reject_lines = [line for line, _, rej in rows if rej]
    assert reject_lines == [b["line"] for b in r["bad_rows"]]
    assert {b["kind"] for b in r["bad_rows"]} == set(synthetic.BAD_ROW_KINDS)
    # the valid rows are those of the clean run
    _, clean_rows = _parsed(clean)
    assert [rec for _, rec, _ in rows if rec] == [rec for _, rec, _ in clean_rows]


def test_idempotent_for_same_params(tmp_path):
    r = _gen(tmp_path, "a")
    p = r["paths"]["interactions"]
    before, content = os.stat(p).st_mtime_ns, _read(p)
    assert _gen(tmp_path, "a")["counts"] == r["counts"]
    assert os.stat(p).st_mtime_ns == before
    _gen(tmp_path, "a", seed=3)  # other params rewrite
    assert _read(p) != content


def test_rejects_bad_sizes(tmp_path):
    with pytest.raises(ValueError, match="num_items"):
        _gen(tmp_path, "a", num_items=0)


# --- text modes -----------------------------------------------------------------------------------

def _sha256(path):
    import hashlib
    return hashlib.sha256(_read(path)).hexdigest()


def test_the_default_output_is_unchanged_by_text_modes(tmp_path):
    # Digests of this call's files before text modes existed (the scale benchmark's old data and
    # every committed run on synthetic data stay as they were).
    r = synthetic.generate_synthetic(str(tmp_path / "d"), 50, 300, 2000, seed=7, bad_rows=3)
    assert _sha256(r["paths"]["items"]) == (
        "57a0a7612d15f3d4023eee9652622647015058b18e8c79fe958fee5579c5bc57")
    assert _sha256(r["paths"]["interactions"]) == (
        "b17bc9f5a7cc98e789d714cb1cf9a426e50a3064565eca60ada01f2ac53a7789")


def test_realistic_texts_only_lengthen_the_title(tmp_path):
    short = _gen(tmp_path, "short")
    real = _gen(tmp_path, "real", text_mode="realistic")
    assert _read(short["paths"]["interactions"]) == _read(real["paths"]["interactions"])
    (_, short_items), (_, real_items) = (fm.read_items(r["paths"]["items"]) for r in (short, real))
    for (_, a, _), (_, b, _) in zip(short_items, real_items):
        # The quality word (the label's text signal) is still the first word.
        assert b["title"].startswith(a["title"] + (":" if ":" in b["title"] else " by "))
        assert (a[F.ITEM_ID], a["year"], a["genres"]) == (b[F.ITEM_ID], b["year"], b["genres"])
    with pytest.raises(ValueError, match="text_mode"):
        _gen(tmp_path, "bad", text_mode="long")
