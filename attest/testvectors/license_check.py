"""Re-verify ``vectors/license.json`` (Offline Licensing) from its JSON alone.

Like :mod:`attest.testvectors.check`, this imports nothing from the generator or the test world:
it rebuilds the chip's license state, the ledger view, the renewal policy and the quotas from the
JSON and runs the implementation. Four groups:

* ``LicenseAcceptance`` — the chip's acceptance checks (refusal names) and the state after apply;
* ``LicenseStateAppraisal`` — §9 with a ledger view: reason codes 100-103;
* ``LicenseRenewal`` — the verifier's pure renewal decision;
* ``LicenseQuota`` — the quota arithmetic of the issuing transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attest.errors import ChipRefusal
from attest.keys import PublicKey
from attest.licensing.checks import IssuedLicense, LedgerView
from attest.licensing.chip import (
    ChipLicensing,
    DelegationUse,
    accept,
    apply_pending,
    check_license,
)
from attest.licensing.issuer import LicensingPolicy, plan_renewal
from attest.licensing.messages import Budgets, LicenseGrant, LicenseState
from attest.licensing.quota import charged, exceeded_meter
from attest.licensing.verifier import appraise_with_ledger
from attest.messages.attestation import Challenge
from attest.testvectors.inputs import policy_from_json, revocations_from_json, state_from_json
from attest.verify.chain import DeviceChain, TrustAnchors, verify_verifier_cert
from attest.verify.reasons import Tier

LICENSE_FILE = "license.json"
LICENSE_ALGORITHM = "attest-license"

_Run = Callable[[dict[str, Any]], list[str]]


def _hex(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


# -- JSON <-> objects (the JSON names are the file format; see SPEC) -----------------------------
def budgets_json(b: Budgets) -> dict[str, int | None]:
    return {"flops": b.flops, "energyMj": b.energy_mj, "interconnectBytes": b.interconnect_bytes}


def budgets_from_json(d: dict[str, Any]) -> Budgets:
    return Budgets(d["flops"], d["energyMj"], d["interconnectBytes"])


def _triple(d: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (d["flops"], d["energyMj"], d["interconnectBytes"])


def _triple_json(t: tuple[Any, ...]) -> dict[str, Any]:
    return {"flops": t[0], "energyMj": t[1], "interconnectBytes": t[2]}


def licensing_json(s: ChipLicensing) -> dict[str, Any]:
    """A chip's licensing state (no pending license: vectors show states between licenses)."""
    return {
        "baselinePpm": s.baseline_ppm,
        "serial": s.serial,
        "remaining": budgets_json(s.remaining),
        "expiryS": s.expiry_s,
        "applied": _triple_json(s.applied),
        "delegations": [
            {
                "delegationId": d.delegation_id,
                "expiresAt": d.expires_at,
                "used": _triple_json(d.used),
            }
            for d in s.delegations
        ],
        "revocationsNumber": s.revocations_number,
        "revokedDelegations": sorted(s.revoked_delegations),
        "requestNonce": None if s.request_nonce is None else s.request_nonce.hex(),
    }


def licensing_from_json(d: dict[str, Any]) -> ChipLicensing:
    return ChipLicensing(
        baseline_ppm=d["baselinePpm"],
        serial=d["serial"],
        remaining=budgets_from_json(d["remaining"]),
        expiry_s=d["expiryS"],
        applied=_triple(d["applied"]),
        delegations=tuple(
            DelegationUse(x["delegationId"], x["expiresAt"], _triple(x["used"]))
            for x in d["delegations"]
        ),
        revocations_number=d["revocationsNumber"],
        revoked_delegations=frozenset(d["revokedDelegations"]),
        request_nonce=_hex(d["requestNonce"]),
    )


def ledger_json(v: LedgerView | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "issued": [
            {"serial": i.serial, "budgetFlops": i.budget_flops, "expiryS": i.expiry_s}
            for i in sorted(v.issued.values(), key=lambda i: i.serial)
        ],
        "reportedSerial": v.reported_serial,
    }


def ledger_from_json(d: dict[str, Any] | None) -> LedgerView | None:
    if d is None:
        return None
    return LedgerView.of(
        (IssuedLicense(i["serial"], i["budgetFlops"], i["expiryS"]) for i in d["issued"]),
        d["reportedSerial"],
    )


def license_state_json(s: LicenseState | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"serial": s.serial, "remainingFlops": s.remaining_flops, "chipTimeS": s.chip_time_s}


def license_state_from_json(d: dict[str, Any] | None) -> LicenseState | None:
    if d is None:
        return None
    return LicenseState(d["serial"], d["remainingFlops"], d["chipTimeS"])


def renewal_policy_json(p: LicensingPolicy) -> dict[str, Any]:
    return {
        "budgets": budgets_json(p.budgets),
        "validityS": p.validity_s,
        "qualifyingTiers": sorted(t.name.lower() for t in p.qualifying_tiers),
        "renewBelow": p.renew_below,
        "minFirmware": ".".join(map(str, p.min_firmware)),
    }


