import json
import os

from data import prepared


def _write_once(tmp_path, version, calls, force=False):
    path = str(tmp_path / "items.csv")

    def write():
        calls.append(version)
        with open(path, "w") as f:
            f.write("item_id\n")
        return {"version": version, "counts": {"items": 0}}
    return prepared.write_once(str(tmp_path), [path], ".marker.json",
                               lambda m: m["version"] == version, write, force=force)


def test_writes_once_then_keeps_the_files_while_the_marker_is_current(tmp_path):
    calls = []
    assert _write_once(tmp_path, 1, calls) == {"version": 1, "counts": {"items": 0}}
    mtime = os.stat(tmp_path / "items.csv").st_mtime_ns
    assert _write_once(tmp_path, 1, calls)["counts"] == {"items": 0}
    assert calls == [1] and os.stat(tmp_path / "items.csv").st_mtime_ns == mtime
    _write_once(tmp_path, 2, calls)  # another input: written again
    _write_once(tmp_path, 2, calls, force=True)
    assert calls == [1, 2, 2]
    assert json.loads((tmp_path / ".marker.json").read_text())["version"] == 2


def test_an_unreadable_marker_or_a_missing_file_means_writing_again(tmp_path):
    calls = []
    _write_once(tmp_path, 1, calls)
    (tmp_path / ".marker.json").write_text("{not json")
    _write_once(tmp_path, 1, calls)
    (tmp_path / ".marker.json").write_text("[]")  # not a record: m["version"] fails
    _write_once(tmp_path, 1, calls)
    os.remove(tmp_path / "items.csv")
    _write_once(tmp_path, 1, calls)
    assert calls == [1, 1, 1, 1]
