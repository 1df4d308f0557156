"""Offline Licensing: messages, on-chip enforcement, renewal through the verifier, the ledger.

Chips, keys and identities come from the deterministic vector world. The verifier side runs
the real VerifierService and SqliteStore without a network (sessions are driven by hand with a
fake clock); the end-to-end paths over TCP and through the CLI are at the bottom. No test
asserts on wall-clock time.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from attest.chip.adversary import CompromisedChip
from attest.chip.device import Chip, fabricate
from attest.chip.runner import GrantOutcome, Workload, attest
from attest.codec.cbor import decode
from attest.errors import ChipRefusal, ContentTypeError, DecodeError, StoreError
from attest.identity import Authority
from attest.keys import SigningKey
from attest.licensing import chip as L
from attest.licensing.authority import delegate, sign_license
from attest.licensing.chip import ChipLicensing, LicensingChip
from attest.licensing.issuer import LicenseIssuer, Renewal, RenewalOutcome
from attest.licensing.ledger import LedgerRecord, LicenseConflict, LicenseLedger, QuotaExceeded
from attest.licensing.messages import (
    Budgets,
    Delegation,
    License,
    LicenseGrant,
    LicenseState,
    license_state_of,
)
from attest.licensing.reasons import LicenseReason
from attest.licensing.verifier import LicensingSection, LicensingVerifier
from attest.mechanism import Grant
from attest.messages.attestation import Challenge, Evidence
from attest.messages.revocation import ListRefusal, RevocationList, Revocations
from attest.node.app import assemble
from attest.node.server import NodeSettings, VerifierNode
from attest.node.service import Outcome, VerifierService
from attest.store.sqlite import SqliteStore
from attest.testvectors.world import (
    AUTHORITY_ID,
    BOOT_S,
    CERTIFIED_S,
    NOW_MS,
    NOW_S,
    World,
    build_world,
    vector_ueid,
)
from attest.verify.policy import Policy
from attest.verify.reasons import Tier

BUDGET = 10**15
KL_QUOTA = Budgets(10 * BUDGET)
HX100_PEAK = 10**15
DAY_S = 24 * 3600


@pytest.fixture(scope="module")
def w() -> World:
    return build_world()


def licensed_chip(
    w: World,
    name: str = "hx100-a",
    *,
    state_dir: Path | None = None,
    cls: type[Chip] = Chip,
    baseline_ppm: int = L.DEFAULT_BASELINE_PPM,
    firmware: tuple[int, ...] | None = None,
) -> Chip:
    """A world chip fitted with the licensing mechanism (same key, UEID and chain)."""
    spec = w.chips[name]
    chip = fabricate(
        w.manufacturers[spec.manufacturer],
        w.anchors,
        hwmodel=spec.hwmodel,
        pod_class=spec.pod_class,
        now_s=CERTIFIED_S,
        firmware_version=firmware or spec.firmware,
        ueid=vector_ueid(name),
        device_key=w.device_key(name),
        chip_class=cls,
        state_dir=state_dir,
        parts={"licensing": ChipLicensing(baseline_ppm=baseline_ppm)},
    )
    chip.boot(BOOT_S)
    return chip


def lic_part(chip: Chip) -> LicensingChip:
    """The chip's licensing part (ChipRefusal MECHANISM_ABSENT on a chip without it)."""
    return chip.part(LicensingChip)


def authority_license(w: World, chip: Chip, serial: int = 1, **kw: object) -> LicenseGrant:
    args: dict[str, object] = {
        "issuer": AUTHORITY_ID,
        "ueid": chip.ueid,
        "serial": serial,
        "budgets": Budgets(BUDGET),
        "expiry_s": chip.chip_time_s + 3600,
        "now_s": NOW_S,
    }
    args.update(kw)
    return LicenseGrant(sign_license(w.authority.key, **args))  # type: ignore[arg-type]


def kl_delegation(
    w: World, did: int = 1, quota: Budgets = KL_QUOTA, exp: int = NOW_S + 90 * DAY_S
) -> bytes:
    v = w.verifiers["kl-1"]
    return delegate(
        w.authority,
        delegation_id=did,
        verifier_id=v.verifier_id,
        public_key=v.key.public_key,
        region=v.region,
        quota=quota,
        now_s=CERTIFIED_S,
        validity_s=exp - CERTIFIED_S,
    )


def kl_license(w: World, chip: Chip, serial: int = 1, did: int = 1, **kw: object) -> bytes:
    args: dict[str, object] = {
        "issuer": "kl-1",
        "ueid": chip.ueid,
        "serial": serial,
        "budgets": Budgets(BUDGET),
        "expiry_s": chip.chip_time_s + 3600,
        "now_s": NOW_S,
        "delegation_id": did,
    }
    args.update(kw)
    return sign_license(w.verifiers["kl-1"].key, **args)  # type: ignore[arg-type]


def refusal(chip: Chip, grant: LicenseGrant, now_s: int = NOW_S, **kw: object) -> str | None:
    try:
        lic_part(chip).apply_license(grant, now_s, **kw)  # type: ignore[arg-type]
    except ChipRefusal as exc:
        return exc.reason
    return None


# =============================================================================================
# Messages


