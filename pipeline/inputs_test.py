"""items.csv's size as the pipeline sees it when it is built (count_items)."""
from pipeline.inputs import count_items


def test_count_items_counts_the_lines_after_the_header(tmp_path):
    path = tmp_path / "items.csv"
    path.write_bytes(b"item_id,title\na,A\nb,B\n")
    assert count_items(str(tmp_path)) == 2
    path.write_bytes(b"item_id,title\na,A\nb,B")  # no newline after the last row
    assert count_items(str(tmp_path)) == 2
    path.write_bytes(b"item_id,title\n")
    assert count_items(str(tmp_path)) == 0
    path.write_bytes(b"")
    assert count_items(str(tmp_path)) == 0


def test_count_items_does_not_read_a_remote_folder():
    assert count_items("gs://bucket/data") is None
