"""Unit tests of the pure SemanticIdGen logic (no TFX, no Beam)."""
import json
import math
import random

import numpy as np
import pytest

from components.semantic_id_gen import core


def test_breaker_appends_code_in_item_id_order():
    codes = {b"b": (1, 2), b"a": (1, 2), b"c": (3, 4), b"10": (1, 2), b"9": (1, 2)}
    sids = core.break_collisions(codes)
    # byte-string order: "10" < "9" < "a" < "b"
    assert sids == {b"10": (1, 2, 0), b"9": (1, 2, 1), b"a": (1, 2, 2), b"b": (1, 2, 3),
                    b"c": (3, 4, 0)}


def test_breaker_no_duplicates_and_deterministic():
    rnd = random.Random(0)
    pairs = [(f"item{i}", (rnd.randrange(3), rnd.randrange(2))) for i in range(200)]
    a = core.break_collisions(pairs)
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    b = core.break_collisions(dict(shuffled))
    assert a == b
    assert len(set(a.values())) == len(a) == 200
    assert all(len(s) == 3 for s in a.values())
    for item_id, codes in pairs:  # the first L codes are the model's
        assert a[item_id.encode()][:2] == codes
    # within a group, suffixes are 0..m-1 in item-id order
    group = sorted(i.encode() for i, c in pairs if c == (0, 0))
    assert [a[i][-1] for i in group] == list(range(len(group)))


def test_breaker_off_keeps_l_codes_and_duplicates():
    sids = core.break_collisions({"a": (1, 2), "b": (1, 2), "c": (0, 5)}, collision_breaker=False)
    assert sids == {b"a": (1, 2), b"b": (1, 2), b"c": (0, 5)}


def test_breaker_rejects_repeated_ids():
    with pytest.raises(ValueError, match="'x' appears more than once"):
        core.break_collisions([("x", (1,)), ("x", (2,))])
    with pytest.raises(ValueError, match="'x' appears more than once"):
        core.group_semantic_ids((1,), [b"x", b"y", b"x"], True)


def test_group_semantic_ids():
    assert core.group_semantic_ids((4, 2), [b"z", b"a"], True) == [(b"a", (4, 2, 0)),
                                                                   (b"z", (4, 2, 1))]
    assert core.group_semantic_ids((4, 2), [b"z"], False) == [(b"z", (4, 2))]


def test_sid_to_str():
    assert core.sid_to_str((12, 5, 40, 0)) == "12-5-40-0"
    assert core.sid_to_str(np.array([3], np.int64)) == "3"


@pytest.mark.parametrize("bad", [b"a\tb", b"a\nb", b"a\rb", b""])
def test_item_id_rejects_tab_newline_empty(bad):
    with pytest.raises(ValueError, match="item_id"):
        core.validate_item_id(bad)


def test_item_id_accepts_anything_else():
    assert core.validate_item_id("fünf,;|\"' x") == "fünf,;|\"' x".encode()


def test_validate_embedding_names_item():
    ok = core.validate_embedding(b"m1", [1.0, 2.0], 2)
    assert ok.dtype == np.float32 and ok.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"'m1'.*non-finite"):
        core.validate_embedding(b"m1", [1.0, math.nan], 2)
    with pytest.raises(ValueError, match=r"'m2'.*non-finite"):
        core.validate_embedding(b"m2", [math.inf, 0.0], 2)
    with pytest.raises(ValueError, match=r"'m3'.*dimension 3.*is 2"):
        core.validate_embedding(b"m3", [1.0, 2.0, 3.0], 2)
    with pytest.raises(ValueError, match=r"'m4'.*no 'embedding'"):
        core.validate_embedding(b"m4", [], 2)
    with pytest.raises(ValueError, match=r"'m5'.*no 'embedding'"):
        core.validate_embedding(b"m5", None, None)


def test_validate_codes():
    assert core.validate_codes(b"a", np.array([1, 2, 3]), 3, 4) == (1, 2, 3)
    with pytest.raises(ValueError, match=r"'a'.*expected num_levels = 2"):
        core.validate_codes(b"a", [1, 2, 3], 2, 4)
    with pytest.raises(ValueError, match=r"'a'.*outside"):
        core.validate_codes(b"a", [1, 4], 2, 4)


def test_validate_params():
    core.validate_params(1, 1)
    for args in [(0, 4), (2, 0), (2.5, 4), (True, 4)]:
        with pytest.raises(ValueError):
            core.validate_params(*args)


