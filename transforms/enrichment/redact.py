"""Keeping secrets out of stored errors.

An endpoint may echo the API key back ("Incorrect API key provided: sk-..."), and an error may quote
a header. Every error that reaches a table, a log or an exception goes through :func:`redact_secrets`,
which removes the configured key itself and anything shaped like a key or a bearer token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Shapes of credentials: provider-prefixed keys (sk-, pk-, rk-, hf_, ghp_, xoxb-, AKIA...), bearer
# tokens, "api_key=..." style assignments, and long opaque tokens mixing letters and digits.
_KEY_SHAPES = (
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"\b(?:hf|ghp|gho|ghs|github_pat|xox[abps])_?[A-Za-z0-9_\-]{10,}"),
    re.compile(r"\bAKIA[0-9A-Z]{12,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{4,}"),
    re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|secret|password|authorization)(\"?\s*[:=]\s*\"?)[^\s\"',}]{4,}"),
    re.compile(r"\b(?=[A-Za-z0-9_\-]*[0-9])(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,}\b"),
)


def redact_secrets(text: str | None, secrets: Iterable[str | None] = ()) -> str | None:
    """``text`` with each of ``secrets`` and anything shaped like a credential replaced by ``[REDACTED]``."""
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for shape in _KEY_SHAPES:
        if shape.groups >= 2:
            text = shape.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        else:
            text = shape.sub(REDACTED, text)
    return text
