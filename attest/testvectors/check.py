"""Re-verify published vector files from their JSON alone.

This is what an independent implementer does with the vectors: decode the hex, rebuild the
trust anchors, policy, prior chip state and revocations from the JSON, run the implementation
and compare with the expected outcome. It deliberately imports nothing from the generator or
the test world, so a vector file that only agrees with the generator's in-memory objects (and
not with its own contents) fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attest.codec.cbor import decode, encode
from attest.codec.cose import verify1
from attest.errors import AttestError
from attest.keys import PublicKey
from attest.messages.attestation import Challenge
from attest.testvectors.audit_check import AUDIT_ALGORITHM, AUDIT_FILE, audit_groups
from attest.testvectors.federation_check import (  # federation
    FEDERATION_ALGORITHM,
    FEDERATION_FILE,
    federation_groups,
)
from attest.testvectors.inputs import (
    diagnostic,
    hex_bytes,
    policy_from_json,
    revocations_from_json,
    state_from_json,
)
from attest.testvectors.license_check import LICENSE_ALGORITHM, LICENSE_FILE, license_groups
from attest.testvectors.location_check import (  # location verification
    LOCATION_ALGORITHM,
    LOCATION_FILE,
    location_groups,
)
from attest.testvectors.message_check import MESSAGE_ALGORITHM, MESSAGE_FILE, message_groups
from attest.testvectors.pod_check import POD_ALGORITHM, POD_FILE, pod_groups  # Fixed Set
from attest.testvectors.reference_check import (
    REFERENCE_ALGORITHM,
    REFERENCE_FILE,
    reference_groups,
)
from attest.testvectors.revocation_check import (
    REVOCATION_ALGORITHM,
    REVOCATION_FILE,
    revocation_groups,
)
from attest.testvectors.session_check import SESSION_ALGORITHM, SESSION_FILE, session_groups
from attest.verify.chain import DeviceChain, TrustAnchors, verify_verifier_cert
from attest.verify.core import appraise
from attest.verify.policy import Policy
from attest.verify.reasons import Tier

EVIDENCE_FILE = "evidence_appraisal.json"
CBOR_FILE = "cbor_decoding.json"
COSE_FILE = "cose_sign1.json"

EVIDENCE_ALGORITHM = "attest-evidence-appraisal"
CBOR_ALGORITHM = "attest-deterministic-cbor"
COSE_ALGORITHM = "attest-cose-sign1"


@dataclass(frozen=True, slots=True)
class FileReport:
    """Outcome of checking one vector file."""

    name: str
    passed: int
    failed: int
    failures: tuple[str, ...]
    #: tests an implementation run with ``--impl`` declared unsupported
    skipped: int = 0


#: Runs one test; returns what is wrong with it (nothing when it passes).
_Run = Callable[[dict[str, Any]], list[str]]
#: A family's built-in checker: (group, test runner) for every group of a parsed file.
Groups = Callable[[dict[str, Any]], Iterator[tuple[dict[str, Any], _Run]]]


@dataclass(frozen=True, slots=True)
class Family:
    """One vector file: its name, its ``algorithm`` and the checker that runs its tests."""

    file: str
    algorithm: str
    groups: Groups


# -- per-family checks ---------------------------------------------------------------------------


def _evidence_test(anchors: TrustAnchors, policy: Policy) -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        ctx = t["context"]
        vcert = verify_verifier_cert(hex_bytes(ctx["verifierCert"]), anchors)
        if vcert is None:
            return ["verifierCert does not chain to the trust anchors"]
        challenge = Challenge.verify(hex_bytes(ctx["challenge"]), vcert.public_key)
        verdict = appraise(
            hex_bytes(t["evidence"]),
            challenge=challenge,
            chain=DeviceChain(hex_bytes(ctx["deviceCert"]), hex_bytes(ctx["manufacturerCert"])),
            state=state_from_json(ctx["priorState"]),
            anchors=anchors,
            revocations=revocations_from_json(ctx["revocations"]),
            policy=policy,
            now_ms=ctx["nowMs"],
        )
        result = "invalid" if verdict.tier is Tier.CONTRAINDICATED else "valid"
        reasons = [r.name for r in verdict.reasons]  # in the order reported (ascending code)
        problems = []
        if result != t["result"]:
            problems.append(f"result {result!r}, expected {t['result']!r}")
        if verdict.tier.name.lower() != t["tier"]:
            problems.append(f"tier {verdict.tier.name.lower()!r}, expected {t['tier']!r}")
        if reasons != t["reasons"]:
            problems.append(f"reasons {reasons}, expected {t['reasons']}")
        if verdict.new_state != state_from_json(t["newState"]):
            problems.append("new state differs from newState")
        return problems

    return run


def _cbor_test() -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        data = hex_bytes(t["input"])
        try:
            value = decode(data)
        except AttestError as exc:
            if t["result"] == "invalid":
                return []
            return [f"rejected ({exc}), expected valid"]
        if t["result"] == "invalid":
            return [f"accepted as {diagnostic(value)}, expected invalid"]
        problems = []
        if diagnostic(value) != t["diagnostic"]:
            problems.append(f"decoded {diagnostic(value)}, expected {t['diagnostic']}")
        if encode(value) != data:
            problems.append("re-encoding differs from the input")
        return problems

    return run


def _cose_test(group: dict[str, Any]) -> _Run:
    key = PublicKey(hex_bytes(group["publicKey"]))

    def run(t: dict[str, Any]) -> list[str]:
        try:
            payload = verify1(hex_bytes(t["token"]), key, t["expectedContentType"])
        except AttestError as exc:
            error = type(exc).__name__
            if t["result"] == "invalid" and error == t["error"]:
                return []
            return [f"raised {error} ({exc}), expected {t['result']} / {t['error']}"]
        if t["result"] != "valid":
            return [f"verified, expected {t['error']}"]
        if payload.hex() != t["payload"]:
            return ["verified, but the payload differs"]
        return []

    return run


def _evidence_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    for g in doc["testGroups"]:
        ta = g["trustAnchors"]
        anchors = TrustAnchors(ta["authorityId"], PublicKey(hex_bytes(ta["authorityKey"])))
        yield g, _evidence_test(anchors, policy_from_json(g["policy"]))


def _cbor_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    for g in doc["testGroups"]:
        yield g, _cbor_test()


def _cose_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    for g in doc["testGroups"]:
        yield g, _cose_test(g)


#: Every vector family, in the order files are generated and reported. A new family (a
#: mechanism's file) is one more line here and one in attest.testvectors.generate.
FAMILIES: tuple[Family, ...] = (
    Family(EVIDENCE_FILE, EVIDENCE_ALGORITHM, _evidence_groups),
    Family(CBOR_FILE, CBOR_ALGORITHM, _cbor_groups),
    Family(COSE_FILE, COSE_ALGORITHM, _cose_groups),
    Family(LICENSE_FILE, LICENSE_ALGORITHM, license_groups),  # Offline Licensing
    Family(POD_FILE, POD_ALGORITHM, pod_groups),  # Fixed Set
    Family(LOCATION_FILE, LOCATION_ALGORITHM, location_groups),  # location verification
    Family(SESSION_FILE, SESSION_ALGORITHM, session_groups),
    Family(AUDIT_FILE, AUDIT_ALGORITHM, audit_groups),
    Family(REVOCATION_FILE, REVOCATION_ALGORITHM, revocation_groups),
    Family(MESSAGE_FILE, MESSAGE_ALGORITHM, message_groups),
    Family(REFERENCE_FILE, REFERENCE_ALGORITHM, reference_groups),  # vendors' reference values
    Family(FEDERATION_FILE, FEDERATION_ALGORITHM, federation_groups),  # federation
)
#: Every file a vector directory must hold, in the order they are generated and reported.
FILES: tuple[str, ...] = tuple(f.file for f in FAMILIES)
_BY_ALGORITHM = {f.algorithm: f for f in FAMILIES}


def _groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    family = _BY_ALGORITHM.get(doc.get("algorithm"))  # type: ignore[arg-type]
    if family is None:
        raise ValueError(f"unknown algorithm {doc.get('algorithm')!r}")
    yield from family.groups(doc)


def check_document(name: str, doc: dict[str, Any]) -> FileReport:
    """Run every test of one parsed vector file; a broken test fails, it never aborts the run."""
    passed, failures = 0, []
    seen: set[int] = set()
    try:
        groups = list(_groups(doc))
    except Exception as exc:  # a broken file is one failure, reported, not a crash
        return FileReport(name, 0, 1, (f"{name}: cannot read test groups: {exc!r}",))
    for group, run in groups:
        for t in group["tests"]:
            tc = t.get("tcId")
            try:
                problems = run(t)
            except Exception as exc:
                problems = [f"error: {exc!r}"]
            if tc in seen:
                problems.append("duplicate tcId")
            seen.add(tc)
            if problems:
                failures.append(f"{name} tcId {tc} ({t.get('comment')}): " + "; ".join(problems))
            else:
                passed += 1
    if doc.get("numberOfTests") != passed + len(failures):
        failures.append(
            f"{name}: numberOfTests is {doc.get('numberOfTests')}, "
            f"the file holds {passed + len(failures)} tests"
        )
    return FileReport(name, passed, len(failures), tuple(failures))


def check_file(path: Path) -> FileReport:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return FileReport(path.name, 0, 1, (f"{path.name}: cannot read: {exc}",))
    return check_document(path.name, doc)


def vector_files(directory: Path) -> list[Path]:
    """The vector files in ``directory``: the expected ones first, then any other ``*.json``.

    Another ``*.json`` counts when it is a JSON object with ``algorithm`` and ``testGroups``
    (a family this build does not know, e.g. a newer mechanism's file).
    """
    directory = Path(directory)
    found = [directory / name for name in FILES if (directory / name).is_file()]
    for path in sorted(directory.glob("*.json")):
        if path.name in FILES:
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "algorithm" in doc and "testGroups" in doc:
            found.append(path)
    return found


def check_dir(directory: Path) -> list[FileReport]:
    """Check every vector file in ``directory``; an expected file that is missing fails."""
    directory = Path(directory)
    present = {p.name: p for p in vector_files(directory)}
    reports = []
    for name in FILES:
        if name in present:
            reports.append(check_file(present[name]))
        else:
            reports.append(FileReport(name, 0, 1, (f"{name}: missing",)))
    reports += [check_file(p) for n, p in present.items() if n not in FILES]
    return reports