def test_catalog_tsv_and_metadata():
    ids = [b"a", b"b b", b"c"]
    sids = [(1, 2, 0), (1, 2, 1), (0, 3, 0)]
    assert core.catalog_tsv(ids, sids) == b"a\t0\t1-2-0\nb b\t1\t1-2-1\nc\t2\t0-3-0\n"
    with pytest.raises(ValueError, match="sorted"):
        core.catalog_tsv([b"b", b"a"], sids[:2])
    with pytest.raises(ValueError, match="more than once"):
        core.catalog_tsv([b"a", b"a"], sids[:2])
    meta = core.make_metadata(3, 2, 4, 8, True, sids)
    assert set(meta) == set(core.METADATA_KEYS)
    assert meta[core.SID_LENGTH] == 3 and meta[core.MAX_BREAKER_CODE] == 1
    assert core.make_metadata(3, 2, 4, 8, False, [s[:2] for s in sids])[core.SID_LENGTH] == 2


def test_to_json_writes_null_for_non_finite():
    assert json.loads(core.to_json({"a": math.nan, "b": [np.float32(1.5), np.int64(2)]})) == {
        "a": None, "b": [1.5, 2]}


def test_summary_line():
    line = core.summary_line(dict(num_items=1682, num_levels=4, codebook_size=64,
                                  utilization=[0.92, 0.5], colliding_groups=3,
                                  collisions_before_breaker=6, largest_collision_group=2,
                                  duplicate_sids_after_breaker=0, collision_breaker=True))
    assert line == ("SemanticIdGen: 1,682 items, 4 levels x 64 codes, level-1 utilisation 92%, "
                    "3 collisions (6 items, largest group 2), 0 duplicates after breaker")


def test_extend_keeps_every_previous_sid_and_gives_new_items_the_next_free_breaker_code():
    previous = {b"a": (1, 2, 0), b"b": (1, 2, 1), b"c": (3, 4, 0), b"d": (5, 5, 2)}
    new = {b"z": (1, 2), b"e": (1, 2), b"f": (7, 7), b"g": (5, 5)}
    sids = core.extend_semantic_ids(previous, new, num_levels=2)
    for item_id, sid in previous.items():
        assert sids[item_id] == sid  # frozen, byte for byte
    # group (1, 2) held breaker codes 0-1: new items take 2, 3 in item-id order
    assert sids[b"e"] == (1, 2, 2) and sids[b"z"] == (1, 2, 3)
    assert sids[b"f"] == (7, 7, 0)  # a new group starts at 0
    assert sids[b"g"] == (5, 5, 3)  # past the largest code the group holds, not its count
    assert len(set(sids.values())) == len(sids)


def test_extend_without_breaker_and_its_errors():
    sids = core.extend_semantic_ids({"a": (1, 2)}, {"b": (1, 2)}, num_levels=2,
                                    collision_breaker=False)
    assert sids == {b"a": (1, 2), b"b": (1, 2)}
    with pytest.raises(ValueError, match="'a' is already in the previous catalog"):
        core.extend_semantic_ids({"a": (1, 2, 0)}, {"a": (1, 2)}, num_levels=2)
    with pytest.raises(ValueError, match="more than once"):
        core.extend_semantic_ids({}, [("x", (1, 2)), ("x", (1, 2))], num_levels=2)


def test_changed_semantic_ids_counts_only_items_still_in_the_catalog():
    previous = {"a": (1, 2, 0), "b": (1, 2, 1), "gone": (3, 3, 0)}
    current = {"a": (1, 2, 0), "b": (1, 3, 0), "new": (9, 9, 0)}
    assert core.changed_semantic_ids(previous, current) == (1, 2)


def test_reconstruction_drift_ratio_and_warning():
    d = core.reconstruction_drift([1.0] * 20, [3.0] * 5, warn_ratio=1.5)
    assert d["mean_ratio"] == pytest.approx(3.0) and d["p95_ratio"] == pytest.approx(3.0)
    assert d["refresh_due"] and d["num_new"] == 5
    quiet = core.reconstruction_drift([1.0, 2.0], [1.2], warn_ratio=1.5)
    assert not quiet["refresh_due"]
    none = core.reconstruction_drift([1.0], [], warn_ratio=1.5)
    assert none["mean_ratio"] is None and not none["refresh_due"]
