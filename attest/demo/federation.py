"""Demo section "federation": four authorities, each a 3-of-5 committee, one 3-of-4 agreement.

Malaysia, Singapore, Thailand and Indonesia are committees of five officer keys of which three
sign every act (SPEC Appendix B). Their agreement (3 of 4 members) lets Malaysia's nodes
appraise chips of Singapore's manufacturer, Singapore's chips answer Malaysia's nodes and take
licences from Malaysia's delegated nodes within a partner quota, and Thai relying parties accept
Malaysian nodes' results. Singapore has rotated its committee (officer 0 out).

The story: a Singapore chip in a Johor data centre attests to the Malaysian node over TCP and
is affirmed (its chain judged by Singapore's committee under the agreement); a Thai relying
party accepts that result, an Indonesian one (no recognition) does not; the chip takes a
roaming licence from the Malaysian node within the partner quota. Then the attacks, each caught
with its reason: a licence of 2 of 5 officers, an amendment of 2 of 4 members, a rolled-back
agreement (at the chip and at a restarted node), a rotated-out officer's signature, a
non-member authority's chip and a partner quota overrun.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

from attest.chip.device import Chip, fabricate
from attest.chip.runner import GrantOutcome, attest
from attest.demo.sections import SectionResult
from attest.demo.world import RunningNode, World
from attest.durable import atomic_write
from attest.errors import ChipRefusal
from attest.federation.agreement import Agreement, Member, Recognition
from attest.federation.chip import FederationChip
from attest.federation.committee import Committee
from attest.federation.route import Federation, anchors_of
from attest.federation.sign import FederationError, sign_multi
from attest.federation.state import load_federation
from attest.federation.verifier import FederationSection
from attest.identity import Manufacturer, VerifierIdentity
from attest.keys import SigningKey
from attest.licensing.chip import ChipLicensing, LicensingChip
from attest.licensing.issuer import RenewalOutcome
from attest.licensing.messages import Budgets, Delegation, License, LicenseGrant
from attest.licensing.verifier import LicensingSection, LicensingVerifier
from attest.messages.attestation import AttestationResult
from attest.messages.certs import ManufacturerCert, VerifierCert
from attest.messages.revocation import Revocations
from attest.node.app import assemble
from attest.node.server import NodeSettings, VerifierNode
from attest.store.sqlite import SqliteStore
from attest.verify.chain import TrustAnchors
from attest.verify.policy import Policy
from attest.verify.reasons import Tier, reason_name

MY, SG, TH, ID = "authority.my", "authority.sg", "authority.th", "authority.id"
#: (authority id, country, name) of the members
MEMBERS: tuple[tuple[str, str, str], ...] = (
    (MY, "MY", "Malaysia"),
    (SG, "SG", "Singapore"),
    (TH, "TH", "Thailand"),
    (ID, "ID", "Indonesia"),
)
#: an authority that signed no agreement
OUTSIDER = "authority.outsider"
NODE_ID = "verifier-jhb-1"
#: FLOPs Malaysia's delegated nodes may license to Singapore's roaming chips (the partner quota)
PARTNER_QUOTA = 3 * 10**14
LICENCE_FLOPS = 2 * 10**14
YEAR_S = 365 * 24 * 3600
HONEST = (1, 2, 3)  # SG officers in both its committees


@dataclass
class _Authority:
    authority_id: str
    country: str
    officers: list[SigningKey]
    committee: Committee

    @classmethod
    def make(cls, authority_id: str, country: str, now: int) -> _Authority:
        keys = [SigningKey.generate() for _ in range(5)]
        committee = Committee.of(authority_id, [k.public_key for k in keys], 3, issued_at=now)
        return cls(authority_id, country, keys, committee)

    @property
    def anchors(self) -> TrustAnchors:
        return anchors_of(self.committee)

    def act(self, content_type: str, payload: bytes, who: Sequence[int] = (0, 1, 2)) -> bytes:
        """An act of this authority signed by the officers ``who`` (each offline, in turn)."""
        return sign_multi(content_type, payload, [self.officers[i] for i in who])

    def manufacturer(self, name: str, now: int, who: Sequence[int] = (0, 1, 2)) -> Manufacturer:
        key = SigningKey.generate()
        cert = ManufacturerCert(self.authority_id, name, now, now + 10 * YEAR_S, key.public_key)
        return Manufacturer(name, key, self.act(cert.CONTENT_TYPE, cert.payload(), who))


class _Reflashed(Chip):
    """A chip of an authority outside the agreement, reflashed to trust the Malaysian node."""

    trusted: TrustAnchors | None = None

    def _verifier_anchors(self, verifier_cert: bytes, now_s: int) -> TrustAnchors:
        return self.trusted or super()._verifier_anchors(verifier_cert, now_s)


@dataclass
class _Run:
    now: int
    workdir: Path
    auth: dict[str, _Authority]
    agreements: dict[int, Agreement] = field(default_factory=dict)
    tokens: dict[int, bytes] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    attacks: list[dict[str, Any]] = field(default_factory=list)
    verdicts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def row(self, scene: str, who: str, judged_by: str, outcome: str, note: str = "") -> None:
        self.rows.append(
            {"scene": scene, "who": who, "judged_by": judged_by, "outcome": outcome, "note": note}
        )

    def attack(
        self, name: str, reason: str, text: str, seen: Sequence[str], at: str, verdict: str
    ) -> None:
        self.attacks.append(
            {
                "name": name,
                "expected_reason": reason,
                "description": text,
                "detected": reason in seen,
                "node": at,
                "verdict": verdict,
                "reasons": list(seen),
            }
        )

    def count(self, result: AttestationResult) -> None:
        tier = Tier(result.status).name.lower()
        self.verdicts[tier] = self.verdicts.get(tier, 0) + 1


def _agreement(run: _Run, number: int, quota: int = PARTNER_QUOTA) -> Agreement:
    members = tuple(Member(a.authority_id, a.committee, (a.country,)) for a in run.auth.values())
    recognitions = (
        Recognition(MY, SG, ("vendor-sg",)),  # MY's nodes appraise vendor-sg's chips
        Recognition(SG, MY, (), results=True, licence_quota=quota),  # SG chips roam in MY
        Recognition(TH, MY, (), results=True),  # Thai relying parties accept MY's results
    )
    return Agreement("compute-south", number, run.now, run.now + YEAR_S, members, 3, recognitions)


def _sign(run: _Run, a: Agreement, members: Sequence[str]) -> bytes:
    """``a`` signed by three officers of each of ``members`` (SG's current ones)."""
    return a.sign(
        [k for m in members for k in run.auth[m].officers[1:4] if m == SG]
        + [k for m in members if m != SG for k in run.auth[m].officers[:3]]
    )


def _fed(chip: Chip) -> FederationChip:
    return next(p for p in chip.parts if isinstance(p, FederationChip))


def _lic(chip: Chip) -> LicensingChip:
    return next(p for p in chip.parts if isinstance(p, LicensingChip))


async def _start_node(
    run: _Run, nursery: trio.Nursery, my: _Authority, rotation: bytes
) -> VerifierNode:
    key = SigningKey.generate()
    cert = VerifierCert(MY, NODE_ID, run.now, run.now + YEAR_S, key.public_key, "MY")
    identity = VerifierIdentity(NODE_ID, "MY", key, my.act(cert.CONTENT_TYPE, cert.payload()))
    files = {
        "committee": my.committee.sign(my.officers[:3]),
        "agreement": run.tokens[2],
        "rotation": rotation,
    }
    # Offline Licensing: 3 of MY's officers delegate a quota to the node
    files["delegation"] = _delegation(my, key.public_key, run.now)
    for name, data in files.items():
        atomic_write(run.workdir / f"federation-{name}.cose", data)
    licensing = LicensingSection(
        enabled=True,
        delegation_file=str(run.workdir / "federation-delegation.cose"),
        budget_flops=LICENCE_FLOPS,
        validity_s=3600,
    )
    section = FederationSection(
        enabled=True,
        agreement_file=str(run.workdir / "federation-agreement.cose"),
        committee_file=str(run.workdir / "federation-committee.cose"),
        rotation_files=str(run.workdir / "federation-rotation.cose"),
        state_file=str(run.workdir / "federation-state.json"),
    )
    store = SqliteStore(
        run.workdir / f"{NODE_ID}.db", verifier_id=NODE_ID, signing_key=key, group_sync=True
    )
    built = assemble(
        identity=identity,
        anchors=my.anchors,
        store=store,
        policy=Policy(),
        revocations=Revocations(),
        sections={"federation": section, "licensing": licensing},
    )
    node = VerifierNode(built.service, NodeSettings(port=0, http_port=-1, group_sync=True))
    await nursery.start(node.run)
    return node


class FederationDemo:
    name = "federation"

    async def run(self, world: World, nodes: list[RunningNode]) -> SectionResult:
        started = time.perf_counter()
        assert world.workdir is not None, "run by attest.demo.scenario.run_demo"
        workdir = world.workdir / "federation"
        workdir.mkdir(parents=True, exist_ok=True)
        now = int(time.time())
        auth = {a: _Authority.make(a, c, now) for a, c, _ in MEMBERS}
        run = _Run(now, workdir, auth)
        async with trio.open_nursery() as nursery:
            await _story(run, nursery)
            nursery.cancel_scope.cancel()
        result = SectionResult(attacks=run.attacks, verdicts=run.verdicts, errors=run.errors)
        result.ok = all(a["detected"] for a in run.attacks) and not run.errors
        result.summary = {
            "authorities": [
                {"authority": a, "country": c, "name": n, "committee": "3 of 5"}
                for a, c, n in MEMBERS
            ],
            "agreement": {"id": "compute-south", "threshold": "3 of 4", "in_force": 2},
            "partner_quota_flops": PARTNER_QUOTA,
            "table": run.rows,
            "seconds": round(time.perf_counter() - started, 2),
        }
        return result

    def render(self, console: Console, result: SectionResult) -> None:
        s = result.summary
        if not s:
            return
        table = Table(
            title="federation: 4 authorities (3-of-5 committees), agreement compute-south "
            "(3 of 4 members)"
        )
        for col in ("scene", "who", "judged by", "outcome", "note"):
            table.add_column(col, overflow="fold")
        for r in s["table"]:
            table.add_row(r["scene"], r["who"], r["judged_by"], r["outcome"], r["note"])
        console.print(table)


SECTION = FederationDemo()


async def _story(run: _Run, nursery: trio.Nursery) -> None:
    my, sg = run.auth[MY], run.auth[SG]
    now = run.now
    # Singapore rotates officer 0 out for a new officer: 3 of its current officers sign
    new_key = SigningKey.generate()
    sg2 = Committee.of(
        SG, [k.public_key for k in [*sg.officers[1:], new_key]], 3, number=2, issued_at=now
    )
    rotation = sg2.sign(sg.officers[1:4])
    for number in (1, 2, 3):
        run.agreements[number] = _agreement(run, number, 10**18 if number == 3 else PARTNER_QUOTA)
    run.tokens[1] = _sign(run, run.agreements[1], [MY, SG, TH, ID])
    run.tokens[2] = _sign(run, run.agreements[2], [MY, SG, TH])
    run.tokens[3] = _sign(run, run.agreements[3], [MY, SG])  # 2 of 4: no amendment
    vendor = sg.manufacturer("vendor-sg", now, HONEST)
    node = await _start_node(run, nursery, my, rotation)
    assert node.address is not None
    port = node.address.port

    # the Singapore chip in Johor takes its authority's agreements, then attests at the node
    chip = fabricate(vendor, sg.anchors, hwmodel="HX100", pod_class=8, now_s=now,
                     parts={"licensing": ChipLicensing()})  # fmt: skip
    chip.boot(now)
    for number in (1, 2):
        _fed(chip).install(run.tokens[number], now_s=now)
    run.row("agreement on the chip", "SG chip", "SG committee #1 (fused) + members",
            "agreement #2 in force", "#1 by 4 of 4, #2 by 3 of 4")  # fmt: skip
    seen: list[tuple[AttestationResult, bytes, bytes]] = []
    grants: list[GrantOutcome] = []
    results = await attest(chip, "127.0.0.1", port, on_grant=grants.append,
                           on_token=lambda r, t, c: seen.append((r, t, c)))  # fmt: skip
    res = results[-1]
    run.count(res)
    ok = res.status == Tier.AFFIRMING
    run.row("SG chip attests in Johor", "vendor-sg HX100 (authority.sg)",
            f"{NODE_ID} (authority.my) by SG committee #2", Tier(res.status).name.lower(),
            f"EAR names {res.chain[0]}, agreement #{res.chain[1]}" if res.chain
            else "EAR names no chain authority")  # fmt: skip
    if not ok or res.chain != (SG, 2):
        run.errors.append(
            f"federation: the Singapore chip was {Tier(res.status).name}, chain {res.chain}"
        )
    _relying_parties(run, seen[-1][1], seen[-1][2])
    await _roaming(run, chip, node, grants)
    _attacks_on_documents(run, chip, my)
    await _attacks_over_tcp(run, port, vendor_sg=lambda w: sg.manufacturer("vendor-sg", now, w))
    node.shutdown()


def _relying_parties(run: _Run, token: bytes, cert: bytes) -> None:
    """A Thai relying party accepts the Malaysian node's result; an Indonesian one does not."""
    agreement = run.agreements[2]
    for aid, label in ((TH, "Thai"), (ID, "Indonesian")):
        party = Federation(run.auth[aid].committee, agreement)
        try:
            res, node_cert = party.accept_result(token, cert, now_s=run.now + 1)
        except FederationError as exc:
            outcome, note = "refused", exc.reason.name
            if aid == TH:
                run.errors.append(f"federation: the Thai relying party refused: {exc}")
        else:
            outcome = f"accepted ({Tier(res.status).name.lower()})"
            note = f"{node_cert.verifier_id} certified by 3 of MY's officers"
            if aid != TH:
                run.errors.append("federation: an Indonesian relying party accepted the result")
        run.row(f"{label} relying party", f"result of {NODE_ID}",
                f"{aid} under agreement #2", outcome, note)  # fmt: skip


def _delegation(my: _Authority, node_key: Any, now: int, who: Sequence[int] = (0, 1, 2)) -> bytes:
    d = Delegation(MY, NODE_ID, now, now + YEAR_S // 4, node_key, "MY", 1, Budgets(10**16))
    return my.act(d.CONTENT_TYPE, d.payload(), who)


def _licence(chip: Chip, key: SigningKey, serial: int, now: int) -> bytes:
    return License(
        issuer=NODE_ID,
        issued_at=now,
        ueid=chip.ueid,
        min_firmware=(1, 1, 0),
        serial=serial,
        budgets=Budgets(LICENCE_FLOPS),
        expiry_s=chip.chip_time_s + 3600,
        delegation_id=1,
    ).sign(key)


async def _roaming(run: _Run, chip: Chip, node: VerifierNode, grants: list[GrantOutcome]) -> None:
    """The Malaysian node licensed the roaming chip in its first session, within the partner
    quota; once the chip spent it, the node renews no more (its ledger holds the partner's
    total), and a second licence pushed to the chip past the quota is refused by the chip too."""
    issuer = node.service.part(LicensingVerifier)
    assert issuer is not None
    taken = [g for g in grants if g.refusal is None]
    issued, count = issuer.ledger.partner_status(SG)
    outcome = f"issued and applied serial {_lic(chip).state.serial}" if taken else "not issued"
    note = f"{issued:.0e} of partner quota {PARTNER_QUOTA:.0e} FLOPs in {count} licence(s)"
    run.row("roaming licence", f"{NODE_ID} -> SG chip", "node ledger + SG chip (quota)",
            outcome, note)  # fmt: skip
    if not taken or issued != LICENCE_FLOPS:
        run.errors.append(f"federation: the roaming licence was not issued ({grants})")
    await trio.sleep(0.3)  # the licence is spent at a rate the node finds plausible
    chip.run_workload(0.25, 1.0)  # (2.5e14 FLOPs in 0.3 s of an HX100's 1e15 FLOP/s peak)
    before = issuer.issuer.outcomes[RenewalOutcome.PARTNER_QUOTA_EXCEEDED]
    res = (await attest(chip, "127.0.0.1", node.address.port if node.address else 0))[-1]
    run.count(res)
    refused = issuer.issuer.outcomes[RenewalOutcome.PARTNER_QUOTA_EXCEEDED] - before
    seen = ["node: partner_quota_exceeded"] if refused else ["node: renewed"]
    key = node.service.identity.key
    delegation = _delegation(run.auth[MY], key.public_key, run.now)
    pushed = LicenseGrant(_licence(chip, key, 2, run.now), delegation)
    try:
        _lic(chip).apply_license(pushed, run.now)
        seen.append("chip: applied")
    except ChipRefusal as exc:
        seen.append(str(exc.reason))
    if not refused:
        seen = [s for s in seen if s.startswith("node")]  # the node must refuse too
    run.attack("federation-partner-quota-overrun", "LICENSE_PARTNER_QUOTA_EXCEEDED",
               f"a second {LICENCE_FLOPS:.0e} FLOPs licence for a SG chip past the "
               f"{PARTNER_QUOTA:.0e} partner quota: the node does not issue it, the chip "
               "refuses one pushed to it", seen, f"{NODE_ID}, SG chip",
               "not renewed; refused")  # fmt: skip


def _attacks_on_documents(run: _Run, chip: Chip, my: _Authority) -> None:
    # a licence of MY's committee signed by only 2 of its 5 officers
    lic = License(issuer=MY, issued_at=run.now, ueid=chip.ueid, min_firmware=(1, 1, 0),
                  serial=9, budgets=Budgets(10**18), expiry_s=chip.chip_time_s + 3600)  # fmt: skip
    token = my.act(lic.CONTENT_TYPE, lic.payload(), (0, 1))
    try:
        my.committee.verify_act(token, lic.CONTENT_TYPE)
        seen = ["accepted"]
    except FederationError as exc:
        seen = [exc.reason.name]
    run.attack("federation-licence-2-of-5", "ACT_TOO_FEW_SIGNATURES",
               "a licence signed by 2 of MY's 5 officers (3 needed)", seen,
               "MY committee", "refused")  # fmt: skip
    # an amendment (raising the partner quota) signed by 2 of the 4 members
    seen = _install(chip, run.tokens[3], run.now)
    run.attack("federation-agreement-2-of-4", "ACT_TOO_FEW_SIGNATURES",
               "amendment #3 (partner quota 1e18) signed by MY and SG only", seen,
               "SG chip", "refused")  # fmt: skip
    # the agreement rolled back to #1: the chip and the restarted node keep #2
    seen = _install(chip, run.tokens[1], run.now)
    loaded = load_federation(
        home=my.committee,
        state_path=run.workdir / "federation-state.json",
        agreement_token=run.tokens[1],
        now_s=run.now,
        judge_home=True,
    )
    kept = loaded.federation.agreement.number
    seen += [r.split(":")[1].strip() for r in loaded.refused if r.startswith("agreement")]
    if kept != 2:
        seen = [f"node took agreement #{kept}"]
    run.attack("federation-agreement-rollback", "AGREEMENT_STALE",
               "agreement #1 offered again to the chip and to the node on restart", seen,
               f"SG chip, {NODE_ID}", f"refused; both keep #{kept}")  # fmt: skip


def _install(chip: Chip, token: bytes, now: int) -> list[str]:
    try:
        _fed(chip).install(token, now_s=now)
    except ChipRefusal as exc:
        return [str(exc.reason)]
    return ["installed"]


async def _attacks_over_tcp(run: _Run, port: int, vendor_sg: Any) -> None:
    now = run.now
    # a chain signed by SG's rotated-out officer 0 (with two current ones)
    stale = fabricate(vendor_sg((0, 1, 2)), run.auth[SG].anchors, hwmodel="HX100", pod_class=8,
                      now_s=now)  # fmt: skip
    stale.boot(now)
    _fed(stale).install(run.tokens[2], now_s=now)
    res = (await attest(stale, "127.0.0.1", port))[-1]
    run.count(res)
    names = [reason_name(r) for r in res.reasons]
    run.attack("federation-rotated-out-officer", "ACT_UNKNOWN_OFFICER",
               "a manufacturer certificate co-signed by the officer SG rotated out", names,
               NODE_ID, Tier(res.status).name.lower())  # fmt: skip
    # a chip of an authority outside the agreement
    outsider = _Authority.make(OUTSIDER, "XX", now)
    rogue = fabricate(outsider.manufacturer("vendor-x", now), outsider.anchors, hwmodel="HX100",
                      pod_class=8, now_s=now, chip_class=_Reflashed)  # fmt: skip
    assert isinstance(rogue, _Reflashed)
    rogue.trusted = run.auth[MY].anchors
    rogue.boot(now)
    res = (await attest(rogue, "127.0.0.1", port))[-1]
    run.count(res)
    names = [reason_name(r) for r in res.reasons]
    run.attack("federation-non-member", "AUTHORITY_NOT_RECOGNISED",
               f"a chip of {OUTSIDER}, which signed no agreement", names, NODE_ID,
               Tier(res.status).name.lower())  # fmt: skip
