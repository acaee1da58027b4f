"""Load user code that registers models, MI estimators or table formats.

``searec --plugin my_models.py train --model my_model`` (or ``--plugin package.module``)
imports the file or module before the command runs, so what it registers with
``searec.models.register``, ``searec.separation.register_alignment`` /
``register_distancing`` or ``searec.data.tables.register_table_format`` is there for the
command (see docs/extending.md). A run trained with a plugin needs the same plugin to be
resumed, evaluated or served.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from searec.errors import SearecError


def load_plugin(spec: str) -> ModuleType:
    """Import ``spec``: a path to a .py file, or a dotted module name."""
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        if not path.is_file():
            raise SearecError(f"--plugin {spec}: file not found")
        name = f"searec_plugin_{path.stem}"
        if name in sys.modules:  # the same file twice: once is enough
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        raise SearecError(f"--plugin {spec}: no module named {exc.name!r} (give a .py file "
                          "or an importable module)") from None


def load_plugins(specs: Iterable[str]) -> list[ModuleType]:
    return [load_plugin(s) for s in specs]
