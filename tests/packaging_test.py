"""semids as a Beam worker gets it: `python setup.py sdist`, a clean venv from the lock, the sdist
installed with --no-deps (as on a Dataflow worker given --setup_file, or in the pipeline image),
then, from a folder outside the repository, every module of the installed packages imported and
the non-Python files the pipeline reads found inside the installed package.

Skipped (not failed) where uv, the lock or a Python 3.10 is missing. About 40 s with a warm uv
cache (packages are hard-linked from it).
"""
import json
import os
import subprocess
import sys
import tarfile

import pytest

from pipeline.config import REPO_ROOT

UV = os.path.join(REPO_ROOT, ".tools", "uv", "bin", "uv")
LOCK = os.path.join(REPO_ROOT, "requirements", "requirements.lock")
SETUP_ENV = os.path.join(REPO_ROOT, "scripts", "setup_env.sh")
# setup.py's top-level packages.
PACKAGES = ("pipeline", "components", "models", "data", "serving", "schemas")
# Files a run reads by path from the package (not imported): pipeline.config / pipeline.pipeline.
DATA_FILES = ("schemas/interactions.pbtxt",)


def _is_test_module(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf.endswith("_test") or leaf.startswith("test_") or leaf == "conftest"


def _repo_modules():
    """Dotted names of the repository's non-test modules under PACKAGES (what must install)."""
    names = set()
    for top in PACKAGES:
        for d, dirs, files in os.walk(os.path.join(REPO_ROOT, top)):
            dirs[:] = [x for x in dirs if os.path.isfile(os.path.join(d, x, "__init__.py"))]
            pkg = os.path.relpath(d, REPO_ROOT).replace(os.sep, ".")
            for f in files:
                if f.endswith(".py"):
                    name = pkg if f == "__init__.py" else f"{pkg}.{f[:-3]}"
                    if not _is_test_module(name):
                        names.add(name)
    return names


# Runs in the clean venv, from a folder outside the repository.
_CHECK = r"""
import importlib, json, os, pkgutil, sys, traceback
packages, data_files = json.loads(sys.argv[1]), json.loads(sys.argv[2])
site = os.path.realpath(sys.argv[3])
out = {"imported": [], "failed": {}, "outside_site": [], "sys_path": sys.path}

def is_test(name):
    leaf = name.rsplit(".", 1)[-1]
    return leaf.endswith("_test") or leaf.startswith("test_") or leaf == "conftest"

def load(name):
    try:
        mod = importlib.import_module(name)
    except BaseException:
        out["failed"][name] = traceback.format_exc(limit=3)
        return None
    out["imported"].append(name)
    if not os.path.realpath(mod.__file__).startswith(site + os.sep):
        out["outside_site"].append(f"{name}: {mod.__file__}")
    return mod

for top in packages:
    pkg = load(top)
    if pkg is None:
        continue
    for info in pkgutil.walk_packages(pkg.__path__, top + ".",
                                      onerror=lambda n: out["failed"].setdefault(n, "walk")):
        if not is_test(info.name):
            load(info.name)

import schemas
from pipeline import config, pipeline as pipeline_lib
out["root"] = os.path.realpath(config.REPO_ROOT)
out["files"] = {rel: os.path.isfile(os.path.join(config.REPO_ROOT, rel)) for rel in data_files}
out["files"]["INTERACTIONS_SCHEMA"] = os.path.isfile(schemas.INTERACTIONS_SCHEMA)
for key in ("PREPROCESSING_MODULE", "TRAINER_MODULE", "RQVAE_TRAINER_MODULE"):
    out["files"][key] = os.path.isfile(getattr(pipeline_lib, key))
out["schema_features"] = []
if os.path.isfile(schemas.INTERACTIONS_SCHEMA):
    from tfx.utils import io_utils
    from tensorflow_metadata.proto.v0 import schema_pb2
    schema = io_utils.parse_pbtxt_file(schemas.INTERACTIONS_SCHEMA, schema_pb2.Schema())
    out["schema_features"] = sorted(f.name for f in schema.feature)
print("RESULT " + json.dumps(out))
"""


def _run(cmd, timeout, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, (f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def _python310() -> str:
    """The Python 3.10 scripts/setup_env.sh builds .venv with (its own finder)."""
    proc = subprocess.run(["bash", SETUP_ENV, "--find-python"], capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.skip(f"no Python 3.10 found by {SETUP_ENV}: {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1]


# Left out of the copy the sdist is built from; generated or local-only, never in the sdist.
_NOT_COPIED = (".git", ".venv", ".tools", "outputs", "results", "data_cache", "build", "dist",
               "*.egg-info", "__pycache__", ".pytest_cache")
# Planted in the copy: none may reach the sdist.
_PLANTED = ("outputs/pipelines/x.txt", "results/ml100k/metrics.json", "data_cache/x.csv",
            "components/__pycache__/artifacts.cpython-310.pyc")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """`python setup.py sdist` of a copy of the working tree (setuptools builds its release tree
    in the current folder: a copy keeps the repository clean and concurrent runs apart)."""
    import shutil
    src = str(tmp_path_factory.mktemp("src") / "semids")
    shutil.copytree(REPO_ROOT, src, ignore=shutil.ignore_patterns(*_NOT_COPIED), symlinks=True)
    for rel in _PLANTED:
        os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
        with open(os.path.join(src, rel), "w") as f:
            f.write("generated\n")
    out = str(tmp_path_factory.mktemp("sdist"))
    _run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", out], timeout=300, cwd=src)
    tarballs = [p for p in os.listdir(out) if p.endswith(".tar.gz")]
    assert len(tarballs) == 1, os.listdir(out)
    return os.path.join(out, tarballs[0])


def test_sdist_holds_the_packages_schemas_and_requirements_only(sdist):
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for rel in ("setup.py", "README.md", "MANIFEST.in", "requirements/requirements.lock",
                "requirements/requirements.in", "requirements/extra.txt", *DATA_FILES):
        assert rel in names, rel
    for name in _repo_modules():
        rel = name.replace(".", "/")
        assert f"{rel}.py" in names or f"{rel}/__init__.py" in names, name
    leaked = sorted(n for n in names if n.split("/")[0] in (
        "outputs", "results", "data_cache", ".venv", ".tools", "tests", "build", "dist")
        or "__pycache__" in n or n.endswith(".pyc") or n in _PLANTED)
    assert not leaked, leaked


@pytest.mark.slow  # installs the whole lock into a fresh venv (~3 GB)
def test_clean_install_from_the_lock_imports_every_module_outside_the_repo(sdist, tmp_path):
    if not os.access(UV, os.X_OK):
        pytest.skip(f"uv not found at {UV} (`make setup` installs it)")
    if not os.path.isfile(LOCK):
        pytest.skip(f"no lock file at {LOCK}")
    python = _python310()
    venv = str(tmp_path / "venv")
    # Hard links from the uv cache (uv falls back to copying across file systems).
    env = {**os.environ, "UV_LINK_MODE": "hardlink"}
    _run([UV, "venv", "-q", "--python", python, venv], timeout=120, env=env)
    vpy = os.path.join(venv, "bin", "python")
    _run([UV, "pip", "install", "-q", "--python", vpy, "-r", LOCK], timeout=900, env=env)
    _run([UV, "pip", "install", "-q", "--python", vpy, "--no-deps", sdist], timeout=300, env=env)
    site = _run([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                timeout=60).stdout.strip()

    workdir = tmp_path / "elsewhere"  # not the repository: it must not be on sys.path
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONWARNINGS="ignore::FutureWarning")
    proc = _run([vpy, "-I", "-c", _CHECK, json.dumps(PACKAGES), json.dumps(DATA_FILES), site],
                timeout=600, cwd=str(workdir), env=env)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])

    assert not result["failed"], "\n".join(f"{k}:\n{v}" for k, v in result["failed"].items())
    assert not result["outside_site"], result["outside_site"]
    assert not any(os.path.realpath(p) == os.path.realpath(REPO_ROOT) for p in result["sys_path"])
    # Every non-test module of the repository is in the installed package (the walk covered it).
    missing = sorted(_repo_modules() - set(result["imported"]))
    assert not missing, missing
    for name in ("components.example_gen.executor", "components.transform.component",
                 "models.ranking.preprocessing", "models.rqvae.trainer_module",
                 "pipeline.pipeline", "data.format", "serving.server"):
        assert name in result["imported"], name
    # The package root is site-packages, and the files read by path are there.
    assert result["root"] == os.path.realpath(site)
    assert all(result["files"].values()), result["files"]
    assert "item_id" in result["schema_features"], result["schema_features"]
