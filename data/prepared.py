"""A prepared dataset folder: files written once, with a marker file that says what they were
written from, so a later call with the same inputs leaves them (and their times, TFX's input
fingerprint) alone."""
import json
import os
from typing import Callable, Dict, Iterable

from data import locking


def write_once(out_dir: str, paths: Iterable[str], marker_name: str,
               is_current: Callable[[Dict], bool], write: Callable[[], Dict],
               force: bool = False) -> Dict:
    """Returns the marker's record when every path and the marker exist and is_current(record);
    otherwise calls write() (which writes the paths and returns the record) and then writes the
    marker. Processes preparing one folder take turns under its lock (side-by-side `semids tune`
    runs on a fresh machine): the later one finds the files ready."""
    marker = os.path.join(out_dir, marker_name)
    with locking.exclusive(out_dir):
        if not force and all(os.path.isfile(p) for p in paths) and os.path.isfile(marker):
            try:
                with open(marker) as f:
                    record = json.load(f)
                if is_current(record):
                    return record
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass  # an unreadable or older marker: write again
        record = write()
        tmp = marker + ".tmp"  # the marker appears whole, after the files
        with open(tmp, "w") as f:
            json.dump(record, f, indent=2, sort_keys=True)
        os.replace(tmp, marker)
    return record
