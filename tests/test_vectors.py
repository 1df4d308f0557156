"""The published vectors: reproducible byte for byte, committed as generated, checkable by the CLI.

``attest vectors check`` recomputes every verdict from the JSON alone, so the tampering tests
below prove that each expected outcome is really checked (not just carried along).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from attest.testvectors.check import (
    CBOR_FILE,
    COSE_FILE,
    EVIDENCE_FILE,
    FILES,
    LICENSE_FILE,
    LOCATION_FILE,
    POD_FILE,
    REFERENCE_FILE,
    check_dir,
    check_document,
)
from attest.testvectors.generate import generate, render
from attest.verify.reasons import NODE_REASONS, Reason
from attest.verify.references import RvRefusal

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "vectors"
CLI = [sys.executable, "-m", "attest.cli.main", "vectors"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )


def _load(directory: Path, name: str) -> dict[str, Any]:
    return json.loads((directory / name).read_text(encoding="utf-8"))


def _tests(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for g in doc["testGroups"] for t in g["tests"]]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vectors-a")
    generate(out)
    return out


def test_generation_is_byte_identical(
    generated: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The second run goes through the real CLI, so `attest vectors generate --out` is covered.
    again = tmp_path_factory.mktemp("vectors-b")
    proc = _cli("generate", "--out", str(again))
    assert proc.returncode == 0, proc.stderr
    for name in FILES:
        first = (generated / name).read_bytes()
        assert first == (again / name).read_bytes(), name
        assert first.endswith(b"}\n") and not first.endswith(b"\n\n")
        assert first.decode() == render(json.loads(first)), f"{name}: layout is not canonical"


@pytest.mark.parametrize("name", FILES)
def test_committed_vectors_are_current(generated: Path, name: str) -> None:
    committed = COMMITTED / name
    assert committed.is_file(), f"{committed} missing: run `attest vectors generate`"
    assert committed.read_bytes() == (generated / name).read_bytes(), (
        f"{committed} is stale: run `attest vectors generate` and commit the result"
    )


def test_cli_check_passes_on_committed_vectors() -> None:
    proc = _cli("check", "--dir", str(COMMITTED))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = sum(_load(COMMITTED, n)["numberOfTests"] for n in FILES)
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"{total} passed, 0 failed"
    for name in FILES:
        n = _load(COMMITTED, name)["numberOfTests"]
        assert f"{COMMITTED / name}: {n} passed, 0 failed" in lines


def test_cli_check_fails_on_a_flipped_result(tmp_path: Path) -> None:
    for name in FILES:
        (tmp_path / name).write_bytes((COMMITTED / name).read_bytes())
    doc = _load(tmp_path, EVIDENCE_FILE)
    first_valid = next(t for t in _tests(doc) if t["result"] == "valid")
    first_valid["result"] = "invalid"
    (tmp_path / EVIDENCE_FILE).write_text(render(doc), encoding="utf-8")

    proc = _cli("check", "--dir", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].endswith(", 1 failed")
    assert f"tcId {first_valid['tcId']} " in proc.stdout


def test_check_reports_missing_files(tmp_path: Path) -> None:
    reports = check_dir(tmp_path)
    assert [r.name for r in reports] == list(FILES)
    assert all(r.failed == 1 and r.passed == 0 for r in reports)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation of one test: set the field at the dotted ``path`` to ``value``."""

    def mutate(t: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        for p in parents:
            t = t[p]
        t[leaf] = value(t[leaf]) if callable(value) else value

    return mutate


def _flip_hex(text: str) -> str:
    raw = bytearray(bytes.fromhex(text))
    raw[len(raw) // 2] ^= 0x01
    return raw.hex()


# Each mutation must be caught by recomputation from the JSON (file, pick a test, mutate it).
TAMPERINGS: dict[str, tuple[str, Callable[[dict[str, Any]], bool], Callable[..., None]]] = {
    "evidence bytes": (
        EVIDENCE_FILE,
        lambda t: t["tier"] == "affirming",
        _set("evidence", _flip_hex),
    ),
    "expected tier": (EVIDENCE_FILE, lambda t: t["tier"] == "warning", _set("tier", "affirming")),
    "expected reasons": (EVIDENCE_FILE, lambda t: len(t["reasons"]) == 1, _set("reasons", [])),
    "prior state counter": (
        EVIDENCE_FILE,
        lambda t: t["context"]["priorState"] is not None and t["tier"] == "affirming",
        _set("context.priorState.attestCounter", lambda n: n + 1000),
    ),
    "revocations": (
        EVIDENCE_FILE,
        lambda t: t["tier"] == "affirming" and t["context"]["priorState"] is None,
        _set("context.revocations.manufacturers", ["mfr-a"]),
    ),
    "time": (EVIDENCE_FILE, lambda t: t["tier"] == "affirming", _set("context.nowMs", 0)),
    "new state": (
        EVIDENCE_FILE,
        lambda t: t["newState"] is not None,
        _set("newState.lastChallengeIat", lambda n: n + 1),
    ),
    "cbor result": (CBOR_FILE, lambda t: t["result"] == "invalid", _set("result", "valid")),
    "cbor diagnostic": (CBOR_FILE, lambda t: t["result"] == "valid", _set("diagnostic", "999")),
    "cose error": (
        COSE_FILE,
        lambda t: t["error"] == "ContentTypeError",
        _set("error", "SignatureError"),
    ),
    "cose payload": (COSE_FILE, lambda t: t["result"] == "valid", _set("payload", _flip_hex)),
    # -- Offline Licensing (vectors/license.json)
    "license refusal": (
        LICENSE_FILE,
        lambda t: t.get("refusal") == "LICENSE_REPLAYED",
        _set("refusal", "LICENSE_SERIAL_OUT_OF_ORDER"),
    ),
    "license state after": (
        LICENSE_FILE,
        lambda t: bool(t.get("after")),
        _set("after.serial", lambda n: n + 1),
    ),
    "license chip time": (
        LICENSE_FILE,
        lambda t: "chip" in t and t["result"] == "valid",
        _set("chip.chipTimeS", 10**9),
    ),
    "license ledger": (
        LICENSE_FILE,
        lambda t: "context" in t and t["reasons"] == ["LICENSE_SERIAL_ROLLBACK"],
        _set("context.ledger.reportedSerial", 0),
    ),
    "license renewal": (
        LICENSE_FILE,
        lambda t: t.get("outcome") == "REDELIVERED",
        _set("outcome", "ISSUED"),
    ),
    "license quota": (LICENSE_FILE, lambda t: t.get("meter") == "flops", _set("meter", None)),
    # -- Fixed Set (vectors/pods.json)
    "pod refusal": (
        POD_FILE,
        lambda t: t.get("refusal") == "POD_TOO_LARGE",
        _set("refusal", "POD_NOT_MEMBER"),
    ),
    "pod revocations": (
        POD_FILE,
        lambda t: "podCert" in t and t["result"] == "valid" and not t["revokedPods"],
        lambda t: t["revokedPods"].append(t["podId"]),
    ),
    "link proof refusal": (
        POD_FILE,
        lambda t: t.get("refusal") == "LINK_PROOF_MISMATCH",
        _set("refusal", "LINK_PROOF_INVALID"),
    ),
    "link transcript": (
        POD_FILE,
        lambda t: "transcript" in t and t["result"] == "valid",
        _set("transcript.responderNonce", _flip_hex),
    ),
    "link session key": (
        POD_FILE,
        lambda t: t.get("sessionKey") is not None,
        _set("sessionKey", _flip_hex),
    ),
    "graph chip reasons": (
        POD_FILE,
        lambda t: "COMPONENT_OVER_LIMIT" in t.get("reasons", []),
        lambda t: t["chipReasons"].popitem(),
    ),
    "graph report links": (
        POD_FILE,
        lambda t: "reports" in t and t["result"] == "valid" and len(t["reports"]) > 2,
        lambda t: t["reports"][0]["links"].clear(),
    ),
    "graph alerts": (POD_FILE, lambda t: bool(t.get("alerts")), _set("alerts", [])),
    # -- location verification (vectors/location.json)
    "ping response": (
        LOCATION_FILE,
        lambda t: "response" in t and t["result"] == "valid",
        _set("nonce", _flip_hex),
    ),
    "measure bound": (
        LOCATION_FILE,
        lambda t: "rttsNs" in t and t["result"] == "valid",
        _set("boundM", lambda n: n - 1),
    ),
    "measure clock tick": (
        LOCATION_FILE,
        lambda t: t.get("clockResolutionNs") == 1000,
        _set("clockResolutionNs", 0),
    ),
    "record error": (
        LOCATION_FILE,
        lambda t: t.get("error") == "LANDMARK_MISMATCH",
        _set("error", "SIGNATURE_INVALID"),
    ),
    "record bound": (
        LOCATION_FILE,
        lambda t: "landmarkCert" in t and t["result"] == "valid",
        _set("boundM", lambda n: n + 1),
    ),
    "appraisal placement": (
        LOCATION_FILE,
        lambda t: t.get("placement") == "inside",
        _set("placement", "unverified"),
    ),
    "appraisal region": (
        LOCATION_FILE,
        lambda t: t.get("placement") == "inside" and t.get("region") == "MY+SG",
        _set("region", "MY"),
    ),
    "appraisal travel speed": (
        LOCATION_FILE,
        lambda t: t.get("alerts") == ["impossible-travel"],
        _set("maxSpeedMps", 10**7),
    ),
    "appraisal concurrent": (
        LOCATION_FILE,
        lambda t: t.get("alerts") == ["concurrent-sessions"],
        _set("concurrent", []),
    ),
    # -- vendors' reference values (vectors/reference_values.json)
    "reference values refusal": (
        REFERENCE_FILE,
        lambda t: t.get("refusal") == "RV_ISSUER_MISMATCH",
        _set("refusal", "RV_SIGNATURE_INVALID"),
    ),
    "reference values held number": (
        REFERENCE_FILE,
        lambda t: "token" in t and t["result"] == "valid" and t["heldNumber"] is not None,
        _set("heldNumber", lambda n: n + 1000),
    ),
    "reference values time": (
        REFERENCE_FILE,
        lambda t: "token" in t and t["result"] == "valid" and "Expiry" in t["flags"],
        _set("nowS", lambda n: n + 1),
    ),
    "reference values document": (
        REFERENCE_FILE,
        lambda t: bool(t.get("document")) and len(t["document"]["firmware"]) > 1,
        lambda t: t["document"]["firmware"].reverse(),
    ),
    "reference values fold rule": (
        REFERENCE_FILE,
        lambda t: t.get("refusedRule") == 1,
        _set("refusedRule", 2),
    ),
    "reference values fold references": (
        REFERENCE_FILE,
        lambda t: bool(t.get("firmwareReferences")),
        lambda t: t["firmwareReferences"].pop(),
    ),
    "reference values configured models": (
        REFERENCE_FILE,
        lambda t: "configuredModels" in t and t["result"] == "valid" and t["documents"],
        lambda t: t["configuredModels"].clear(),
    ),
}


@pytest.mark.parametrize("what", TAMPERINGS)
def test_check_detects_tampering(what: str) -> None:
    name, pick, mutate = TAMPERINGS[what]
    doc = _load(COMMITTED, name)
    clean = check_document(name, doc)
    assert clean.failed == 0, clean.failures
    target = next(t for t in _tests(doc) if pick(t))
    mutate(target)
    report = check_document(name, doc)
    assert report.failed == 1, report.failures
    assert f"tcId {target['tcId']} " in report.failures[0]


def test_check_detects_a_wrong_test_count() -> None:
    doc = _load(COMMITTED, COSE_FILE)
    doc["numberOfTests"] += 1
    assert check_document(COSE_FILE, doc).failed == 1


def test_every_reason_has_an_evidence_vector() -> None:
    doc = _load(COMMITTED, EVIDENCE_FILE)
    # mechanisms publish their reasons' appraisal vectors in their own files (license.json ...)
    seen = {
        r for name in FILES for t in _tests(_load(COMMITTED, name)) for r in t.get("reasons", [])
    }
    # (a node's own checks, SPEC §9.11, are beyond the procedure the vectors pin)
    assert {r.name for r in Reason if r not in NODE_REASONS} <= seen
    # Reasons are listed by code, and valid exactly when the evidence is not contraindicated.
    for t in _tests(doc):
        assert t["reasons"] == sorted(t["reasons"], key=lambda n: Reason[n].value)
        assert (t["result"] == "valid") == (t["tier"] != "contraindicated")
    assert doc["numberOfTests"] == len(_tests(doc)) == len({t["tcId"] for t in _tests(doc)})


def test_every_reference_values_refusal_and_rule_has_a_vector() -> None:
    """Each refusal name of SPEC §6.10 and each refusing rule of §8.1 that can fail is pinned."""
    tests = _tests(_load(COMMITTED, REFERENCE_FILE))
    assert {t["refusal"] for t in tests if "refusal" in t} == {None, *map(str, RvRefusal)}
    assert {t["refusedRule"] for t in tests if "refusedRule" in t} == {None, 1, 2}
    for t in tests:  # a refused test yields nothing; a valid one yields everything
        outputs = ("document",) if "token" in t else ("models", "referencedModels")
        assert all((t[o] is None) == (t["result"] == "invalid") for o in outputs), t["tcId"]


#: the modules that re-verify vector files; none may import the generator or the test world
_CHECKER_SIDE = {"check", "format", "inputs", "impl"}


def test_checkers_import_nothing_from_the_generators() -> None:
    """SPEC §15.10: `attest vectors check` recomputes from the JSON alone (every family)."""
    package = REPO / "attest" / "testvectors"
    checkers = [
        p for p in package.glob("*.py") if p.stem in _CHECKER_SIDE or p.stem.endswith("_check")
    ]
    assert len(checkers) >= 11  # check, format, inputs, impl and one checker per family
    for path in checkers:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("attest.testvectors."):
                    leaf = name.rsplit(".", 1)[1]
                    assert leaf in _CHECKER_SIDE or leaf.endswith("_check"), (path.name, name)


def test_every_flag_is_explained() -> None:
    for name in FILES:
        doc = _load(COMMITTED, name)
        used = {f for t in _tests(doc) for f in t["flags"]}
        assert used == set(doc["notes"]), name
