"""Where the warehouse lives. Read when asked, never at import time."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "RECFORGE_HOME"
DEFAULT_HOME = Path("warehouse") / "data"


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``explicit`` if given, else ``$RECFORGE_HOME``, else ``warehouse/data``."""
    chosen = explicit or os.environ.get(HOME_ENV) or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


LOCK_TIMEOUT_ENV = "RECFORGE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 3600.0  # seconds a writing run waits for another one on the same data root


def lock_timeout() -> float:
    """Seconds a writing run waits for the data root's writer lock: ``$RECFORGE_LOCK_TIMEOUT`` or an hour."""
    value = os.environ.get(LOCK_TIMEOUT_ENV)
    try:
        return float(value) if value else DEFAULT_LOCK_TIMEOUT
    except ValueError as exc:
        raise ValueError(f"${LOCK_TIMEOUT_ENV} must be a number of seconds, got {value!r}") from exc
