"""Code fingerprints for TFX's cache: a hash of the project source a component runs.

TFX caches an execution by its inputs and exec properties only: a change in the code an executor
(or a Transform / Trainer user module) imports would reuse stale outputs. Each component
therefore carries `code_fingerprint(<its executor or user module>)` among its exec properties
(CODE_FINGERPRINT_KEY for the custom components, CODE_VERSION_KEY in the custom_config of
Transform and the Trainers), so a code change reruns exactly the components whose code changed.

The fingerprint is derived, not kept by hand: `module_closure` parses the module's source with
`ast` and follows every import (module level or inside functions, `from pkg import submodule`,
relative imports, `importlib.import_module("<literal>")`), recursively, together with the
package `__init__.py` files on the way; only modules of the project's own packages
(PROJECT_PACKAGES) are followed. `code_fingerprint` hashes the relative paths and contents of
that closure plus requirements/requirements.lock (the pinned third-party stack).

Standard library only (no TFX, no TensorFlow): components and pipeline both import it.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import os
from typing import FrozenSet, Iterable, List, Optional, Set

# The project's top-level packages: imports of anything else (TFX, TF, the standard library)
# are not followed; the lock file stands for them.
PROJECT_PACKAGES = ("schemas", "data", "models", "components", "pipeline", "serving")
# The folder holding those packages (the repository, or the installed semids' site-packages).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Hashed into every fingerprint (relative to the root; "<missing>" where it is absent).
REQUIREMENTS_LOCK = "requirements/requirements.lock"
# Exec property of the custom components (declared in their specs; in custom_config for the
# ValidatingExampleGen, whose spec is TFX's).
CODE_FINGERPRINT_KEY = "code_fingerprint"
# custom_config key of Transform and the Trainers (RankingConfig ignores it).
CODE_VERSION_KEY = "code_version"
# Length of the hex digest kept.
DIGEST_CHARS = 16


def _module_file(name: str, root: str) -> Optional[str]:
    """The source file of module `name` under root (a .py or a package's __init__.py)."""
    base = os.path.join(root, *name.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def _is_project(name: str) -> bool:
    return name.split(".", 1)[0] in PROJECT_PACKAGES


def module_name(module: str, root: str = REPO_ROOT) -> str:
    """A dotted module name ("components.transform.executor") or a .py path (absolute, or
    relative to root: "models/ranking/preprocessing.py") -> the project module's dotted name."""
    if module.endswith(".py") or "/" in module or os.sep in module:
        rel = os.path.relpath(os.path.abspath(os.path.join(root, module)), root)
        if rel.startswith(os.pardir) or not rel.endswith(".py"):
            raise ValueError(f"code fingerprint: {module!r} is not a .py file under {root}")
        parts = rel[:-len(".py")].split(os.sep)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
    else:
        name = module
    if not _is_project(name) or _module_file(name, root) is None:
        raise ValueError(f"code fingerprint: {module!r} is not a module of the project packages "
                         f"{PROJECT_PACKAGES} under {root}")
    return name


def _is_import_call(node: ast.Call) -> bool:
    """importlib.import_module("x") / import_module("x") / __import__("x") with a literal."""
    func = node.func
    fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return (fname in ("import_module", "__import__") and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def imported_names(name: str, path: str) -> FrozenSet[str]:
    """Every module name the source of module `name` (file `path`) may import, anywhere in it.
    `from a import b` yields a and a.b (b may be a submodule); names that are not modules are
    dropped by the caller."""
    st = os.stat(path)
    return _imported_names(name, path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=1024)
def _imported_names(name: str, path: str, mtime_ns: int, size: int) -> FrozenSet[str]:
    """imported_names, parsed once per version of the file (mtime and size in the key)."""
    del mtime_ns, size  # cache key only
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    is_package = os.path.basename(path) == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from ..a import b
                parts = package.split(".") if package else []
                up = node.level - 1
                if up > len(parts):
                    continue
                base = ".".join(parts[:len(parts) - up] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                found.add(base)
            found.update(f"{base}.{alias.name}" if base else alias.name
                         for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and _is_import_call(node):
            found.add(node.args[0].value)
    return frozenset(found)


def module_closure(modules: Iterable[str], root: str = REPO_ROOT) -> List[str]:
    """The project source files (paths relative to root, "/"-separated, sorted) that importing
    `modules` runs: the modules themselves, their packages' __init__.py files and, recursively,
    every project module they import."""
    todo = [module_name(m, root) for m in modules]
    seen: Set[str] = set()
    files: Set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or not _is_project(name):
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # packages on the way
        path = _module_file(name, root)
        if path is None:  # `from pkg import attr`: an attribute, not a module
            continue
        files.add(os.path.relpath(path, root).replace(os.sep, "/"))
        todo.extend(imported_names(name, path))
    return sorted(files)


def code_fingerprint(*modules: str, root: str = REPO_ROOT) -> str:
    """A short hex digest of the relative paths and contents of module_closure(modules) and of
    requirements/requirements.lock."""
    if not modules:
        raise ValueError("code fingerprint: no modules given")
    h = hashlib.sha256()
    for rel in module_closure(modules, root) + [REQUIREMENTS_LOCK]:
        path = os.path.join(root, *rel.split("/"))
        data = b"<missing>"
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
        h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()[:DIGEST_CHARS]
