"""The one function loader: a function's handler module, as Lambda imports it from its CodeUri."""

from __future__ import annotations

import importlib.util
from typing import Any

from devstack.template import ROOT


def load_function(name: str) -> Any:
    """`functions/<name>/app.py`, freshly imported (its module-level state is new) under a name of its own."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"test_function_{name}_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
