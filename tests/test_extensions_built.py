"""The optional C modules are built from their current sources wherever a compiler is.

setup.py marks them optional, so an install on a machine without a compiler still works, on
the pure-Python paths. The cost: a C source that no longer compiles fails the build silently,
the previous build's module (or none) is loaded, and every test of the C paths passes on old
code or is skipped. Here a module missing or older than its source fails instead.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO

MODULES = ["watchers.rules._ctext", "watchers.rules._cmatch", "watchers.stories._cstories"]


def _compiler() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


@pytest.mark.parametrize("name", MODULES)
def test_each_c_module_is_built_from_its_current_source(name: str) -> None:
    if _compiler() is None:
        pytest.skip("no C compiler here: the pure-Python paths are what this install runs")
    source = REPO / (name.replace(".", "/") + ".c")
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        pytest.fail(f"{name} is not built although a compiler is here ({exc}); "
                    f"`.venv/bin/python -m pip install -e .` shows why {source.name} fails")
    built = Path(module.__file__ or "")
    assert built.resolve().is_relative_to(REPO.resolve()), built  # this checkout's, not another
    assert os.stat(built).st_mtime >= os.stat(source).st_mtime, (
        f"{built.name} is older than {source.name}: its last build failed (an optional "
        f"extension's failure is silent); `.venv/bin/python -m pip install -e .` shows why")
