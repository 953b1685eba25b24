"""Keeping secrets out of report files: the signing secret, API keys, the secrets the
sender suite sends in its triggers, and those a management API answers with.

A report file is shared (attached to a ticket, published by CI), unlike the terminal of
the person who ran the suite, so the JSON and HTML reports pass every string through a
``Redactor``: the values it was told of are replaced wherever they appear, and so are the
values of JSON fields and headers that hold credentials by their name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "Redactor"]

REDACTED = "<redacted>"
#: Values shorter than this are not replaced wherever they occur: a two-letter secret
#: would mangle every word holding those letters.
MIN_LENGTH = 6
_NAMES = r"[\w-]*(?:secret|password|api[_-]?key|token)[\w-]*"
#: ``"secret": "whsec_..."`` in a JSON body (escaped quotes inside the value included).
_FIELD = re.compile(rf'("{_NAMES}"\s*:\s*")((?:[^"\\]|\\.)+)(")', re.IGNORECASE)
#: ``Authorization: Bearer sk_...`` in a header line or a curl -H argument.
_AUTHORIZATION = re.compile(
    r"(\bAuthorization:\s*(?:(?:Bearer|Basic|Token)\s+)?)([^\s'\"\\]+)", re.IGNORECASE
)


class Redactor:
    """Replaces credentials in strings, and in the strings of nested data."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        known = {v for v in values if len(v) >= MIN_LENGTH}
        # The longest first, so a value holding another is replaced whole.
        self._values = sorted(known, key=len, reverse=True)

    def text(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        text = _FIELD.sub(lambda m: m[1] + REDACTED + m[3], text)
        return _AUTHORIZATION.sub(lambda m: m[1] + REDACTED, text)

    def data(self, value: Any) -> Any:
        """``value`` with every string in it redacted (dicts, lists and tuples walked)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value
