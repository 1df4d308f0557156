"""Shared layout of every published vector file (Wycheproof-style JSON), and how tests are judged.

A file is self-describing (SPEC §16.2, vectors/README.md): ``version`` names the SPEC revision
whose rules its expected values follow, every group lists in ``outputs`` the test fields that
are *expected results* (everything else is input), and every test names in ``sections`` the SPEC
sections it tests. One comparison rule, :func:`compare_outputs`, judges a test for the built-in
checkers and for a third-party implementation run through ``attest vectors check --impl``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from attest import __version__

PROTOCOL_VERSION = 1
#: The SPEC.md document revision whose rules the expected values follow (SPEC §1.5, §18).
SPEC_REVISION = 3
GENERATOR = f"attest {__version__}"


class VectorError(RuntimeError):
    """A case does not have the outcome it was written for: the code or the case is wrong."""


def vector_document(
    algorithm: str, n: int, header: list[str], notes: dict[str, str], groups: list[Any]
) -> dict[str, Any]:
    return {
        "algorithm": algorithm,
        "version": SPEC_REVISION,
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


def _insert_after(d: dict[str, Any], after: Iterable[str], key: str, value: Any) -> dict[str, Any]:
    """``d`` with ``key`` placed right after the last present key of ``after`` (else first)."""
    anchor = [k for k in after if k in d]
    out: dict[str, Any] = {}
    if not anchor:
        out[key] = value
    for k, v in d.items():
        if k == key:
            continue
        out[k] = v
        if anchor and k == anchor[-1]:
            out[key] = value
    return out


def annotate(
    doc: dict[str, Any],
    outputs: Mapping[str, tuple[str, ...]],
    sections: Callable[[dict[str, Any], dict[str, Any]], list[str]],
) -> dict[str, Any]:
    """Add each group's ``outputs`` (by group type) and each test's ``sections`` to ``doc``.

    Used by the generators of the files that predate these fields, so their test cases stay
    exactly as they were; new families write both fields themselves.
    """
    groups = []
    for g in doc["testGroups"]:
        tests = [
            _insert_after(t, ("tcId", "comment", "flags"), "sections", sections(g, t))
            for t in g["tests"]
        ]
        g = _insert_after(g, ("type", "comment"), "outputs", list(outputs[g["type"]]))
        g["tests"] = tests
        groups.append(g)
    return {**doc, "testGroups": groups}


# -- judging a test ------------------------------------------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values with JSON's types: ``true`` is not ``1``, ``[1]`` is not ``(1,)``.

    Objects compare as sets of members (member order is not significant), arrays element by
    element in order.
    """
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return False


_MISSING = object()


def compare_outputs(
    outputs: Iterable[str], test: Mapping[str, Any], got: Mapping[str, Any]
) -> list[str]:
    """What differs between a test's expected outputs and the values an implementation gave.

    Every field named in the group's ``outputs`` must be given and equal the test's value
    exactly (:func:`json_equal`); extra fields are ignored.
    """
    problems = []
    for name in outputs:
        want = test.get(name, _MISSING)
        have = got.get(name, _MISSING)
        if have is _MISSING:
            problems.append(f"no {name!r} given")
        elif want is _MISSING or not json_equal(have, want):
            shown = "absent" if want is _MISSING else _short(want)
            problems.append(f"{name} {_short(have)}, expected {shown}")
    return problems


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Runs one test; returns what is wrong with it (nothing when it passes).
Run = Callable[[dict[str, Any]], list[str]]


def judged(group: dict[str, Any], compute: Callable[[dict[str, Any]], dict[str, Any]]) -> Run:
    """A runner that compares what ``compute`` gives with the group's ``outputs`` (SPEC §16.2)."""
    outputs = tuple(group["outputs"])

    def run(t: dict[str, Any]) -> list[str]:
        return compare_outputs(outputs, t, compute(t))

    return run
