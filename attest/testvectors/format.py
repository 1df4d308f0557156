"""Shared layout of every published vector file (Wycheproof-style JSON)."""

from __future__ import annotations

import json
from typing import Any

from attest import __version__

PROTOCOL_VERSION = 1
GENERATOR = f"attest {__version__}"


class VectorError(RuntimeError):
    """A case does not have the outcome it was written for: the code or the case is wrong."""


def vector_document(
    algorithm: str, n: int, header: list[str], notes: dict[str, str], groups: list[Any]
) -> dict[str, Any]:
    return {
        "algorithm": algorithm,
        "protocolVersion": PROTOCOL_VERSION,
        "generator": GENERATOR,
        "numberOfTests": n,
        "header": header,
        "notes": notes,
        "testGroups": groups,
    }


def render(doc: dict[str, Any]) -> str:
    """The exact text of a vector file (fixed layout so the bytes are reproducible)."""
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=True) + "\n"
