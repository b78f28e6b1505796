"""Loading a script of bench/ (not a package) as a module, for the smoke tests that run it."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.conftest import REPO


def bench_module(name: str) -> ModuleType:
    """``bench/<name>.py`` executed as module ``name``; it is registered in ``sys.modules``
    first because its dataclasses look their module up there while being defined."""
    path = REPO / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module
