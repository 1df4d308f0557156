"""Re-verify ``vectors/federation.json`` (committees, COSE_Sign acts, agreements, SPEC B) from
its JSON alone.

Group types: ``CommitteeAct`` (an act against a committee and its threshold for the content
type), ``CommitteeRotation`` (a genesis or rotation descriptor), ``AgreementAcceptance`` (an
agreement for a verifier of a home committee), ``CrossRecognition`` (how a home verifier under
an agreement routes a chip's chain) and ``RelyingParty`` (whether a relying party of the home
authority accepts a node's result). Committees and agreements are given as their payloads
(deterministic CBOR, hex): what a verifier holds after accepting them. Imports nothing from the
generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attest.codec.cbor import decode
from attest.federation.agreement import Agreement, open_agreement
from attest.federation.committee import Committee, open_committee
from attest.federation.route import Federation
from attest.federation.sign import FederationError
from attest.testvectors.format import judged
from attest.verify.chain import DeviceChain, verify_device_chain

FEDERATION_FILE = "federation.json"
FEDERATION_ALGORITHM = "attest-federation"

_Run = Callable[[dict[str, Any]], list[str]]


def _hex(v: str) -> bytes:
    return bytes.fromhex(v)


def committee_of(payload_hex: str) -> Committee:
    return Committee.from_claims(decode(_hex(payload_hex)))


def agreement_of(payload_hex: str) -> Agreement:
    return Agreement.from_claims(decode(_hex(payload_hex)))


def _committees(doc: dict[str, str]) -> dict[str, Committee]:
    return {k: committee_of(v) for k, v in doc.items()}


def _refused(exc: FederationError, **outputs: Any) -> dict[str, Any]:
    return {"result": "invalid", "reason": exc.reason.name, **outputs}


def act(t: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = committee_of(t["committee"]).verify_act(_hex(t["act"]), t["contentType"])
    except FederationError as exc:
        return _refused(exc, payload=None)
    return {"result": "valid", "reason": None, "payload": payload.hex()}


def rotation(t: dict[str, Any]) -> dict[str, Any]:
    current = committee_of(t["current"]) if t["current"] is not None else None
    digest = _hex(t["digest"]) if t["digest"] is not None else None
    try:
        new = open_committee(_hex(t["descriptor"]), current=current, digest=digest)
    except FederationError as exc:
        return _refused(exc, committee=None)
    return {"result": "valid", "reason": None, "committee": new.payload().hex()}


def acceptance(t: dict[str, Any]) -> dict[str, Any]:
    try:
        a = open_agreement(
            _hex(t["agreement"]),
            home=committee_of(t["home"]),
            in_force=agreement_of(t["inForce"]) if t["inForce"] is not None else None,
            highest=t["highest"],
            now_s=t["nowS"],
            committees=_committees(t["committees"]),
        )
    except FederationError as exc:
        return _refused(exc, number=None)
    return {"result": "valid", "reason": None, "number": a.number}


def _federation(t: dict[str, Any]) -> Federation:
    return Federation(
        committee_of(t["home"]), agreement_of(t["agreement"]), _committees(t["committees"])
    )


def cross(t: dict[str, Any]) -> dict[str, Any]:
    chain = DeviceChain(_hex(t["deviceCert"]), _hex(t["manufacturerCert"]))
    route = _federation(t).route(chain, now_s=t["nowS"])
    if route is None:
        return {"route": "home", "authority": None, "reasons": [], "chainValid": None}
    if route.anchors is None:
        names = [r.name for r in route.reasons]
        return {"route": "refused", "authority": None, "reasons": names, "chainValid": None}
    valid = verify_device_chain(chain, route.anchors) is not None
    return {
        "route": "partner",
        "authority": route.anchors.authority_id,
        "reasons": [],
        "chainValid": valid,
    }


def relying(t: dict[str, Any]) -> dict[str, Any]:
    try:
        res, _cert = _federation(t).accept_result(
            _hex(t["resultToken"]), _hex(t["verifierCert"]), now_s=t["nowS"]
        )
    except FederationError as exc:
        return _refused(exc, verifierId=None)
    return {"result": "valid", "reason": None, "verifierId": res.verifier_id}


COMPUTE: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "CommitteeAct": act,
    "CommitteeRotation": rotation,
    "AgreementAcceptance": acceptance,
    "CrossRecognition": cross,
    "RelyingParty": relying,
}


def federation_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a federation vector file."""
    for g in doc["testGroups"]:
        compute = COMPUTE.get(g["type"])
        if compute is None:
            raise ValueError(f"unknown federation group type {g['type']!r}")
        yield g, judged(g, compute)
