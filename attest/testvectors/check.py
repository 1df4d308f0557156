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
from types import MappingProxyType
from typing import Any

from attest.codec.cbor import decode, encode
from attest.codec.cose import verify1
from attest.errors import AttestError
from attest.keys import PublicKey
from attest.messages.attestation import Challenge, Meters
from attest.messages.revocation import Revocations
from attest.testvectors.license_check import LICENSE_ALGORITHM, LICENSE_FILE, license_groups
from attest.testvectors.pod_check import POD_ALGORITHM, POD_FILE, pod_groups  # Fixed Set
from attest.verify.chain import DeviceChain, TrustAnchors, verify_verifier_cert
from attest.verify.core import appraise
from attest.verify.policy import ChipModel, Policy
from attest.verify.reasons import Tier
from attest.verify.state import ChipState, ChipStatus

EVIDENCE_FILE = "evidence_appraisal.json"
CBOR_FILE = "cbor_decoding.json"
COSE_FILE = "cose_sign1.json"
#: Every file a vector directory must hold, in the order they are generated and reported.
FILES = (EVIDENCE_FILE, CBOR_FILE, COSE_FILE, LICENSE_FILE, POD_FILE)

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


# -- JSON → objects (shared with nothing: this is the implementer's side) --------------------------


def diagnostic(value: Any) -> str:
    """RFC 8949 §8 diagnostic notation of a decoded value of our wire types.

    Used to state the expected value of valid CBOR vectors in a form a reader can check by eye.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is bytes:
        return f"h'{value.hex()}'"
    if type(value) is str:
        return json.dumps(value, ensure_ascii=False)
    if type(value) is list:
        return "[" + ", ".join(diagnostic(v) for v in value) + "]"
    if type(value) is dict:
        return "{" + ", ".join(f"{diagnostic(k)}: {diagnostic(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no diagnostic notation for {type(value).__name__}")


def parse_version(text: str) -> tuple[int, ...]:
    """``"1.2.0"`` → ``(1, 2, 0)``."""
    return tuple(int(p) for p in text.split("."))


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


def policy_from_json(p: dict[str, Any]) -> Policy:
    models = {
        name: ChipModel(
            name,
            m["peakFlopsPerS"],
            m["peakPowerMw"],
            m["peakInterconnectBytesPerS"],
            m["maxPodSize"],
        )
        for name, m in p["models"].items()
    }
    return Policy(
        policy_id=p["policyId"],
        models=MappingProxyType(models),
        min_firmware=parse_version(p["minFirmware"]),
        firmware_measurements=MappingProxyType(
            {parse_version(v): _hex(d) for v, d in p["firmwareMeasurements"].items()}
        ),
        allow_unknown_chips=p["allowUnknownChips"],
    )


def state_from_json(s: dict[str, Any] | None) -> ChipState | None:
    if s is None:
        return None
    m = s["meters"]
    return ChipState(
        ueid=_hex(s["ueid"]),
        device_key=PublicKey(_hex(s["deviceKey"])),
        hwmodel=s["hwmodel"],
        bootcount=s["bootcount"],
        attest_counter=s["attestCounter"],
        meters=Meters(m["flops"], m["energyMj"], m["interconnectBytes"]),
        last_challenge_iat=s["lastChallengeIat"],
        last_seen_ms=s["lastSeenMs"],
        last_evidence_digest=_hex(s["lastEvidenceDigest"]),
        status=ChipStatus(s["status"]),
    )


def revocations_from_json(r: dict[str, Any]) -> Revocations:
    return Revocations(
        number=r["number"],
        devices=frozenset(_hex(u) for u in r["devices"]),
        manufacturers=frozenset(r["manufacturers"]),
        verifiers=frozenset(r["verifiers"]),
        pods=frozenset(_hex(p) for p in r["pods"]),
    )


#: Runs one test; returns what is wrong with it (nothing when it passes).
_Run = Callable[[dict[str, Any]], list[str]]


# -- per-family checks ---------------------------------------------------------------------------


def _evidence_test(anchors: TrustAnchors, policy: Policy) -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        ctx = t["context"]
        vcert = verify_verifier_cert(_hex(ctx["verifierCert"]), anchors)
        if vcert is None:
            return ["verifierCert does not chain to the trust anchors"]
        challenge = Challenge.verify(_hex(ctx["challenge"]), vcert.public_key)
        verdict = appraise(
            _hex(t["evidence"]),
            challenge=challenge,
            chain=DeviceChain(_hex(ctx["deviceCert"]), _hex(ctx["manufacturerCert"])),
            state=state_from_json(ctx["priorState"]),
            anchors=anchors,
            revocations=revocations_from_json(ctx["revocations"]),
            policy=policy,
            now_ms=ctx["nowMs"],
        )
        result = "invalid" if verdict.tier is Tier.CONTRAINDICATED else "valid"
        reasons = [r.name for r in sorted(verdict.reasons)]
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
        data = _hex(t["input"])
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
    key = PublicKey(_hex(group["publicKey"]))

    def run(t: dict[str, Any]) -> list[str]:
        try:
            payload = verify1(_hex(t["token"]), key, t["expectedContentType"])
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


def _groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    algorithm = doc["algorithm"]
    if algorithm == LICENSE_ALGORITHM:  # Offline Licensing: its own checker
        yield from license_groups(doc)
        return
    if algorithm == POD_ALGORITHM:  # Fixed Set: its own checker
        yield from pod_groups(doc)
        return
    for g in doc["testGroups"]:
        if algorithm == EVIDENCE_ALGORITHM:
            ta = g["trustAnchors"]
            anchors = TrustAnchors(ta["authorityId"], PublicKey(_hex(ta["authorityKey"])))
            yield g, _evidence_test(anchors, policy_from_json(g["policy"]))
        elif algorithm == CBOR_ALGORITHM:
            yield g, _cbor_test()
        elif algorithm == COSE_ALGORITHM:
            yield g, _cose_test(g)
        else:
            raise ValueError(f"unknown algorithm {algorithm!r}")


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


def check_dir(directory: Path) -> list[FileReport]:
    """Check every vector file expected in ``directory`` (a missing file counts as a failure)."""
    return [check_file(Path(directory) / name) for name in FILES]
