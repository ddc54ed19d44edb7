"""The layering check: `lint-imports` (import-linter) holds the contracts of .importlinter, and
fails when a lower layer imports a higher one."""
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("schemas", "data", "models", "components", "pipeline", "serving")
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def lint_imports(root: str) -> subprocess.CompletedProcess:
    # PYTHONPATH first, so that the packages under `root` shadow the installed (editable) ones.
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_repository_keeps_its_layers():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_backward_import_fails_the_check(tmp_path):
    for name in PACKAGES:
        shutil.copytree(os.path.join(REPO, name), tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO, ".importlinter"), tmp_path / ".importlinter")
    assert lint_imports(str(tmp_path)).returncode == 0  # the copy passes as it is

    # models/ may not import pipeline/ (which assembles the pipeline from models).
    with open(tmp_path / "models" / "ranking" / "config.py", "a") as f:
        f.write("\nfrom pipeline import config as _backward  # noqa: E402,F401\n")
    result = lint_imports(str(tmp_path))
    assert result.returncode != 0
    assert "models.ranking.config -> pipeline.config" in result.stdout, result.stdout
