"""Sub-commands that other parts of recforge add to the ``recforge`` CLI.

Every module ``recforge/cli_<name>.py`` that defines ``register(subparsers) -> None`` contributes its
sub-commands (``register`` adds a parser and sets its ``func``), so a new capability adds a command
without editing ``cli.py``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import recforge


def registered() -> list[Callable[[Any], None]]:
    """The ``register`` functions of every ``recforge.cli_*`` module, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(recforge.__path__), key=lambda i: i.name):
        if info.name.startswith("cli_") and info.name != "cli_extensions":
            module = importlib.import_module(f"{recforge.__name__}.{info.name}")
            if hasattr(module, "register"):
                found.append(module.register)
    return found
