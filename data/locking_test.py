import os
import subprocess
import sys

from data import locking


def test_a_missing_folder_is_made_and_a_free_lock_does_not_wait(tmp_path):
    folder, waited = str(tmp_path / "results" / "ml1m"), []
    with locking.exclusive(folder, on_wait=waited.append):
        assert os.path.isdir(folder)
    with locking.exclusive(folder, on_wait=waited.append):  # an existing folder: locked in place
        pass
    assert waited == []


def test_a_held_lock_makes_another_process_wait(tmp_path):
    path = str(tmp_path)
    child = ("import sys\nfrom data import locking\n"
             f"with locking.exclusive({path!r}, on_wait=lambda p: print('waits', flush=True)):\n"
             "    print('holds', flush=True)\n")
    with locking.exclusive(path):
        proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                                cwd=os.path.dirname(os.path.dirname(__file__)))
        assert proc.stdout.readline() == "waits\n"  # before it could hold it
    assert proc.stdout.readline() == "holds\n"
    assert proc.wait(timeout=60) == 0