def test_license_and_delegation_round_trip(w: World) -> None:
    chip = licensed_chip(w)
    token = kl_license(w, chip, budgets=Budgets(BUDGET, 7, 9), nonce=bytes(32))
    lic = License.verify(token, w.verifiers["kl-1"].key.public_key)
    assert (lic.serial, lic.budgets, lic.nonce, lic.delegation_id) == (
        1,
        Budgets(BUDGET, 7, 9),
        bytes(32),
        1,
    )
    d = Delegation.verify(kl_delegation(w), w.anchors.authority_key)
    assert (d.verifier_id, d.region, d.delegation_id, d.quota) == (
        "kl-1",
        "MY-KL",
        1,
        Budgets(10 * BUDGET),
    )
    assert d.public_key == w.verifiers["kl-1"].key.public_key


def test_license_domain_separation(w: World) -> None:
    token = authority_license(w, licensed_chip(w)).license
    for cls in (Delegation, Challenge):
        with pytest.raises(ContentTypeError):
            cls.verify(token, w.anchors.authority_key)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "budgets",
    [{}, {2: 5}, {1: 5, 4: 1}, {1: True}, {1: -1}, {1: 5, 2: "x"}, [5], {1: 1 << 64}],
    ids=str,
)
def test_budgets_schema_is_strict(w: World, budgets: object) -> None:
    token = authority_license(w, licensed_chip(w)).license
    claims = decode(License.verify(token, w.anchors.authority_key).payload())
    claims[-70101] = budgets
    with pytest.raises(DecodeError):
        License.from_claims(claims)


def test_optional_claims_keep_version_1_encodings(w: World) -> None:
    # a license state without chip time, a revocation list without delegations: as before
    ev = (
        licensed_chip(w)
        .current_evidence(w.challenge("x")[0], NOW_S)
        .with_claims(license_state=LicenseState(3, 4))
    )
    assert decode(ev.payload())[-70004] == {1: 3, 2: 4}
    rl = RevocationList.from_payload(RevocationList("a", 1, 1).payload())
    assert rl.delegations is None and -70105 not in decode(rl.payload())


# =============================================================================================
# On-chip enforcement


def test_chip_ships_throttled_at_its_baseline(w: World) -> None:
    chip = licensed_chip(w)
    assert lic_part(chip).throttled and lic_part(chip).license_state() == LicenseState(0, 0, 0)
    chip.run_workload(10, 1.0)
    assert chip.meters.flops == HX100_PEAK * 10 // 100  # 1 % of peak
    five = licensed_chip(w, "hx100-b", baseline_ppm=50_000)
    five.run_workload(10, 1.0)
    assert five.meters.flops == HX100_PEAK * 10 * 5 // 100
    five.run_workload(10, 0.02)  # below the baseline: runs at what was asked
    assert five.meters.flops == HX100_PEAK * 10 * 5 // 100 + HX100_PEAK * 10 * 2 // 100


def test_chip_without_the_mechanism_is_version_1(w: World) -> None:
    chip = w.honest_chip("hx100-a")
    chip.run_workload(10, 1.0)
    assert chip.meters.flops == HX100_PEAK * 10 and not chip.has(LicensingChip)
    assert license_state_of(chip.current_evidence(w.challenge("x")[0], NOW_S)) is None
    grant = authority_license(w, chip)
    with pytest.raises(ChipRefusal, match="GRANT_UNSUPPORTED"):
        chip.accept_grant(
            Grant(grant.license, grant.delegation), session_nonce=bytes(32), now_s=NOW_S
        )


def test_license_budget_is_consumed_at_the_rate_run(w: World) -> None:
    chip = licensed_chip(w)
    lic_part(chip).apply_license(authority_license(w, chip, budgets=Budgets(10 * BUDGET)), NOW_S)
    assert not lic_part(chip).throttled
    chip.run_workload(4, 0.5)  # 2 x 10^15 FLOPs at half speed
    state = lic_part(chip).license_state()
    assert state == LicenseState(1, 8 * BUDGET, 4)
    assert chip.meters.flops == 2 * HX100_PEAK


def test_exhaustion_mid_interval_throttles_the_rest(w: World) -> None:
    chip = licensed_chip(w)
    lic_part(chip).apply_license(authority_license(w, chip, budgets=Budgets(BUDGET)), NOW_S)
    chip.run_workload(3, 1.0)  # the budget lasts 1 s, then 2 s at 1 %
    assert lic_part(chip).throttled and lic_part(chip).license_state() == LicenseState(1, 0, 3)
    assert chip.meters.flops == BUDGET + 2 * HX100_PEAK // 100
    assert lic_part(chip).state.applied[0] == BUDGET


def test_energy_budget_throttles_too(w: World) -> None:
    chip = licensed_chip(w)
    # 700 W peak: 1 400 000 mJ is 2 s at full power; FLOPs would last 10 s
    budgets = Budgets(10 * BUDGET, 1_400_000)
    lic_part(chip).apply_license(authority_license(w, chip, budgets=budgets), NOW_S)
    chip.run_workload(4, 1.0)
    assert lic_part(chip).throttled
    assert chip.meters.flops == 2 * HX100_PEAK + 2 * HX100_PEAK // 100
    assert lic_part(chip).state.remaining.energy_mj == 0


