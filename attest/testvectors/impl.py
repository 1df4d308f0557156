"""Run the published vectors against another implementation (``attest vectors check --impl``).

The protocol (SPEC §16.11, vectors/README.md) is one process per vector file:

* attest starts ``CMD`` (split like a shell command line, run without a shell) and writes one
  JSON object to its standard input, then closes it::

      {"protocol": "attest-vectors-impl/1", "file": "<file name>", "document": <the file>}

* the implementation writes one JSON object to its standard output and exits with status 0::

      {"results": [{"tcId": 1, "outputs": {<field>: <value>, ...}},
                   {"tcId": 2, "unsupported": "<why>"}, ...]}

  or ``{"unsupported": "<why>"}`` for a file it does not implement at all.

For every test, ``outputs`` must hold each field the test's group lists in ``outputs``, with
exactly the test's value (:func:`attest.testvectors.format.compare_outputs`). A test with no
result, a non-zero exit status, a timeout or output that is not such an object fail; tests
declared unsupported are counted as skipped, not passed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attest.testvectors.check import FileReport
from attest.testvectors.format import compare_outputs

PROTOCOL = "attest-vectors-impl/1"


def _tests(doc: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(g, t) for g in doc.get("testGroups", []) for t in g.get("tests", [])]


def _all_fail(name: str, doc: dict[str, Any], why: str) -> FileReport:
    n = len(_tests(doc)) or 1
    return FileReport(name, 0, n, (f"{name}: {why}",))


def _run(command: Sequence[str], request: str, timeout_s: float) -> tuple[Any, str | None]:
    """(parsed answer, None) or (None, what went wrong)."""
    try:
        proc = subprocess.run(
            list(command),
            input=request,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"the implementation did not answer within {timeout_s:g} s"
    except OSError as exc:
        return None, f"cannot run the implementation: {exc}"
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return None, f"the implementation exited with status {proc.returncode}: {tail[0]}"
    try:
        answer = json.loads(proc.stdout)
    except ValueError as exc:
        return None, f"the implementation's output is not JSON: {exc}"
    if not isinstance(answer, dict):
        return None, "the implementation's output is not a JSON object"
    return answer, None


def check_file_with(command: Sequence[str], path: Path, timeout_s: float = 300.0) -> FileReport:
    """Check one vector file against the implementation ``command``."""
    name = path.name
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return FileReport(name, 0, 1, (f"{name}: cannot read: {exc}",))
    request = json.dumps({"protocol": PROTOCOL, "file": name, "document": doc})
    answer, error = _run(command, request, timeout_s)
    if error is not None:
        return _all_fail(name, doc, error)
    tests = _tests(doc)
    if "unsupported" in answer and "results" not in answer:
        return FileReport(name, 0, 0, (), skipped=len(tests))
    results = answer.get("results")
    if not isinstance(results, list):
        return _all_fail(name, doc, "the implementation's output has no results list")
    by_tc: dict[Any, Any] = {}
    for r in results:
        if isinstance(r, dict) and "tcId" in r:
            by_tc.setdefault(r["tcId"], r)
    passed, skipped, failures = 0, 0, []
    for group, t in tests:
        tc = t.get("tcId")
        r = by_tc.get(tc)
        if r is None:
            problems = ["no result"]
        elif "unsupported" in r:
            skipped += 1
            continue
        elif not isinstance(r.get("outputs"), dict):
            problems = ["no outputs object"]
        else:
            problems = compare_outputs(group.get("outputs", ()), t, r["outputs"])
        if problems:
            failures.append(f"{name} tcId {tc} ({t.get('comment')}): " + "; ".join(problems))
        else:
            passed += 1
    if doc.get("numberOfTests") != len(tests):
        failures.append(
            f"{name}: numberOfTests is {doc.get('numberOfTests')}, the file holds {len(tests)}"
        )
    return FileReport(name, passed, len(failures), tuple(failures), skipped)
