"""The JSON forms of appraisal inputs in the published vectors, read back into objects.

The implementer's side of the vector files (attest.testvectors.check and the per-mechanism
checkers read them; the generators import nothing from here but ``diagnostic``).
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from attest.keys import PublicKey
from attest.messages.attestation import Meters
from attest.messages.reference import FirmwareReference, FirmwareStatus
from attest.messages.revocation import Revocations
from attest.verify.policy import ChipModel, Policy
from attest.verify.state import ChipState, ChipStatus


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


def hex_bytes(text: str) -> bytes:
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
            {parse_version(v): hex_bytes(d) for v, d in p["firmwareMeasurements"].items()}
        ),
        allow_unknown_chips=p["allowUnknownChips"],
        references=MappingProxyType(
            {
                (r["hwmodel"], parse_version(r["version"])): FirmwareReference(
                    r["hwmodel"],
                    parse_version(r["version"]),
                    hex_bytes(r["measurement"]),
                    FirmwareStatus[r["status"].upper()],
                )
                for r in p.get("firmwareReferences", [])
            }
        ),
    )


def state_from_json(s: dict[str, Any] | None) -> ChipState | None:
    if s is None:
        return None
    m = s["meters"]
    return ChipState(
        ueid=hex_bytes(s["ueid"]),
        device_key=PublicKey(hex_bytes(s["deviceKey"])),
        hwmodel=s["hwmodel"],
        bootcount=s["bootcount"],
        attest_counter=s["attestCounter"],
        meters=Meters(m["flops"], m["energyMj"], m["interconnectBytes"]),
        last_challenge_iat=s["lastChallengeIat"],
        last_seen_ms=s["lastSeenMs"],
        last_evidence_digest=hex_bytes(s["lastEvidenceDigest"]),
        status=ChipStatus(s["status"]),
    )


def revocations_from_json(r: dict[str, Any]) -> Revocations:
    return Revocations(
        number=r["number"],
        devices=frozenset(hex_bytes(u) for u in r["devices"]),
        manufacturers=frozenset(r["manufacturers"]),
        verifiers=frozenset(r["verifiers"]),
        pods=frozenset(hex_bytes(p) for p in r["pods"]),
    )