def test_expiry_mid_interval_forfeits_the_rest(w: World) -> None:
    chip = licensed_chip(w)
    lic_part(chip).apply_license(
        authority_license(w, chip, budgets=Budgets(100 * BUDGET), expiry_s=2), NOW_S
    )
    chip.run_workload(5, 1.0)  # licensed until chip time 2, then throttled
    assert lic_part(chip).throttled
    assert chip.meters.flops == 2 * HX100_PEAK + 3 * HX100_PEAK // 100
    assert lic_part(chip).license_state() == LicenseState(1, 0, 5)  # forfeited, not reported
    lic_part(chip).apply_license(
        authority_license(w, chip, serial=2, budgets=Budgets(BUDGET)), NOW_S
    )
    assert lic_part(chip).license_state() == LicenseState(2, BUDGET, 5)  # nothing carried over


def test_unexpired_budget_carries_over(w: World) -> None:
    chip = licensed_chip(w)
    lic_part(chip).apply_license(authority_license(w, chip), NOW_S)
    chip.run_workload(0.25, 1.0)
    lic_part(chip).apply_license(authority_license(w, chip, serial=2), NOW_S)
    assert lic_part(chip).license_state() == LicenseState(2, BUDGET * 7 // 4, 0)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(0, 5), st.floats(0, 1), st.booleans()), min_size=1, max_size=12
    )
)
def test_meters_never_outgrow_the_peak_or_the_budget(
    steps: list[tuple[float, float, bool]],
) -> None:
    """Honest meters stay within elapsed x peak (the verifier's rate check) whatever the license
    does, and licensed work never exceeds the budgets applied."""
    w = build_world()
    chip = licensed_chip(w)
    serial = 0
    elapsed = 0.0
    for seconds, share, renew in steps:
        if renew:
            serial += 1
            lic_part(chip).apply_license(
                authority_license(w, chip, serial, budgets=Budgets(BUDGET)), NOW_S
            )
        chip.run_workload(seconds, share)
        elapsed += seconds
        assert chip.meters.flops <= HX100_PEAK * elapsed + 1
        lic = lic_part(chip).state
        assert 0 <= lic.remaining.flops <= lic.applied[0]
        baseline = HX100_PEAK * elapsed / 100 + 1
        assert chip.meters.flops <= lic.applied[0] + baseline


def test_state_persists_and_chip_time_never_goes_back(w: World, tmp_path: Path) -> None:
    chip = licensed_chip(w, state_dir=tmp_path / "chip")
    lic_part(chip).apply_license(authority_license(w, chip, budgets=Budgets(10 * BUDGET)), NOW_S)
    chip.run_workload(3.5, 1.0)
    again = Chip.load(tmp_path / "chip")
    assert again.chip_time_ms == 3500 and lic_part(again).state == lic_part(chip).state
    assert lic_part(again).license_state() == LicenseState(1, 10 * BUDGET - int(3.5 * BUDGET), 3)
    again.boot(BOOT_S + 10)
    assert again.chip_time_ms == 3500  # a reboot does not reset chip time


# -- the six license attacks, refused by the chip ------------------------------------------------
def _replay(w: World, chip: Chip) -> LicenseGrant:
    grant = authority_license(w, chip)
    lic_part(chip).apply_license(grant, NOW_S)
    return grant


def _other_chip(w: World, chip: Chip) -> LicenseGrant:
    return authority_license(w, licensed_chip(w, "hx100-b"))


def _forged(w: World, chip: Chip) -> LicenseGrant:
    token = sign_license(
        SigningKey.generate(),
        issuer=AUTHORITY_ID,
        ueid=chip.ueid,
        serial=1,
        budgets=Budgets(10**18),
        expiry_s=10**6,
        now_s=NOW_S,
    )
    return LicenseGrant(token)


def _out_of_order(w: World, chip: Chip) -> LicenseGrant:
    first, second = authority_license(w, chip, 1), authority_license(w, chip, 2)
    lic_part(chip).apply_license(second, NOW_S)
    return first


def _expired(w: World, chip: Chip) -> LicenseGrant:
    chip.run_workload(100, 0.0)
    return authority_license(w, chip, expiry_s=100)


def _over_quota(w: World, chip: Chip) -> LicenseGrant:
    return LicenseGrant(kl_license(w, chip, budgets=Budgets(11 * BUDGET)), kl_delegation(w))


