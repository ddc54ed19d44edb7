"""Unit tests of the SID report (no TFX, no Beam)."""
import itertools
import json
import math

import numpy as np
import pytest

from components.artifacts import SidReport
from components.semantic_id_gen import report

# 4 items, L = 3, K = 4. Level 1: {0, 0, 0, 1}; level 2 prefixes: (0,0) x2, (0,1), (1,0);
# level 3: no two items share a 3-code prefix.
CODES = np.array([[0, 0, 1], [0, 0, 2], [0, 1, 0], [1, 0, 0]])
# cosines: (0,1) = 1, (0,2) = 0, (0,3) = -1, (1,2) = 0, (1,3) = -1, (2,3) = 0.
EMB = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])


def _brute_force(codes, emb, n):
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos = [float(u[i] @ u[j]) for i, j in itertools.combinations(range(len(codes)), 2)
           if tuple(codes[i][:n]) == tuple(codes[j][:n])]
    return (float(np.mean(cos)) if cos else None), len(cos)


def test_utilization_and_perplexity():
    assert report.level_utilization(CODES, 4) == [0.5, 0.5, 0.75]
    perp = report.level_perplexity(CODES)
    # level 1: p = (3/4, 1/4); level 3: p = (1/2, 1/4, 1/4)
    assert perp[0] == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    assert perp[2] == pytest.approx(math.exp(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))))
    assert report.level_perplexity(np.array([[2], [2]])) == [1.0]
    assert report.level_perplexity(np.arange(8).reshape(8, 1))[0] == pytest.approx(8.0)


def test_hierarchy_cosine_exact_values_and_null():
    means, pairs = report.hierarchy_cosine(CODES, EMB)
    assert pairs == [3, 1, 0]
    assert means[0] == pytest.approx(1.0 / 3.0)  # pairs (0,1)=1, (0,2)=0, (1,2)=0
    assert means[1] == pytest.approx(1.0)  # pair (0,1) only
    assert means[2] is None
    rand, rand_pairs = report.random_pair_cosine(EMB)
    assert rand_pairs == 6
    assert rand == pytest.approx(-1.0 / 6.0)


def test_hierarchy_cosine_matches_brute_force_on_random_data():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 3, size=(150, 3))
    emb = rng.normal(size=(150, 5)) + np.array([1.0, 0, 0, 0, 0])
    means, pairs = report.hierarchy_cosine(codes, emb)
    for n in (1, 2, 3):
        mean, count = _brute_force(codes, emb, n)
        assert pairs[n - 1] == count
        assert means[n - 1] == pytest.approx(mean, abs=1e-6)
    rand, _ = report.random_pair_cosine(emb)
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = u @ u.T
    assert rand == pytest.approx(float(sims[np.triu_indices(150, 1)].mean()), abs=1e-6)


def test_zero_embedding_counts_as_cosine_zero():
    means, _ = report.hierarchy_cosine(np.array([[0], [0], [0]]),
                                       np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]))
    assert means[0] == pytest.approx(1.0 / 3.0)
    assert report.random_pair_cosine(np.array([[1.0, 0.0]])) == (None, 0)


def test_collision_stats_and_duplicates():
    codes = np.array([[1, 1], [1, 1], [1, 1], [2, 2], [2, 2], [3, 3]])
    stats = report.collision_stats(codes)
    assert stats == dict(distinct_sids_before_breaker=3, unique_sid_share=0.5,
                         colliding_groups=2, collisions_before_breaker=5,
                         largest_collision_group=3)
    assert report.collision_stats(np.array([[1], [2]]))["largest_collision_group"] == 0
    assert report.duplicate_items([(1, 1), (1, 1), (2, 2)]) == 2
    assert report.duplicate_items([(1, 1, 0), (1, 1, 1)]) == 0


def _full_report(breaker=True):
    ids = [b"a", b"b", b"c", b"d"]
    sids = [tuple(c) + ((0,) if breaker else ()) for c in CODES.tolist()]
    return report.compute_report(
        ids, CODES, sids, EMB, [0.1, 0.2, 0.3, 0.4],
        [b"Toy Story 1995 Animation", b"Toy Story 2 1999 Animation", b"Heat 1995 Crime",
         b"Fargo | 1996 *Crime*"], num_levels=3, codebook_size=4, collision_breaker=breaker)


