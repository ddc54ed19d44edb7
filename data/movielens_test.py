"""MovieLens-100K conversion (recbole's bundled files; about a second)."""
import importlib.util
import os

import pytest

from data import format as fm
from data import movielens
from schemas import features as F

pytestmark = pytest.mark.skipif(importlib.util.find_spec("recbole") is None,
                                reason="recbole is not installed (make setup)")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return movielens.prepare_movielens(str(tmp_path_factory.mktemp("ml100k")))


def test_counts_and_label_share(prepared):
    c = prepared["counts"]
    assert c["interactions"] == 100_000
    assert c["items"] == 1_682
    assert c["users"] == 943
    assert c["positives"] / c["interactions"] == pytest.approx(0.55375)  # rating >= 4


def test_files_follow_the_contract(prepared):
    header, items = fm.read_items(prepared["paths"]["items"])
    assert header.text_field_names == movielens.ITEM_TEXT_FIELDS
    items = list(items)
    assert not [r for _, _, r in items if r]
    by_id = {rec[F.ITEM_ID]: rec for _, rec, _ in items}
    assert by_id["1"] == {F.ITEM_ID: "1", "title": "Toy Story", "year": "1995",
                          "genres": "Animation Children's Comedy"}
    assert any("Film-Noir" in r["genres"].split() for r in by_id.values())
    _, rows = fm.read_interactions(prepared["paths"]["interactions"], set(by_id))
    rows = list(rows)
    assert len(rows) == 100_000 and not [r for _, _, r in rows if r]
    first = rows[0][1]  # 196 242 3 881250949
    assert first == {F.USER_ID: "196", F.ITEM_ID: "242", F.TIMESTAMP: 881250949, F.LABEL: 0}


def test_idempotent(prepared):
    paths = prepared["paths"]
    mtimes = {k: os.stat(p).st_mtime_ns for k, p in paths.items()}
    again = movielens.prepare_movielens(os.path.dirname(paths["items"]))
    assert again["counts"] == prepared["counts"]
    assert {k: os.stat(p).st_mtime_ns for k, p in paths.items()} == mtimes


def test_missing_recbole_says_make_setup(monkeypatch, tmp_path):
    monkeypatch.setattr(movielens.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="make setup"):
        movielens.prepare_movielens(str(tmp_path))
