"""Where the contract's data lives: ``spec/`` and ``schemas/``.

An installed wheel carries both under ``conformance/_bundled``; a source checkout (or an
editable install) reads them from the repository root beside the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["data_root", "schemas_dir", "spec_dir"]

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_root() -> Path:
    """The directory holding ``spec/`` and ``schemas/``."""
    for candidate in (_PACKAGE / "_bundled", _PACKAGE.parent):
        if (candidate / "spec" / "profiles").is_dir() and (candidate / "schemas").is_dir():
            return candidate
    raise FileNotFoundError(  # pragma: no cover - only a broken install gets here
        f"webhook-conformance cannot find spec/ and schemas/ near {_PACKAGE}; reinstall the package"
    )


def spec_dir() -> Path:
    return data_root() / "spec"


def schemas_dir() -> Path:
    return data_root() / "schemas"
