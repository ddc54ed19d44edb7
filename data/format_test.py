"""Tests of the bring-your-own-data contract (data/format.py): pure parsing, no TFX."""
import os

import pytest

from data import format as fm
from schemas import features as F

HEADER = ",".join(F.INTERACTION_COLUMNS)


def _write(tmp_path, name, text, newline="\n"):
    p = os.path.join(str(tmp_path), name)
    with open(p, "w", encoding="utf-8", newline="") as f:
        f.write(text.replace("\n", newline))
    return p


def _interactions(tmp_path, body, known=("1", "2", "007"), header=HEADER):
    p = _write(tmp_path, F.INTERACTIONS_FILE, header + "\n" + body)
    _, rows = fm.read_interactions(p, set(known))
    return list(rows)


def _reasons(rows):
    return [str(rej) for _, _, rej in rows if rej is not None]


# --- reading and line numbers --------------------------------------------------------------

def test_iter_rows_line_numbers_with_multiline_field_blank_lines_and_crlf(tmp_path):
    text = ('item_id,title,genres\n'
            '1,"Multi\nline, with comma",Drama\n'
            '\n'
            '2,"He said ""hi""",Comedy\n'
            '3,Plain,War\n')
    for nl in ("\n", "\r\n"):
        p = _write(tmp_path, F.ITEMS_FILE, text, newline=nl)
        rows = list(fm.iter_rows(p))
        assert [line for line, _ in rows] == [1, 2, 5, 6]
        assert rows[1][1][1] == f"Multi{nl}line, with comma"
        assert rows[2][1][1] == 'He said "hi"'


def test_bom_is_ignored(tmp_path):
    p = os.path.join(str(tmp_path), F.ITEMS_FILE)
    with open(p, "wb") as f:
        f.write("item_id,title\n1,Amélie\n".encode("utf-8-sig"))
    header, rows = fm.read_items(p)
    assert header.text_field_names == ("title",)
    assert [r for _, r, _ in rows] == [{F.ITEM_ID: "1", "title": "Amélie"}]


def test_invalid_utf8_is_fatal_with_line(tmp_path):
    p = os.path.join(str(tmp_path), F.ITEMS_FILE)
    with open(p, "wb") as f:
        f.write(b"item_id,title\n1,ok\n2,\xff\xfe\n")
    with pytest.raises(ValueError, match=r"items\.csv:3: not valid UTF-8"):
        list(fm.read_items(p)[1])


def test_csv_syntax_error_is_a_reject_and_reading_goes_on(tmp_path):
    rows = _interactions(tmp_path, 'u1,1,"10"x,1\nu2,2,20,0\n')
    assert _reasons(rows) == [f"{F.INTERACTIONS_FILE}:2: CSV syntax error: "
                              "',' expected after '\"'"]
    assert [r[F.USER_ID] for _, r, _ in rows if r] == ["u2"]


# --- interactions rows -----------------------------------------------------------------------

def test_interaction_ids_stay_strings_and_are_stripped():
    idx = {c: i for i, c in enumerate(F.INTERACTION_COLUMNS)}
    rec, reason = fm.parse_interaction_row([" 007 ", "007", "881250949.0", "1.0"], idx, {"007"})
    assert reason is None
    assert rec == {F.USER_ID: "007", F.ITEM_ID: "007", F.TIMESTAMP: 881250949, F.LABEL: 1}
    assert isinstance(rec[F.TIMESTAMP], int) and isinstance(rec[F.LABEL], int)


def test_interaction_columns_in_any_order(tmp_path):
    rows = _interactions(tmp_path, "1,0,u9,2\n",
                         header=",".join([F.LABEL, F.TIMESTAMP, F.USER_ID, F.ITEM_ID]))
    assert rows == [(2, {F.USER_ID: "u9", F.ITEM_ID: "2", F.TIMESTAMP: 0, F.LABEL: 1}, None)]