def renewal_policy_from_json(d: dict[str, Any]) -> LicensingPolicy:
    return LicensingPolicy(
        budgets=budgets_from_json(d["budgets"]),
        validity_s=d["validityS"],
        qualifying_tiers=frozenset(Tier[n.upper()] for n in d["qualifyingTiers"]),
        renew_below=d["renewBelow"],
        min_firmware=_version(d["minFirmware"]),
    )


# -- per-group checks --------------------------------------------------------------------------
def _acceptance_test(anchors: TrustAnchors) -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        chip = t["chip"]
        state = licensing_from_json(chip["license"])
        grant = LicenseGrant(bytes.fromhex(t["license"]), _hex(t["delegation"]))
        try:
            lic, delegation = check_license(
                state,
                grant,
                anchors=anchors,
                ueid=bytes.fromhex(chip["ueid"]),
                firmware=_version(chip["firmware"]),
                chip_time_s=chip["chipTimeS"],
                now_s=chip["nowS"],
                session_nonce=_hex(chip["sessionNonce"]),
            )
        except ChipRefusal as exc:
            if t["result"] == "invalid" and exc.reason == t["refusal"]:
                return []
            return [f"refused {exc.reason}, expected {t['result']} / {t['refusal']}"]
        if t["result"] != "valid":
            return [f"accepted, expected refusal {t['refusal']}"]
        after = apply_pending(accept(state, lic, delegation, now_s=chip["nowS"]), chip["chipTimeS"])
        if licensing_json(after) != t["after"]:
            return ["license state after applying differs from 'after'"]
        return []

    return run


def _appraisal_test(anchors: TrustAnchors, group: dict[str, Any]) -> _Run:
    policy = policy_from_json(group["policy"])

    def run(t: dict[str, Any]) -> list[str]:
        ctx = t["context"]
        vcert = verify_verifier_cert(bytes.fromhex(ctx["verifierCert"]), anchors)
        if vcert is None:
            return ["verifierCert does not chain to the trust anchors"]
        challenge = Challenge.verify(bytes.fromhex(ctx["challenge"]), vcert.public_key)
        verdict = appraise_with_ledger(
            bytes.fromhex(t["evidence"]),
            challenge=challenge,
            chain=DeviceChain(
                bytes.fromhex(ctx["deviceCert"]), bytes.fromhex(ctx["manufacturerCert"])
            ),
            state=state_from_json(ctx["priorState"]),
            anchors=anchors,
            revocations=revocations_from_json(ctx["revocations"]),
            policy=policy,
            now_ms=ctx["nowMs"],
            ledger=ledger_from_json(ctx["ledger"]),
        ).verdict
        problems = []
        result = "invalid" if verdict.tier is Tier.CONTRAINDICATED else "valid"
        if result != t["result"]:
            problems.append(f"result {result!r}, expected {t['result']!r}")
        if verdict.tier.name.lower() != t["tier"]:
            problems.append(f"tier {verdict.tier.name.lower()!r}, expected {t['tier']!r}")
        reasons = [r.name for r in verdict.reasons]  # in the order reported
        if reasons != t["reasons"]:
            problems.append(f"reasons {reasons}, expected {t['reasons']}")
        return problems

    return run


def _renewal_test(group: dict[str, Any]) -> _Run:
    policy = renewal_policy_from_json(group["policy"])

    def run(t: dict[str, Any]) -> list[str]:
        plan = plan_renewal(
            tier=Tier[t["tier"].upper()],
            state=license_state_from_json(t["licenseState"]),
            view=ledger_from_json(t["ledger"]) or LedgerView(),
            policy=policy,
        )
        got = {"outcome": plan.outcome.name, "serial": plan.serial, "expiryS": plan.expiry_s}
        want = {k: t[k] for k in ("outcome", "serial", "expiryS")}
        return [] if got == want else [f"plan {got}, expected {want}"]

    return run


def _quota_test() -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        issued, budget, limit = (_triple(t[k]) for k in ("issued", "budget", "quota"))
        meter = exceeded_meter(issued, budget, limit)
        if meter is not None:
            if t["result"] == "invalid" and meter == t["meter"]:
                return []
            return [f"refused for {meter}, expected {t['result']} / {t['meter']}"]
        if t["result"] != "valid":
            return [f"allowed, expected refusal for {t['meter']}"]
        after = _triple_json(charged(issued, budget))
        return [] if after == t["issuedAfter"] else [f"issued after {after}"]

    return run


def license_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a license vector file."""
    for g in doc["testGroups"]:
        kind = g["type"]
        if kind == "LicenseQuota":
            yield g, _quota_test()
            continue
        if kind == "LicenseRenewal":
            yield g, _renewal_test(g)
            continue
        ta = g["trustAnchors"]
        anchors = TrustAnchors(ta["authorityId"], PublicKey(bytes.fromhex(ta["authorityKey"])))
        if kind == "LicenseAcceptance":
            yield g, _acceptance_test(anchors)
        elif kind == "LicenseStateAppraisal":
            yield g, _appraisal_test(anchors, g)
        else:
            raise ValueError(f"unknown license group type {kind!r}")
