"""Re-verify ``vectors/messages.json`` (claim schemas and frame shapes) from its JSON alone.

* ``MessageSchema`` — §4.5 step 6 alone: does a payload satisfy the schema of its message type
  (§6, §13, §14; every bound of the prose, not only what CDDL can say)?
* ``FrameDecode`` — is a frame body a valid session frame (§7.3) or link frame (§14.4)?

Imports nothing from the generator or the test world.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attest.errors import AttestError, RemoteProtocolError
from attest.licensing.messages import Delegation, License
from attest.location.messages import LocationRecord, PingResponse
from attest.messages.attestation import AttestationResult, Challenge, Evidence
from attest.messages.certs import DeviceCert, ManufacturerCert, VerifierCert
from attest.messages.reference import ReferenceValues
from attest.messages.revocation import RevocationList
from attest.messages.schema import SignedMessage
from attest.pods.linkwire import CODEC as LINK_CODEC
from attest.pods.messages import LinkConfirm, LinkResponse, PodCert
from attest.protocol.framing import CODEC as SESSION_CODEC
from attest.store.audit import checkpoint_claims
from attest.testvectors.format import judged

MESSAGE_FILE = "messages.json"
MESSAGE_ALGORITHM = "attest-message-schema"

_Run = Callable[[dict[str, Any]], list[str]]

#: message type name (as in SPEC §4.4) -> its class
MESSAGE_TYPES: dict[str, type[SignedMessage]] = {
    "ManufacturerCert": ManufacturerCert,
    "DeviceCert": DeviceCert,
    "VerifierCert": VerifierCert,
    "RevocationList": RevocationList,
    "Challenge": Challenge,
    "Evidence": Evidence,
    "AttestationResult": AttestationResult,
    "Delegation": Delegation,
    "License": License,
    "PodCert": PodCert,
    "LinkResponse": LinkResponse,
    "LinkConfirm": LinkConfirm,
    "ReferenceValues": ReferenceValues,
    "PingResponse": PingResponse,  # location verification
    "LocationRecord": LocationRecord,
}
#: every message type, including the one the store parses itself
MESSAGE_NAMES = (*MESSAGE_TYPES, "AuditCheckpoint")


def check_payload(message_type: str, payload: bytes) -> None:
    """Raise AttestError unless ``payload`` is a valid claims map of ``message_type``."""
    if message_type == "AuditCheckpoint":
        checkpoint_claims(payload)
    else:
        MESSAGE_TYPES[message_type].from_payload(payload)


def _schema(t: dict[str, Any]) -> dict[str, Any]:
    try:
        check_payload(t["messageType"], bytes.fromhex(t["payload"]))
    except (AttestError, ValueError):
        return {"result": "invalid"}
    return {"result": "valid"}


_CODECS = {"session": SESSION_CODEC, "link": LINK_CODEC}


def _frame(t: dict[str, Any]) -> dict[str, Any]:
    codec = _CODECS[t["protocol"]]
    try:
        event = codec.decode(bytes.fromhex(t["body"]))
    except RemoteProtocolError:
        return {"result": "invalid", "frame": None}
    return {"result": "valid", "frame": codec.name_of(type(event))}


def message_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a message vector file."""
    for g in doc["testGroups"]:
        kind = g["type"]
        if kind == "MessageSchema":
            yield g, judged(g, _schema)
        elif kind == "FrameDecode":
            yield g, judged(g, _frame)
        else:
            raise ValueError(f"unknown message group type {kind!r}")