@pytest.mark.parametrize("row,reason", [
    ("u1,1,10", "expected 4 fields, got 3"),
    ("u1,1,10,1,extra", "expected 4 fields, got 5"),
    (",1,10,1", f"empty {F.USER_ID}"),
    ("u1, ,10,1", f"empty {F.ITEM_ID}"),
    ("u1,1,,1", f"empty {F.TIMESTAMP}"),
    ("u1,1,10,", f"empty {F.LABEL}"),
    ("u1,1,yesterday,1", f"{F.TIMESTAMP} 'yesterday' is not an integer number of seconds"),
    ("u1,1,10.5,1", f"{F.TIMESTAMP} '10.5' is not an integer number of seconds"),
    ("u1,1,nan,1", f"{F.TIMESTAMP} 'nan' is not an integer number of seconds"),
    ("u1,1,1_000,1", f"{F.TIMESTAMP} '1_000' is not an integer number of seconds"),
    ("u1,1,10,yes", f"{F.LABEL} 'yes' is not 0 or 1"),
    ("u1,1,10,2", f"{F.LABEL} '2' is not 0 or 1"),
    ("u1,1,10,0.5", f"{F.LABEL} '0.5' is not 0 or 1"),
    ("u1,99,10,1", f"{F.ITEM_ID} '99' is not in {F.ITEMS_FILE}"),
    ("u1,7,10,1", f"{F.ITEM_ID} '7' is not in {F.ITEMS_FILE}"),  # '007' is known, '7' is not
])
def test_interaction_reject_reasons(tmp_path, row, reason):
    rows = _interactions(tmp_path, "u0,1,5,0\n" + row + "\n")
    assert _reasons(rows) == [f"{F.INTERACTIONS_FILE}:3: {reason}"]


@pytest.mark.parametrize("ts,label", [("881250949", "0"), ("881250949.0", "1"), ("8.8125e8", "0.0"),
                                      ("-5", "1.0")])
def test_interaction_accepted_values(tmp_path, ts, label):
    rows = _interactions(tmp_path, f"u1,1,{ts},{label}\n")
    assert _reasons(rows) == []
    assert rows[0][1][F.TIMESTAMP] == int(float(ts))
    assert rows[0][1][F.LABEL] == int(float(label))


def test_rejects_keep_start_line_of_multiline_rows(tmp_path):
    body = 'u1,1,10,1\n"u\n2",1,11,yes\nu3,2,12,0\n'
    rows = _interactions(tmp_path, body)
    assert _reasons(rows) == [f"{F.INTERACTIONS_FILE}:3: {F.LABEL} 'yes' is not 0 or 1"]
    assert [line for line, r, _ in rows if r] == [2, 5]


@pytest.mark.parametrize("header,missing", [
    ("user_id,item_id,timestamp", F.LABEL),
    ("user_id,timestamp,label", F.ITEM_ID),
])
def test_interactions_header_missing_column_is_fatal(tmp_path, header, missing):
    p = _write(tmp_path, F.INTERACTIONS_FILE, header + "\nu1,1,10\n")
    with pytest.raises(fm.HeaderError, match=f"{F.INTERACTIONS_FILE}: header is missing required "
                                             f"column '{missing}'"):
        fm.read_interactions(p, None)
    with pytest.raises(fm.HeaderError):
        fm.check_header(p, fm.INTERACTIONS_TABLE)


def test_interactions_header_extra_duplicate_empty_columns_are_fatal():
    with pytest.raises(fm.HeaderError, match=r"unexpected column\(s\) \['rating'\]"):
        fm.parse_interactions_header(list(F.INTERACTION_COLUMNS) + ["rating"])
    with pytest.raises(fm.HeaderError, match="duplicate"):
        fm.parse_interactions_header(list(F.INTERACTION_COLUMNS) + [F.LABEL])
    with pytest.raises(fm.HeaderError, match="empty name"):
        fm.parse_items_header([F.ITEM_ID, ""])


def test_empty_file_is_fatal(tmp_path):
    p = _write(tmp_path, F.ITEMS_FILE, "")
    with pytest.raises(fm.HeaderError, match=f"{F.ITEMS_FILE}: the file is empty"):
        fm.read_items(p)


# --- items rows ------------------------------------------------------------------------------

def test_items_text_fields_in_file_order_and_embedding(tmp_path):
    p = _write(tmp_path, F.ITEMS_FILE,
               'title,item_id,embedding,year\n'
               '"A, film",007,0.5 -1 2e-3,1999\n'
               'B,008,1 2 3,\n')
    header, rows = fm.read_items(p)
    assert header.text_field_names == ("title", "year")
    rows = list(rows)
    assert rows[0] == (2, {F.ITEM_ID: "007", "title": "A, film", "year": "1999",
                           F.ITEM_EMBEDDING: [0.5, -1.0, 0.002]}, None)
    assert rows[1][1]["year"] == ""  # text fields may be empty


def test_items_without_embedding_column():
    header = fm.parse_items_header([F.ITEM_ID] + list(F.ITEM_TEXT_FIELDS_DEFAULT))
    rec, reason = fm.parse_item_row(["1", "Toy Story", "1995", "Animation Children's"], header)
    assert reason is None and F.ITEM_EMBEDDING not in rec
    assert rec["genres"] == "Animation Children's"


