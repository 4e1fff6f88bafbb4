"""Sub-commands that other parts of recforge add to the ``recforge`` CLI.

Each entry is a function ``register(subparsers) -> None`` that adds one sub-command and sets its
``func``. Keeping the list here lets a new capability add a command without editing ``cli.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REGISTERED: list[Callable[[Any], None]] = []