def test_compute_report_keys_and_values():
    r = _full_report()
    assert tuple(r) == report.REPORT_KEYS
    assert r["num_items"] == 4 and r["sid_length"] == 4 and r["embedding_dim"] == 2
    assert r["utilization"] == [0.5, 0.5, 0.75]
    assert r["reconstruction_mse"] == pytest.approx(0.25)
    assert r["collisions_before_breaker"] == 0 and r["duplicate_sids_after_breaker"] == 0
    assert r["unique_sid_share"] == 1.0
    assert r["hierarchy_cosine"][2] is None and r["hierarchy_pairs"] == [3, 1, 0]
    assert r["samples"]["level_1"][0]["prefix"] == "0"  # the only level-1 code with > 1 item
    assert r["samples"]["level_1"][0]["num_items"] == 3
    assert [g["prefix"] for g in r["samples"]["level_2"]] == ["0-0"]
    # json-able (None for levels without pairs)
    assert json.loads(json.dumps(r))["hierarchy_cosine"][2] is None
    assert _full_report() == r  # seeded: deterministic


def test_sample_prefixes_seeded_and_capped():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, size=(500, 3))
    ids = [f"i{i:03d}".encode() for i in range(500)]
    texts = [f"text {i}".encode() for i in range(500)]
    sids = [tuple(c) for c in codes.tolist()]
    a = report.sample_prefixes(ids, codes, sids, texts, seed=3)
    assert a == report.sample_prefixes(ids, codes, sids, texts, seed=3)
    assert len(a["level_1"]) == report.SAMPLE_PREFIXES
    assert all(len(g["items"]) == report.SAMPLE_ITEMS for g in a["level_1"])
    for g in a["level_2"]:
        assert all(item["semantic_id_str"].startswith(g["prefix"] + "-") for item in g["items"])


def test_markdown_and_png(tmp_path):
    r = _full_report()
    md = report.to_markdown(r)
    assert "| utilisation per level | 50.0%, 50.0%, 75.0% |" in md
    assert "| 3 | 0 | n/a | 0.91 |" in md  # no pair shares 3 codes
    assert "Toy Story 2 1999 Animation" in md and "`0-0-2-0`" in md
    png = report.to_png(r)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    report.write_report(str(tmp_path / "rep"), r)
    for name in (SidReport.JSON_FILE, SidReport.MD_FILE, SidReport.PNG_FILE):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    assert json.loads((tmp_path / "rep" / SidReport.JSON_FILE).read_text())["num_items"] == 4


def test_report_without_breaker_counts_duplicates():
    codes = np.array([[0, 1], [0, 1], [2, 3]])
    r = report.compute_report([b"a", b"b", b"c"], codes, [tuple(c) for c in codes.tolist()],
                              np.eye(3), [0.0, 0.0, 0.0], [b"", b"", b""], num_levels=2,
                              codebook_size=4, collision_breaker=False)
    assert r["sid_length"] == 2 and r["max_breaker_code"] == 0
    assert r["duplicate_sids_after_breaker"] == r["collisions_before_breaker"] == 2
    assert r["colliding_groups"] == 1 and r["largest_collision_group"] == 2
    assert r["unique_sid_share"] == pytest.approx(2 / 3)
    assert "(no text)" in report.to_markdown(r)


def test_cosines_over_a_sample_above_the_cap(monkeypatch):
    """Above COSINE_MAX_ITEMS the cosine figures come from a seeded sample of rows: the same
    numbers as a report over just those rows, and cosine_items says how many."""
    import numpy as np
    from components.semantic_id_gen import report as r
    rng = np.random.default_rng(3)
    n, cap = 500, 120
    codes = rng.integers(0, 4, size=(n, 2))
    emb = rng.normal(size=(n, 6)).astype(np.float32)
    ids = [f"i{i:04d}".encode() for i in range(n)]
    sids = [tuple(c) + (i,) for i, c in enumerate(codes.tolist())]
    rows = r.cosine_sample_rows(n, max_items=cap)
    assert r.cosine_sample_rows(cap, max_items=cap) is None
    assert len(rows) == cap and np.all(np.diff(rows) > 0)
    sampled = r.compute_report(ids, codes, sids, emb[rows], [0.0] * n, [b""] * n, num_levels=2,
                               codebook_size=4, collision_breaker=True, embedding_rows=rows)
    exact_on_rows = r.hierarchy_cosine(codes[rows], emb[rows])
    assert sampled["hierarchy_cosine"] == exact_on_rows[0]
    assert sampled["cosine_items"] == cap and sampled["num_items"] == n
    assert "seeded sample of 120 items" in r.to_markdown(sampled)
