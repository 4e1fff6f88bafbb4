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