ATTACKS: dict[str, tuple[Callable[[World, Chip], LicenseGrant], str]] = {
    "license-replay": (_replay, L.LicenseRefusal.LICENSE_REPLAYED),
    "license-other-chip": (_other_chip, L.LicenseRefusal.LICENSE_WRONG_CHIP),
    "license-forged": (_forged, L.LicenseRefusal.LICENSE_SIGNATURE_INVALID),
    "license-serial-out-of-order": (_out_of_order, L.LicenseRefusal.LICENSE_SERIAL_OUT_OF_ORDER),
    "license-expired": (_expired, L.LicenseRefusal.LICENSE_EXPIRED),
    "license-over-quota": (_over_quota, L.LicenseRefusal.LICENSE_QUOTA_EXCEEDED),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_chip_refuses_license_attack(w: World, tmp_path: Path, attack: str) -> None:
    chip = licensed_chip(w, state_dir=tmp_path / "chip")
    make, reason = ATTACKS[attack]
    grant = make(w, chip)
    before = (tmp_path / "chip" / "state.cbor").read_bytes()
    assert refusal(chip, grant) == reason
    # a refusal changes nothing, in memory or on disk
    assert (tmp_path / "chip" / "state.cbor").read_bytes() == before
    assert lic_part(Chip.load(tmp_path / "chip")).state == lic_part(chip).state


def test_quota_is_cumulative_per_delegation(w: World) -> None:
    chip = licensed_chip(w)
    d = kl_delegation(w, quota=Budgets(3 * BUDGET))
    for serial in (1, 2, 3):
        lic_part(chip).apply_license(LicenseGrant(kl_license(w, chip, serial), d), NOW_S)
    assert (
        refusal(chip, LicenseGrant(kl_license(w, chip, 4), d))
        == L.LicenseRefusal.LICENSE_QUOTA_EXCEEDED
    )


def test_revoked_delegation_is_refused_once_the_chip_knows(w: World) -> None:
    chip = licensed_chip(w)
    d = kl_delegation(w, did=5)
    token = w.authority.revocation_list(1, now_s=NOW_S, delegations=[5])
    assert lic_part(chip).apply_revocations(token) == 1
    assert (
        refusal(chip, LicenseGrant(kl_license(w, chip, did=5), d))
        == L.LicenseRefusal.LICENSE_DELEGATION_REVOKED
    )
    with pytest.raises(ChipRefusal, match=ListRefusal.REVOCATIONS_STALE):
        lic_part(chip).apply_revocations(token)  # anti-rollback: not newer
    impostor = Authority(AUTHORITY_ID, SigningKey.generate())
    with pytest.raises(ChipRefusal, match=ListRefusal.REVOCATIONS_INVALID):
        lic_part(chip).apply_revocations(impostor.revocation_list(9, now_s=NOW_S))


def test_other_acceptance_checks(w: World) -> None:
    old = licensed_chip(w, firmware=(1, 0, 0))
    assert refusal(old, authority_license(w, old)) == L.LicenseRefusal.LICENSE_FIRMWARE_TOO_OLD
    chip = licensed_chip(w)
    bound = authority_license(w, chip, nonce=bytes(32))
    assert refusal(chip, bound) == L.LicenseRefusal.LICENSE_NONCE_MISMATCH
    assert refusal(chip, bound, session_nonce=bytes(32)) is None
    d = kl_delegation(w, exp=NOW_S)
    assert (
        refusal(chip, LicenseGrant(kl_license(w, chip, 2), d))
        == L.LicenseRefusal.LICENSE_DELEGATION_EXPIRED
    )


def test_offline_request_nonce_is_single_use(w: World) -> None:
    chip = licensed_chip(w)
    nonce = lic_part(chip).license_request()
    assert refusal(chip, authority_license(w, chip, nonce=nonce)) is None
    assert lic_part(chip).state.request_nonce is None
    assert (
        refusal(chip, authority_license(w, chip, 2, nonce=nonce))
        == L.LicenseRefusal.LICENSE_NONCE_MISMATCH
    )


# =============================================================================================
# Property: issue / apply / crash / restart never applies more than issued, nor a serial twice


class _Crash(Exception):
    """The chip's process dies here."""


class LicenseLifecycle(RuleBasedStateMachine):
    """An authority issues licenses (any order, any budget); the chip gets them delivered in any
    order, possibly twice, and crashes at any point of applying or at rest."""

    def __init__(self) -> None:
        super().__init__()
        self.w = build_world()
        self.dir = Path(tempfile.mkdtemp(prefix="attest-lic-"))
        self.chip = licensed_chip(self.w, state_dir=self.dir / "chip")
        self.issued: dict[int, LicenseGrant] = {}
        self.budgets: dict[int, int] = {}
        self.accepted: list[int] = []  # serials whose acceptance became durable

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(budget=st.integers(1, 10**16), validity=st.integers(1, 10**4))
    def issue(self, budget: int, validity: int) -> None:
        serial = len(self.issued) + 1
        self.issued[serial] = authority_license(
            self.w,
            self.chip,
            serial,
            budgets=Budgets(budget),
            expiry_s=self.chip.chip_time_s + validity,
        )
        self.budgets[serial] = budget

    def _deliver(self, serial: int, crash: bool) -> None:
        def die() -> None:
            raise _Crash

        hwm = lic_part(self.chip).state.serial
        try:
            lic_part(self.chip).apply_license(
                self.issued[serial], NOW_S, after_accept=die if crash else None
            )
        except ChipRefusal as exc:
            assert serial <= hwm or exc.reason == L.LicenseRefusal.LICENSE_EXPIRED, exc
            return
        except _Crash:
            self.accepted.append(serial)
            self.chip = Chip.load(self.dir / "chip")  # restart: rolls the pending license forward
            return
        assert serial > hwm
        self.accepted.append(serial)

    @precondition(lambda self: self.issued)
    @rule(data=st.data(), crash=st.booleans())
    def deliver(self, data: st.DataObject, crash: bool) -> None:
        self._deliver(data.draw(st.sampled_from(sorted(self.issued))), crash)

    @rule(seconds=st.floats(0, 20), share=st.floats(0, 1))
    def work(self, seconds: float, share: float) -> None:
        self.chip.run_workload(seconds, share)

    @rule()
    def restart(self) -> None:
        self.chip = Chip.load(self.dir / "chip")

    @invariant()
    def never_more_than_issued_nor_twice(self) -> None:
        lic = lic_part(self.chip).state
        assert lic.pending is None
        assert len(self.accepted) == len(set(self.accepted)), "a serial was applied twice"
        assert lic.applied[0] == sum(self.budgets[s] for s in self.accepted)
        assert lic.applied[0] <= sum(self.budgets.values())
        assert lic.serial == max(self.accepted, default=0)
        assert 0 <= lic.remaining.flops <= lic.applied[0]


LicenseLifecycle.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_license_lifecycle = LicenseLifecycle.TestCase


# =============================================================================================
# The verifier: renewal, quotas, the ledger


@dataclass
class Node:
    """A verifier service with licensing, driven by hand with a settable clock."""

    w: World
    store: SqliteStore
    ledger: LicenseLedger
    issuer: LicenseIssuer
    service: VerifierService
    now_ms: list[int] = field(default_factory=lambda: [NOW_MS])

    def session(
        self,
        chip: Chip,
        *,
        work_s: float = 0.0,
        share: float = 1.0,
        evidence: Callable[[Chip, Challenge], bytes] | None = None,
        apply: bool = True,
    ) -> tuple[Outcome, str | None]:
        """``work_s`` of work (and clock), one round; the grant (if any) is handed to the chip."""
        self.now_ms[0] += int(work_s * 1000) + 1000
        chip.run_workload(work_s, share)
        challenge, token = self.service.new_challenge()
        cert = self.w.verifiers["kl-1"].cert
        accepted = chip.accept_challenge(cert, token, self.now_ms[0] // 1000)
        ev = evidence(chip, accepted) if evidence else chip.answer(accepted, self.now_ms[0] / 1000)
        outcome = self.service.conclude(chip.chain, challenge, ev)
        refused = None
        renewal = _renewal(outcome)
        if apply and renewal is not None and renewal.grant is not None:
            refused = refusal(chip, renewal.grant, self.now_ms[0] // 1000,
                              session_nonce=challenge.nonce)  # fmt: skip
        return outcome, refused


def make_node(
    w: World,
    path: Path,
    *,
    section: LicensingSection | None = None,
    quota: Budgets = KL_QUOTA,
    did: int = 1,
) -> Node:
    store = SqliteStore(path, verifier_id="kl-1")
    delegation = path.with_name(f"{path.stem}.delegation.cose")
    delegation.write_bytes(kl_delegation(w, did, quota))
    section = section or LicensingSection(budget_flops=BUDGET, validity_s=3600)
    clock = [NOW_MS]
    service = assemble(
        identity=w.verifiers["kl-1"],
        anchors=w.anchors,
        store=store,
        policy=Policy(),
        revocations=Revocations(),
        sections={
            "licensing": dataclasses.replace(section, enabled=True, delegation_file=str(delegation))
        },
        clock_ms=lambda: clock[0],
    ).service
    part = service.part(LicensingVerifier)
    assert part is not None
    return Node(w, store, part.issuer.ledger, part.issuer, service, clock)


@pytest.fixture
def node(w: World, tmp_path: Path) -> Iterator[Node]:
    n = make_node(w, tmp_path / "v.db")
    yield n
    n.store.close()


def _renewal(o: Outcome) -> Renewal | None:
    """What the licensing part did after the session (None: no renewal was attempted)."""
    c = o.conclusions.get("licensing")
    return None if c is None else c.detail  # type: ignore[no-any-return]


def _outcome(o: Outcome) -> RenewalOutcome | None:
    r = _renewal(o)
    return None if r is None else r.outcome


def test_renewal_after_affirming_attestation(w: World, node: Node) -> None:
    chip = licensed_chip(w)
    out, refused = node.session(chip)
    assert out.verdict.tier is Tier.AFFIRMING and _outcome(out) is RenewalOutcome.ISSUED
    assert refused is None and not lic_part(chip).throttled
    assert lic_part(chip).license_state() == LicenseState(1, BUDGET, 0)
    (rec,) = node.ledger.license_records(chip.ueid)
    assert (rec.serial, rec.budgets.flops, rec.delegation_id, rec.region) == (1, BUDGET, 1, "MY-KL")
    assert node.ledger.delegation_status(1).issued == (BUDGET, 0, 0)  # type: ignore[union-attr]
    assert node.ledger.region_status("MY-KL").licenses == 1
    # plenty left: nothing more; exhausted: the next one, serial 2
    out, _ = node.session(chip, work_s=0.5)
    assert _outcome(out) is RenewalOutcome.NOT_DUE
    out, _ = node.session(chip, work_s=1.0)
    assert lic_part(chip).license_state().serial == 2
    assert node.ledger.license_view(chip.ueid).reported_serial == 1


def test_expiring_license_is_renewed(w: World, tmp_path: Path) -> None:
    section = LicensingSection(budget_flops=BUDGET, validity_s=100, renew_below=0.25)
    n = make_node(w, tmp_path / "v.db", section=section)
    chip = licensed_chip(w)
    n.session(chip)
    out, _ = n.session(chip, work_s=70, share=0.0)
    assert _outcome(out) is RenewalOutcome.NOT_DUE
    out, _ = n.session(chip, work_s=10, share=0.0)  # 20 of 100 chip seconds left
    assert _outcome(out) is RenewalOutcome.ISSUED
    n.store.close()


def test_warning_does_not_qualify_unless_configured(w: World, tmp_path: Path) -> None:
    chip = licensed_chip(w, "hx100-oldfw")  # firmware 1.0.0: FIRMWARE_OUTDATED, a warning
    n = make_node(w, tmp_path / "a.db")
    out, _ = n.session(chip)
    assert out.verdict.tier is Tier.WARNING and _outcome(out) is RenewalOutcome.NOT_QUALIFYING
    n.store.close()
    section = LicensingSection(
        budget_flops=BUDGET, qualifying_tiers="affirming,warning", min_firmware="1.0.0"
    )
    n = make_node(w, tmp_path / "b.db", section=section)
    out, refused = n.session(chip)
    assert _outcome(out) is RenewalOutcome.ISSUED and refused is None
    n.store.close()


def test_quota_is_never_exceeded(w: World, tmp_path: Path) -> None:
    n = make_node(w, tmp_path / "v.db", quota=Budgets(3 * BUDGET))
    chips = [licensed_chip(w, name) for name in ("hx100-a", "hx100-b", "hx800-a", "cx10-a")]
    outcomes = [_outcome(n.session(c)[0]) for c in chips]
    assert outcomes == [RenewalOutcome.ISSUED] * 3 + [RenewalOutcome.QUOTA_EXCEEDED]
    assert lic_part(chips[3]).throttled
    assert n.ledger.delegation_status(1).issued[0] == 3 * BUDGET  # type: ignore[union-attr]
    assert len(n.ledger.license_records()) == 3
    n.store.close()


def test_region_cap_and_revoked_delegation(w: World, node: Node) -> None:
    node.ledger.set_region_cap("MY-KL", Budgets(BUDGET))
    a, b = licensed_chip(w), licensed_chip(w, "hx100-b")
    assert _outcome(node.session(a)[0]) is RenewalOutcome.ISSUED
    assert _outcome(node.session(b)[0]) is RenewalOutcome.REGION_CAP_EXCEEDED
    node.ledger.set_region_cap("MY-KL", None)
    node.ledger.revoke_delegation(1)
    assert _outcome(node.session(b)[0]) is RenewalOutcome.DELEGATION_REVOKED
    assert node.ledger.delegation_status(1).revoked  # type: ignore[union-attr]
    conn = sqlite3.connect(node.store.path)
    with pytest.raises(sqlite3.DatabaseError, match="only move forward"):
        conn.execute("UPDATE license_delegations SET revoked = 0")
    conn.close()


def test_lost_grant_is_delivered_again_not_reissued(w: World, node: Node) -> None:
    chip = licensed_chip(w)
    first, _ = node.session(chip, apply=False)  # the RESULT never reached the chip
    again, refused = node.session(chip)
    assert _outcome(again) is RenewalOutcome.REDELIVERED and refused is None
    assert _renewal(first).grant == _renewal(again).grant  # type: ignore[union-attr]
    assert len(node.ledger.license_records(chip.ueid)) == 1
    assert lic_part(chip).license_state().serial == 1


def test_verifier_flags_what_the_chip_refuses(w: World, node: Node) -> None:
    """A tampered chip that applied a license twice (or made one up) is caught by the ledger."""
    chip = licensed_chip(w, cls=CompromisedChip)
    node.session(chip)

    def claim(**changes: int) -> Callable[[Chip, Challenge], bytes]:
        def make(c: Chip, ch: Challenge) -> bytes:
            assert isinstance(c, CompromisedChip)
            c.attest_counter += 1
            honest: Evidence = c.current_evidence(ch, node.now_ms[0] / 1000)
            state = dataclasses.replace(license_state_of(honest), **changes)  # type: ignore[type-var]
            return c.sign_arbitrary_evidence(honest.with_claims(license_state=state))

        return make

    cases = {
        LicenseReason.LICENSE_BUDGET_EXCEEDS_ISSUED: claim(remaining_flops=2 * BUDGET),
        LicenseReason.LICENSE_SERIAL_UNKNOWN: claim(serial=9, remaining_flops=0),
        LicenseReason.LICENSE_EXPIRY_IGNORED: claim(chip_time_s=10**6),
    }
    for reason, evidence in cases.items():
        out, _ = node.session(chip, evidence=evidence)
        assert out.verdict.reasons == (reason,)
        assert _outcome(out) is RenewalOutcome.NOT_QUALIFYING
    node.session(chip, work_s=1.0)  # exhausted: renewed to serial 2, which it then reports
    node.session(chip)
    out, _ = node.session(chip, evidence=claim(serial=1, remaining_flops=0))
    assert out.verdict.reasons == (LicenseReason.LICENSE_SERIAL_ROLLBACK,)


@pytest.mark.parametrize("connections", [1, 2], ids=["one-store", "two-connections"])
def test_two_concurrent_renewals_issue_exactly_one(
    w: World, tmp_path: Path, connections: int
) -> None:
    path = tmp_path / "v.db"
    first = make_node(w, path)
    second = first if connections == 1 else make_node(w, path)
    for i in range(8):
        ueid = bytes([1]) + bytes([i]) * 16  # a fresh chip each round
        state = LicenseState(0, 0, 0)
        view = first.ledger.license_view(ueid)
        barrier = threading.Barrier(2)
        results: list[RenewalOutcome] = []

        def renew(n: Node, view=view, ueid=ueid, state=state, results=results, barrier=barrier):  # type: ignore[no-untyped-def]
            barrier.wait()
            r = n.issuer.renew(ueid=ueid, tier=Tier.AFFIRMING, state=state, view=view,
                               now_ms=NOW_MS)  # fmt: skip
            results.append(r.outcome)

        threads = [threading.Thread(target=renew, args=(n,)) for n in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == sorted([RenewalOutcome.ISSUED, RenewalOutcome.REDELIVERED])
        assert [r.serial for r in first.ledger.license_records(ueid)] == [1]
    assert first.ledger.region_status("MY-KL").licenses == 8
    for n in {id(first): first, id(second): second}.values():
        n.store.close()


def test_concurrent_issuance_never_exceeds_the_quota(w: World, tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    nodes = [make_node(w, path, quota=Budgets(5 * BUDGET)) for _ in range(3)]
    barrier = threading.Barrier(12)
    outcomes: list[RenewalOutcome] = []

    def renew(i: int) -> None:
        n = nodes[i % 3]
        ueid = bytes([1]) + i.to_bytes(16, "big")
        barrier.wait()
        r = n.issuer.renew(ueid=ueid, tier=Tier.AFFIRMING, state=LicenseState(0, 0, 0),
                           view=n.ledger.license_view(ueid), now_ms=NOW_MS)  # fmt: skip
        outcomes.append(r.outcome)

    threads = [threading.Thread(target=renew, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(RenewalOutcome.ISSUED) == 5
    assert outcomes.count(RenewalOutcome.QUOTA_EXCEEDED) == 7
    assert nodes[0].ledger.delegation_status(1).issued[0] == 5 * BUDGET  # type: ignore[union-attr]
    for n in nodes:
        n.store.close()


def test_ledger_is_append_only_and_serials_unique(w: World, node: Node) -> None:
    # the ledger lives in the node's own store
    assert isinstance(node.ledger, LicenseLedger) and node.ledger.db is node.store.db
    chip = licensed_chip(w)
    node.session(chip)
    rec = node.ledger.license_records(chip.ueid)[0]
    with pytest.raises(LicenseConflict):  # the caller's view is stale
        node.ledger.issue_license(
            dataclasses.replace(rec, serial=2), expected_latest=0, now_s=NOW_S
        )
    with pytest.raises(StoreError):  # the same (ueid, serial) twice
        node.ledger.record_license(dataclasses.replace(rec, token=b"other"))
    assert node.ledger.record_license(rec) is False  # the same record: a no-op
    with pytest.raises(QuotaExceeded):
        node.ledger.issue_license(
            dataclasses.replace(rec, serial=2, budgets=Budgets(10 * BUDGET)),
            expected_latest=1,
            now_s=NOW_S,
        )
    conn = sqlite3.connect(node.store.path)
    for sql in ("UPDATE license_ledger SET budget_flops = x'00'", "DELETE FROM license_ledger"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    conn.close()
    assert node.ledger.license_records(chip.ueid) == [rec]


def test_authority_licenses_recorded_in_the_ledger(w: World, node: Node) -> None:
    chip = licensed_chip(w)
    grant = authority_license(w, chip, 5)
    lic_part(chip).apply_license(grant, NOW_S)
    out, _ = node.session(chip)
    assert out.verdict.reasons == (
        LicenseReason.LICENSE_SERIAL_UNKNOWN,
        LicenseReason.LICENSE_BUDGET_EXCEEDS_ISSUED,
    )
    lic = License.verify(grant.license, w.anchors.authority_key)
    rec = LedgerRecord(chip.ueid, 5, AUTHORITY_ID, None, None, lic.budgets, lic.expiry_s, 0,
                       grant.license)  # fmt: skip
    assert node.ledger.record_license(rec)
    out, _ = node.session(chip)
    assert out.verdict.tier is Tier.AFFIRMING
    assert node.ledger.delegation_status(1).issued == (0, 0, 0)  # type: ignore[union-attr]


# =============================================================================================
# End to end: over TCP, in the demo, through the CLI


async def test_chip_runner_applies_grants_over_tcp(w: World, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "v.db", verifier_id="kl-1")
    delegation = tmp_path / "delegation.cose"
    delegation.write_bytes(kl_delegation(w))
    built = assemble(
        identity=w.verifiers["kl-1"],
        anchors=w.anchors,
        store=store,
        policy=Policy(),
        revocations=Revocations(),
        sections={
            "licensing": LicensingSection(
                enabled=True,
                delegation_file=str(delegation),
                budget_flops=10**14,
                renew_below=0.5,
            )
        },
        clock_ms=lambda: NOW_MS + time.monotonic_ns() // 1_000_000,
    )
    node = VerifierNode(built.service, NodeSettings(http_port=-1), built.metrics)
    chip = licensed_chip(w)
    seen: list[str | None] = []

    def on_grant(g: GrantOutcome) -> None:
        seen.append(g.refusal)

    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        assert node.address is not None
        with trio.fail_after(20):
            results = await attest(
                chip,
                "127.0.0.1",
                node.address.port,
                rounds=3,
                interval_s=0.2,
                workload=Workload(share=1.0),
                on_grant=on_grant,
            )
        node.shutdown()
    assert [r.status for r in results] == [Tier.AFFIRMING] * 3
    assert seen and all(r is None for r in seen)
    assert lic_part(chip).state.serial == len(seen)


async def test_demo_licensing_section() -> None:
    from attest.demo.scenario import DemoOptions, run_demo

    with trio.fail_after(60):
        summary = await run_demo(DemoOptions(chips=4, rounds=1))
    # (other mechanisms' sections are judged by their own tests)
    _, section = summary.sections["licensing"]
    assert section.ok and not section.errors, section.errors
    assert summary.honest_affirmed == summary.honest_sessions == 4
    licensing = summary.as_json()["licensing"]
    names = [a["name"] for a in summary.attacks if a["name"].startswith("license-")]
    assert len(names) == 6 and all(
        a["detected"] for a in summary.attacks if a["name"].startswith("license-")
    )
    assert set(licensing["regions"]) == {"MY", "SG"}
    for region in licensing["regions"].values():
        assert region["flops_used"] <= region["flops_issued"] <= region["quota_flops"]
    assert licensing["chips_started_throttled"] == licensing["chips"]
    assert licensing["chips_renewed_after_exhaustion"] >= 1
    assert licensing["regions"]["SG"]["flops_issued"] == licensing["regions"]["SG"]["quota_flops"]


def test_cli_offline_licensing_flow(tmp_path: Path) -> None:
    """Authority delegates, issues a license by hand; the chip applies it; revocations reach it."""
    from cli_support import Cli, make_world, secret_hexes

    cli = Cli()
    world = make_world(cli, tmp_path)
    out = cli.ok(
        "authority", "delegate", "--dir", world.authority, "--verifier", world.verifier,
        "--region", "MY-KL", "--quota-flops", "5e15",
    )  # fmt: skip
    assert "delegation #1" in out and (world.verifier / "delegation.cose").is_file()
    info = cli.ok(
        "license", "inspect", world.verifier / "delegation.cose",
        "--anchors", world.authority / "anchors.json", "--json",
    )  # fmt: skip
    assert '"quota": {\n    "flops": 5000000000000000' in info and '"signature": "valid"' in info

    chip_dir = tmp_path / "chip"
    cli.ok("chip", "fabricate", "--manufacturer", world.manufacturer, "--model", "HX100",
           "--state", chip_dir)  # fmt: skip
    cli.ok("chip", "license-request", "--state", chip_dir, "--out", tmp_path / "req.json")
    lic = tmp_path / "lic.cose"
    cli.ok("license", "issue", "--authority", world.authority, "--request", tmp_path / "req.json",
           "--flops", "1e15", "--out", lic)  # fmt: skip
    shown = cli.ok("license", "inspect", lic, "--anchors", world.authority / "anchors.json")
    assert "serial: 1" in shown and "signature: valid" in shown
    assert "applied serial 1" in cli.ok("chip", "apply-license", "--state", chip_dir, lic)
    replay = cli.run("chip", "apply-license", "--state", chip_dir, lic)
    assert replay.returncode == 1 and "LICENSE_REPLAYED" in replay.stdout
    status = cli.ok("chip", "license-status", "--state", chip_dir)
    assert "serial:      1" in status and "throttled:   no" in status

    # a license the same request nonce was already used for is refused; serials keep rising
    again = tmp_path / "again.cose"
    cli.ok("license", "issue", "--authority", world.authority, "--request", tmp_path / "req.json",
           "--flops", "1e15", "--out", again)  # fmt: skip
    refused = cli.run("chip", "apply-license", "--state", chip_dir, again)
    assert refused.returncode == 1 and "LICENSE_NONCE_MISMATCH" in refused.stdout

    cli.ok("authority", "revoke", "--dir", world.authority, "--delegation", "1",
           "--out", tmp_path / "rl.cose")  # fmt: skip
    assert "list #1" in cli.ok("chip", "apply-revocations", "--state", chip_dir,
                               tmp_path / "rl.cose")  # fmt: skip
    assert all(s not in "".join(cli.outputs) for s in secret_hexes(world.key_files()))


def test_cli_node_renews_licenses(tmp_path: Path) -> None:
    """`attest verifier serve` with [licensing] enabled hands licenses to `attest chip run`."""
    from cli_support import Cli, make_world, serve

    cli = Cli()
    world = make_world(cli, tmp_path)
    cli.ok("authority", "delegate", "--dir", world.authority, "--verifier", world.verifier,
           "--region", "MY-KL", "--quota-flops", "3e14")  # fmt: skip
    chips = tmp_path / "chips"
    cli.ok("chip", "fabricate", "--manufacturer", world.manufacturer, "--model", "HX100",
           "--state", chips, "--count", "2")  # fmt: skip
    env = {"ATTEST_LICENSING_ENABLED": "true", "ATTEST_LICENSING_BUDGET_FLOPS": "100000000000000"}
    with serve(world, env=env) as daemon:
        run = cli.run(
            "chip", "run", "--verifier", f"127.0.0.1:{daemon.port}", "--state", chips,
            "--rounds", "3", "--interval", "0.2", "--share", "1.0",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert daemon.stop() == 0
    applied = [line for line in run.stdout.splitlines() if "LICENSE applied" in line]
    assert 2 <= len(applied) <= 3  # the 3 x 10^14 quota: three licenses at most
    status = json.loads(cli.ok("license", "status", "--config", world.config, "--json", env=env))
    assert status["region"]["licenses"] == status["ledgerEntries"] == len(applied)
    assert status["delegation"]["issued"]["flops"] == len(applied) * 10**14 <= 3 * 10**14
    log = daemon.log.read_text()
    assert '"license":"issued"' in log and '"license":"quota_exceeded"' in log