def test_item_reject_reasons(tmp_path):
    p = _write(tmp_path, F.ITEMS_FILE,
               'item_id,title,embedding\n'
               '1,a,1 2\n'          # 2: ok, fixes dimension 2
               '2,b,1 2 3\n'        # 3: wrong dimension
               '1,c,1 2\n'          # 4: duplicate
               '3,d,1 x\n'          # 5: non-float
               ',e,1 2\n'           # 6: empty id
               '4,f,\n'             # 7: empty embedding
               '5,g\n'              # 8: wrong count
               '6,h,1 inf\n'        # 9: not finite
               '8,h,1e39 1\n'       # 10: beyond float32
               '"7","multi\nline",3 4\n'  # 11-12: ok
               '7,i,1 2\n')         # 13: duplicate of the multi-line row
    _, rows = fm.read_items(p)
    rows = list(rows)
    f = F.ITEMS_FILE
    assert _reasons(rows) == [
        f"{f}:3: {F.ITEM_EMBEDDING} has dimension 3, expected 2",
        f"{f}:4: duplicate {F.ITEM_ID} '1' (first on line 2)",
        f"{f}:5: {F.ITEM_EMBEDDING} value 2 'x' is not a float",
        f"{f}:6: empty {F.ITEM_ID}",
        f"{f}:7: empty {F.ITEM_EMBEDDING}",
        f"{f}:8: expected 3 fields, got 2",
        f"{f}:9: {F.ITEM_EMBEDDING} value 2 'inf' is not finite",
        f"{f}:10: {F.ITEM_EMBEDDING} value 1 '1e39' is out of float32 range",
        f"{f}:13: duplicate {F.ITEM_ID} '7' (first on line 11)",
    ]
    assert [r[F.ITEM_ID] for _, r, _ in rows if r] == ["1", "7"]


def test_items_header_missing_item_id_is_fatal(tmp_path):
    p = _write(tmp_path, F.ITEMS_FILE, "id,title\n1,a\n")
    with pytest.raises(fm.HeaderError,
                       match=f"{F.ITEMS_FILE}: header is missing required column '{F.ITEM_ID}'"):
        fm.read_items(p)


# --- errors ------------------------------------------------------------------------------------

def test_reject_str():
    assert str(fm.Reject(F.INTERACTIONS_FILE, 17, "label 'yes' is not 0 or 1")) == \
        "interactions.csv:17: label 'yes' is not 0 or 1"


def test_rejected_rows_error_message():
    first = ["interactions.csv:2: empty user_id", "interactions.csv:5: label 'x' is not 0 or 1"]
    e = fm.RejectedRowsError(F.INTERACTIONS_FILE, 40, 4, 0.05, "/out/rejects/x.txt", first)
    msg = str(e)
    assert isinstance(e, ValueError)
    for part in (F.INTERACTIONS_FILE, "4 of 40 rows", "10.00%", "max_bad_row_fraction=0.05",
                 "/out/rejects/x.txt", first[0], first[1]):
        assert part in msg
    assert e.rejected_fraction == pytest.approx(0.1)


def test_row_ranges_cover_the_file_with_its_line_numbers(tmp_path, monkeypatch):
    """Random files, range sizes and read-block sizes: the ranges' rows (header first) are the
    rows of one sequential read, line numbers included; a quote makes the plan None."""
    import random
    rng = random.Random(1)
    path = str(tmp_path / "interactions.csv")
    for trial in range(150):
        lines = ["user_id,item_id,timestamp,label"]
        for i in range(rng.randint(0, 120)):
            if rng.random() < 0.05:
                lines.append("")
            lines.append(f"u{i},i{rng.randint(0, 9)},{1000 + i},{rng.choice('01x')}")
        text = "\n".join(lines) + ("\n" if rng.random() < 0.5 else "")
        if rng.random() < 0.2:
            text = text.replace("\n", "\r\n")
        with open(path, "w", newline="") as f:
            f.write(text)
        monkeypatch.setattr(fm, "_PLAN_BLOCK", rng.choice([64, 1 << 20]))
        ranges = fm.plan_row_ranges(path, target_bytes=rng.randint(1, 200))
        full = list(fm.iter_rows_checked(path))
        got = []
        for r in ranges:
            rows = list(fm.iter_range_rows_checked(path, r))
            assert rows[0] == full[0], trial
            got += rows[1:]
        assert got == full[1:], trial
        assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))
    with open(path, "w") as f:
        f.write('user_id,item_id,timestamp,label\n"u\n1",i1,1,0\n')
    assert fm.plan_row_ranges(path) is None
