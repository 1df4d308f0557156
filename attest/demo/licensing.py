"""The demo's Offline Licensing section: throttled chips, renewals through the nodes, attacks.

Story: each region gets licensing chips that ship throttled (1 % of peak). They attest to their
regional node, which answers an affirming attestation with a license from its delegated quota;
the chips run at full speed, exhaust the small budget, throttle, and get the next license in the
next round. Singapore's quota is small, so its chips end throttled once it is spent. Meanwhile
six license attacks run against the Kuala Lumpur node and its chips: each must be refused by
the chip with its reason and, where the verifier can see it, flagged with its reason code.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

from attest.chip.adversary import CompromisedChip
from attest.chip.device import Chip
from attest.chip.runner import GrantOutcome, Workload, attest
from attest.demo.sections import SectionResult
from attest.demo.world import LICENSE_QUOTA_FLOPS, RunningNode, World
from attest.errors import ChipRefusal
from attest.keys import SigningKey
from attest.licensing.authority import sign_license
from attest.licensing.chip import ChipLicensing, LicenseRefusal, LicensingChip
from attest.licensing.issuer import LicenseIssuer, RenewalOutcome
from attest.licensing.messages import Budgets, LicenseGrant, LicenseState, license_state_of
from attest.licensing.reasons import LicenseReason
from attest.licensing.verifier import LicensingVerifier
from attest.messages.attestation import AttestationResult, Challenge
from attest.verify.reasons import Tier, reason_name

#: licensing chips per region: (hwmodel, pod class)
CHIPS: tuple[tuple[str, int], ...] = (("HX100", 8), ("HX100", 8), ("HX800", 64))
ROUNDS = 6
#: longer than a budget lasts at full speed (0.1 s on an HX100), so chips exhaust every round
INTERVAL_S = 0.25
SHARE = 1.0


@dataclass
class _Track:
    """What one licensing chip went through."""

    chip: Chip
    node: RunningNode
    baseline_share: float = 0.0
    started_throttled: bool = False
    applied: int = 0
    refused: list[str] = field(default_factory=list)
    exhaustions: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    error: str | None = None


def _licensing_chip(
    world: World,
    hwmodel: str,
    pod_class: int,
    cls: type[Chip] = Chip,
    made: list[Chip] | None = None,
) -> Chip:
    chip = world.fabricate(hwmodel, pod_class, chip_class=cls, parts={"licensing": ChipLicensing()})
    if made is not None:
        made.append(chip)
    return chip


def _issuer(node: RunningNode) -> LicenseIssuer:
    part = node.node.service.part(LicensingVerifier)
    assert part is not None, "demo nodes issue licenses"
    return part.issuer


def _lic(chip: Chip) -> LicensingChip:
    return chip.part(LicensingChip)


async def _honest(track: _Track) -> None:
    chip = track.chip
    # Before any license: a second of full demand runs at the baseline only.
    before = chip.meters.flops
    track.started_throttled = _lic(chip).throttled
    chip.run_workload(1.0, SHARE)
    track.baseline_share = (chip.meters.flops - before) / chip.model.peak_flops_per_s

    def on_result(result: AttestationResult) -> None:
        track.verdicts[Tier(result.status).name.lower()] += 1
        if _lic(chip).state.serial > 0 and _lic(chip).throttled:
            track.exhaustions += 1  # ran out between rounds; the next license comes with this

    def on_grant(outcome: GrantOutcome) -> None:
        if outcome.refusal is None:
            track.applied += 1
        else:
            track.refused.append(outcome.refusal)

    try:
        await attest(
            chip,
            "127.0.0.1",
            track.node.port,
            rounds=ROUNDS,
            interval_s=INTERVAL_S,
            workload=Workload(share=SHARE),
            on_result=on_result,
            on_grant=on_grant,
        )
    except Exception as exc:
        track.error = f"licensing chip {chip.ueid.hex()[:12]}: {exc!r}"


# -- attacks --------------------------------------------------------
@dataclass
class _Attack:
    name: str
    chip_reason: str
    verifier_reason: str
    description: str


ATTACKS = (
    _Attack(
        "license-replay",
        LicenseRefusal.LICENSE_REPLAYED,
        LicenseReason.LICENSE_BUDGET_EXCEEDS_ISSUED.name,
        "the applied license delivered again; a tampered chip adds it twice",
    ),
    _Attack(
        "license-other-chip",
        LicenseRefusal.LICENSE_WRONG_CHIP,
        LicenseReason.LICENSE_SERIAL_UNKNOWN.name,
        "a license issued to chip A given to chip B",
    ),
    _Attack(
        "license-forged",
        LicenseRefusal.LICENSE_SIGNATURE_INVALID,
        LicenseReason.LICENSE_SERIAL_UNKNOWN.name,
        "a license signed with a key that is not the authority's",
    ),
    _Attack(
        "license-serial-out-of-order",
        LicenseRefusal.LICENSE_SERIAL_OUT_OF_ORDER,
        LicenseReason.LICENSE_SERIAL_ROLLBACK.name,
        "an older license after a newer one; a tampered chip rolls back to it",
    ),
    _Attack(
        "license-expired",
        LicenseRefusal.LICENSE_EXPIRED,
        LicenseReason.LICENSE_EXPIRY_IGNORED.name,
        "a license past its chip-time expiry; a tampered chip keeps using one",
    ),
    _Attack(
        "license-over-quota",
        LicenseRefusal.LICENSE_QUOTA_EXCEEDED,
        RenewalOutcome.QUOTA_EXCEEDED.name,
        "a budget beyond the region's quota, signed by the node's key / asked of the node",
    ),
)


async def _licensed(chip: Chip, node: RunningNode, rounds: int) -> list[LicenseGrant]:
    """Attest ``rounds`` times at full demand; return the licence grants the chip applied."""
    grants: list[LicenseGrant] = []

    def taken(o: GrantOutcome) -> None:
        if o.refusal is None:
            grants.append(LicenseGrant(o.grant.token, o.grant.companion))  # as the chip read it

    await attest(
        chip,
        "127.0.0.1",
        node.port,
        rounds=rounds,
        interval_s=INTERVAL_S,
        workload=Workload(share=SHARE),
        on_grant=taken,
    )
    return grants


async def _claim(chip: CompromisedChip, node: RunningNode, **state: int) -> AttestationResult:
    """One session in which the tampered chip reports a license state of its choosing."""

    def forged(c: Chip, challenge: Challenge, now: float) -> bytes:
        assert isinstance(c, CompromisedChip)
        c.attest_counter += 1
        honest = c.current_evidence(challenge, now)
        reported = license_state_of(honest)
        assert reported is not None
        return c.sign_arbitrary_evidence(
            honest.with_claims(license_state=replace(reported, **state))
        )

    results = await attest(chip, "127.0.0.1", node.port, make_evidence=forged)
    return results[-1]


def _refusal(chip: Chip, grant: LicenseGrant) -> str | None:
    try:
        _lic(chip).apply_license(grant, time.time())
    except ChipRefusal as exc:
        return exc.reason
    return None


async def _run_attack(
    attack: _Attack, world: World, node: RunningNode, made: list[Chip]
) -> dict[str, Any]:
    """Play one attack against ``node``; every chip it makes is appended to ``made``."""
    budget = _issuer(node).policy.budgets.flops
    refusal: str | None = None
    verdict: AttestationResult | None = None
    flagged: list[str] = []
    if attack.name == "license-replay":
        chip = _licensing_chip(world, "HX100", 8, CompromisedChip, made)
        (grant,) = await _licensed(chip, node, 1)
        refusal = _refusal(chip, grant)
        state = _lic(chip).license_state()
        assert isinstance(chip, CompromisedChip)
        verdict = await _claim(chip, node, remaining_flops=state.remaining_flops + budget)
    elif attack.name == "license-other-chip":
        owner = _licensing_chip(world, "HX100", 8, Chip, made)
        (grant,) = await _licensed(owner, node, 1)
        thief = _licensing_chip(world, "HX100", 8, CompromisedChip, made)
        refusal = _refusal(thief, grant)
        assert isinstance(thief, CompromisedChip)
        verdict = await _claim(thief, node, serial=1, remaining_flops=budget)
    elif attack.name == "license-forged":
        chip = _licensing_chip(world, "HX100", 8, CompromisedChip, made)
        forged = sign_license(
            SigningKey.generate(),
            issuer=world.authority.authority_id,
            ueid=chip.ueid,
            serial=7,
            budgets=Budgets(10**18),
            expiry_s=chip.chip_time_s + 10**6,
            now_s=int(time.time()),
        )
        refusal = _refusal(chip, LicenseGrant(forged))
        assert isinstance(chip, CompromisedChip)
        verdict = await _claim(chip, node, serial=7, remaining_flops=10**18)
    elif attack.name == "license-serial-out-of-order":
        chip = _licensing_chip(world, "HX100", 8, CompromisedChip, made)
        grants = await _licensed(chip, node, 3)  # serials 1, 2 (and 3), each applied
        refusal = _refusal(chip, grants[0])
        assert isinstance(chip, CompromisedChip)
        verdict = await _claim(chip, node, serial=1, remaining_flops=0)
    elif attack.name == "license-expired":
        chip = _licensing_chip(world, "HX100", 8, CompromisedChip, made)
        stale = sign_license(
            world.authority.key,
            issuer=world.authority.authority_id,
            ueid=chip.ueid,
            serial=1000,
            budgets=Budgets(budget),
            expiry_s=chip.chip_time_s,  # already over in the chip's own time
            now_s=int(time.time()),
        )
        refusal = _refusal(chip, LicenseGrant(stale))
        await _licensed(chip, node, 1)  # a real license, expiring at chip time + validity
        assert isinstance(chip, CompromisedChip)
        verdict = await _claim(chip, node, chip_time_s=_lic(chip).state.expiry_s + 60)
    elif attack.name == "license-over-quota":
        issuer = _issuer(node)
        chip = _licensing_chip(world, "HX100", 8, Chip, made)
        over = Budgets(LICENSE_QUOTA_FLOPS[node.identity.region] + 1)
        rogue = sign_license(  # the node's own key, under its delegation, beyond the quota
            node.identity.key,
            issuer=node.identity.verifier_id,
            ueid=chip.ueid,
            serial=1,
            budgets=over,
            expiry_s=chip.chip_time_s + 3600,
            now_s=int(time.time()),
            delegation_id=issuer.delegation.delegation_id,
        )
        refusal = _refusal(chip, LicenseGrant(rogue, issuer.delegation_token))
        # the node itself, configured with a budget beyond its quota, refuses to issue it
        greedy = LicenseIssuer(
            identity=node.identity,
            anchors=world.authority.anchors,
            delegation_token=issuer.delegation_token,
            ledger=issuer.ledger,
            policy=replace(issuer.policy, budgets=over),
        )
        renewal = await trio.to_thread.run_sync(
            lambda: greedy.renew(
                ueid=chip.ueid,
                tier=Tier.AFFIRMING,
                state=LicenseState(0, 0, chip.chip_time_s),
                view=issuer.view(chip.ueid),
                now_ms=time.time_ns() // 1_000_000,
            )
        )
        flagged = [renewal.outcome.name]
    if verdict is not None:
        flagged = [reason_name(r) for r in verdict.reasons]
    detected = refusal == attack.chip_reason and attack.verifier_reason in flagged
    if verdict is not None:
        detected &= verdict.status == Tier.CONTRAINDICATED
    return {
        "name": attack.name,
        "expected_reason": attack.chip_reason,
        "detected": detected,
        "node": node.identity.verifier_id,
        "verdict": Tier(verdict.status).name.lower() if verdict is not None else "not issued",
        "reasons": [f"chip: {refusal}", *(f"verifier: {r}" for r in flagged)],
        "chip_refusal": refusal,
        "verifier_expected": attack.verifier_reason,
        "verifier_flagged": flagged,
        "description": attack.description,
    }


# -- the section --------------------------------------------------------
class LicensingSection:
    name = "licensing"

    async def run(self, world: World, nodes: list[RunningNode]) -> SectionResult:
        tracks = [
            _Track(_licensing_chip(world, hwmodel, pod_class), node)
            for node in nodes
            for hwmodel, pod_class in CHIPS
        ]
        attacks: list[dict[str, Any]] = []
        attack_chips: list[Chip] = []  # all on nodes[0]

        async def attack(a: _Attack) -> None:
            try:
                attacks.append(await _run_attack(a, world, nodes[0], attack_chips))
            except Exception as exc:
                attacks.append(
                    {
                        "name": a.name,
                        "expected_reason": a.chip_reason,
                        "detected": False,
                        "node": nodes[0].identity.verifier_id,
                        "error": repr(exc),
                    }
                )

        async with trio.open_nursery() as nursery:
            for t in tracks:
                nursery.start_soon(_honest, t)
            for a in ATTACKS:
                nursery.start_soon(attack, a)
        attacks.sort(key=lambda e: [a.name for a in ATTACKS].index(e["name"]))
        return self._summarise(tracks, nodes, attacks, {nodes[0].identity.region: attack_chips})

    def _summarise(
        self,
        tracks: list[_Track],
        nodes: list[RunningNode],
        attacks: list[dict[str, Any]],
        attack_chips: dict[str, list[Chip]],
    ) -> SectionResult:
        result = SectionResult(attacks=attacks)
        regions: dict[str, Any] = {}
        for node in nodes:
            issuer = _issuer(node)
            status = issuer.ledger.region_status(issuer.region)
            mine = [t.chip for t in tracks if t.node is node]
            used = sum(_used(c) for c in mine + attack_chips.get(issuer.region, []))
            regions[issuer.region] = {
                "verifier_id": node.identity.verifier_id,
                "quota_flops": issuer.delegation.quota.flops,
                "flops_issued": status.issued[0],
                "flops_used": used,
                "licenses_issued": status.licenses,
                "renewals": {o.value: n for o, n in sorted(issuer.outcomes.items())},
            }
            if status.issued[0] > issuer.delegation.quota.flops:
                result.errors.append(f"licensing: region {issuer.region} issued beyond quota")
        for t in tracks:
            result.verdicts.update(t.verdicts)
            problems = []
            if t.error:
                problems.append(t.error)
            if not t.started_throttled or abs(t.baseline_share - 0.01) > 1e-6:
                problems.append("did not start throttled at the 1 % baseline")
            if t.applied < 1 or t.refused:
                problems.append(f"applied {t.applied} licenses, refused {t.refused}")
            if t.verdicts.get("affirming", 0) != ROUNDS:
                problems.append(f"verdicts {dict(t.verdicts)}")
            if _used(t.chip) > _lic(t.chip).state.applied[0]:
                problems.append("used more budget than it was given")
            result.errors += [f"licensing chip {t.chip.ueid.hex()[:12]}: {p}" for p in problems]
        renewed = [t for t in tracks if t.applied >= 2 and t.exhaustions >= 1]
        if not renewed:
            result.errors.append("licensing: no chip exhausted its budget and renewed")
        result.ok = not result.errors
        result.summary = {
            "regions": regions,
            "licenses_issued": sum(r["licenses_issued"] for r in regions.values()),
            "flops_issued": sum(r["flops_issued"] for r in regions.values()),
            "flops_used": sum(r["flops_used"] for r in regions.values()),
            "chips": len(tracks),
            "chips_started_throttled": sum(t.started_throttled for t in tracks),
            "baseline_share": round(min(t.baseline_share for t in tracks), 6),
            "licenses_applied": sum(t.applied for t in tracks),
            "exhaustions": sum(t.exhaustions for t in tracks),
            "chips_renewed_after_exhaustion": len(renewed),
            "chips_throttled": sum(_lic(t.chip).throttled for t in tracks),
        }
        return result

    def render(self, console: Console, result: SectionResult) -> None:
        s = result.summary
        if not s:
            return
        table = Table(title="offline licensing")
        for col in ("region", "node", "quota FLOPs", "issued", "used", "licenses", "renewals"):
            table.add_column(col)
        for region, r in s["regions"].items():
            table.add_row(
                region,
                r["verifier_id"],
                f"{r['quota_flops']:.3g}",
                f"{r['flops_issued']:.3g}",
                f"{r['flops_used']:.3g}",
                str(r["licenses_issued"]),
                ", ".join(f"{k} {v}" for k, v in r["renewals"].items() if k not in _QUIET_OUTCOMES),
            )
        console.print(table)
        console.print(
            f"licensing chips: {s['chips']} started throttled at "
            f"{s['baseline_share'] * 100:g} % ({s['chips_started_throttled']}), "
            f"{s['licenses_applied']} licenses applied, {s['exhaustions']} exhaustions, "
            f"{s['chips_renewed_after_exhaustion']} renewed after exhausting, "
            f"{s['chips_throttled']} throttled now"
        )


#: renewal outcomes left out of the table (sessions of chips without licensing, not yet due)
_QUIET_OUTCOMES = frozenset({RenewalOutcome.NO_LICENSE_STATE.value, RenewalOutcome.NOT_DUE.value})


def _used(chip: Chip) -> int:
    """Budget a chip has consumed: everything applied minus what is left (expired counts used)."""
    lic = _lic(chip).state
    return lic.applied[0] - lic.remaining_flops(chip.chip_time_s)


SECTION = LicensingSection()
