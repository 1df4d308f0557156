"""Re-verify ``vectors/reference_values.json`` (vendors' reference values, SPEC §6.10, §8.1).

``ReferenceValuesOpen``: a verifier with the group's trust anchors, at ``nowS``, holding document
number ``heldNumber`` of the token's manufacturer (or none), opens a ReferenceValues token: it
gets the document or a refusal name of §6.10. ``ReferenceValuesFold``: a verifier whose
configured models are ``configuredModels`` folds a set of documents into its policy (§8.1): it
gets the resulting models, firmware references and referenced models, or the number of the rule
that refused the set. Imports nothing from the generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from attest.hardware import ChipModel
from attest.keys import PublicKey
from attest.messages.reference import FirmwareReference, ReferenceValues
from attest.testvectors.format import judged
from attest.verify.chain import TrustAnchors
from attest.verify.policy import Policy
from attest.verify.references import (
    ReferenceSetRefused,
    ReferenceValuesRefused,
    fold_reference_values,
    open_reference_values,
)

REFERENCE_FILE = "reference_values.json"
REFERENCE_ALGORITHM = "attest-reference-values"

_Run = Callable[[dict[str, Any]], list[str]]


def version_text(version: tuple[int, ...]) -> str:
    """A version as the vectors write it: its integer parts joined by dots (no leading zeros)."""
    return ".".join(str(p) for p in version)


def model_json(m: ChipModel) -> dict[str, Any]:
    """A chip model's limits, in the member names of the appraisal policy (SPEC §15.3)."""
    return {
        "peakFlopsPerS": m.peak_flops_per_s,
        "peakPowerMw": m.peak_power_mw,
        "peakInterconnectBytesPerS": m.peak_interconnect_bytes_per_s,
        "maxPodSize": m.max_pod_size,
    }


def models_from_json(models: Mapping[str, Any]) -> dict[str, ChipModel]:
    return {
        name: ChipModel(
            name,
            m["peakFlopsPerS"],
            m["peakPowerMw"],
            m["peakInterconnectBytesPerS"],
            m["maxPodSize"],
        )
        for name, m in models.items()
    }


def reference_json(r: FirmwareReference) -> dict[str, Any]:
    return {
        "hwmodel": r.hwmodel,
        "version": version_text(r.version),
        "measurement": r.measurement.hex(),
        "status": r.status.name.lower(),
    }


def document_json(doc: ReferenceValues) -> dict[str, Any]:
    """What a verifier learns from an opened document, in the document's order."""
    return {
        "issuer": doc.issuer,
        "issuedAt": doc.issued_at,
        "number": doc.number,
        "models": [{"name": m.name, **model_json(m)} for m in doc.models],
        "firmware": [reference_json(r) for r in doc.firmware],
    }


def folded_json(policy: Policy) -> dict[str, Any]:
    """The inputs a fold derives: models by name, references by (model, version), referenced."""
    return {
        "models": {name: model_json(m) for name, m in policy.models.items()},
        "firmwareReferences": [reference_json(r) for _, r in sorted(policy.references.items())],
        "referencedModels": sorted(policy.referenced_models),
    }


def _anchors(group: dict[str, Any]) -> TrustAnchors:
    ta = group["trustAnchors"]
    return TrustAnchors(ta["authorityId"], PublicKey(bytes.fromhex(ta["authorityKey"])))


def _open(group: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    anchors = _anchors(group)

    def compute(t: dict[str, Any]) -> dict[str, Any]:
        try:
            doc = open_reference_values(
                bytes.fromhex(t["token"]), anchors, now_s=t["nowS"], held_number=t["heldNumber"]
            )
        except ReferenceValuesRefused as exc:
            return {"result": "invalid", "refusal": str(exc.refusal), "document": None}
        return {"result": "valid", "refusal": None, "document": document_json(doc)}

    return compute


def _fold(group: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    anchors = _anchors(group)

    def compute(t: dict[str, Any]) -> dict[str, Any]:
        configured = Policy(models=MappingProxyType(models_from_json(t["configuredModels"])))
        tokens = [bytes.fromhex(d) for d in t["documents"]]
        try:
            policy = fold_reference_values(configured, tokens, anchors, now_s=group["nowS"])
        except ReferenceSetRefused as exc:
            none = {"models": None, "firmwareReferences": None, "referencedModels": None}
            return {"result": "invalid", "refusedRule": exc.rule, **none}
        return {"result": "valid", "refusedRule": None, **folded_json(policy)}

    return compute


_GROUPS = {"ReferenceValuesOpen": _open, "ReferenceValuesFold": _fold}


def reference_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a reference-values vector file."""
    for g in doc["testGroups"]:
        make = _GROUPS.get(g["type"])
        if make is None:
            raise ValueError(f"unknown reference-values group type {g['type']!r}")
        yield g, judged(g, make(g))
