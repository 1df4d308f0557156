"""Re-verify ``vectors/revocation.json`` (revocation-list adoption, SPEC §12) from its JSON alone.

``RevocationAdoption``: a holder (a chip's mechanism, or a verifier's store) holding list number
``heldNumber`` is given a list token; it adopts it (the complete list replaces what it held) or
refuses it with REVOCATIONS_INVALID / REVOCATIONS_STALE. Imports nothing from the generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attest.errors import ChipRefusal
from attest.keys import PublicKey
from attest.messages.revocation import RevocationList, verify_newer_list
from attest.testvectors.format import judged

REVOCATION_FILE = "revocation.json"
REVOCATION_ALGORITHM = "attest-revocation-list"

_Run = Callable[[dict[str, Any]], list[str]]


def adopted_json(rl: RevocationList) -> dict[str, Any]:
    """What a holder keeps of an adopted list: its number and each list as a sorted set."""
    return {
        "number": rl.number,
        "devices": sorted({u.hex() for u in rl.devices}),
        "manufacturers": sorted(set(rl.manufacturers)),
        "verifiers": sorted(set(rl.verifiers)),
        "pods": sorted({p.hex() for p in rl.pods}),
        "delegations": sorted(set(rl.delegations or ())),
    }


def _adoption(group: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    ta = group["trustAnchors"]
    authority_id, key = ta["authorityId"], PublicKey(bytes.fromhex(ta["authorityKey"]))

    def compute(t: dict[str, Any]) -> dict[str, Any]:
        try:
            rl = verify_newer_list(bytes.fromhex(t["list"]), authority_id, key, t["heldNumber"])
        except ChipRefusal as exc:
            return {"result": "invalid", "refusal": str(exc.reason), "adopted": None}
        return {"result": "valid", "refusal": None, "adopted": adopted_json(rl)}

    return compute


def revocation_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a revocation vector file."""
    for g in doc["testGroups"]:
        if g["type"] != "RevocationAdoption":
            raise ValueError(f"unknown revocation group type {g['type']!r}")
        yield g, judged(g, _adoption(g))
