"""Every reason code, produced through the real API; tier arithmetic; masking; happy paths.

Each reason has a *crafter*: a function that builds the bad input the way an attacker or a
faulty chip would (a compromised chip signing false claims, a stale challenge, a revoked maker
...) and appraises it. Every registered reason has one: the core's, and each mechanism's
(Offline Licensing against a ledger, the Fixed Set through the verifier's pods part). The
vectors cover the same ground from the JSON side; these tests do not read them, so a
regression shows up here even if someone regenerates the vectors.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from conftest import Bench

from attest.chip.adversary import CompromisedChip
from attest.codec.cbor import decode, encode
from attest.codec.cose import sign1
from attest.federation.reasons import DOCUMENT_ONLY, FederationReason
from attest.federation.sign import kid_of, sign_multi
from attest.hardware import DEFAULT_MODELS, simulated_firmware_measurement
from attest.licensing.checks import IssuedLicense, LedgerView
from attest.licensing.messages import LicenseState
from attest.licensing.reasons import LicenseReason
from attest.licensing.verifier import appraise_with_ledger
from attest.location.appraisal import OpenSession
from attest.location.geometry import read_regions
from attest.location.places import sample_regions
from attest.location.reasons import LocationReason
from attest.location.verifier import LocationSection, LocationVerifier
from attest.mechanism import LiveSession, SessionAppraisal, TimedPing, appraise_session
from attest.messages.attestation import Meters
from attest.messages.claims import DBGSTAT_ENABLED
from attest.messages.content import ContentType
from attest.messages.reference import FirmwareReference, FirmwareStatus
from attest.messages.revocation import Revocations
from attest.node.service import VerifierService
from attest.pods.messages import LinkConfirm
from attest.pods.reasons import PodReason
from attest.pods.verifier import PodsVerifier
from attest.store import Advance, ChipRecord, Enroll, SqliteStore
from attest.testvectors.federation_world import (
    SG,
    TH,
    agreement,
    federation,
    officers,
    partner_chain,
    partner_mc,
)
from attest.testvectors.location_vectors import landmark, place_of, rtt_for_bound
from attest.testvectors.pod_vectors import member, pod_cert, pod_chip, pod_id, transcript
from attest.testvectors.world import (
    NOW_S,
    ROUND1_MS,
    ROUND1_SIGN_S,
    ROUND2_MS,
    ROUND2_SIGN_S,
    World,
    vector_ueid,
)
from attest.verify.core import Appraisal, Verdict
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, ReasonCode, Tier, registered_reasons, tier_of
from attest.verify.state import ChipState, ChipStatus

MakeBench = Callable[..., Bench]
#: the core's appraisal, or a session's (the core plus mechanisms) for a mechanism's reason
Crafter = Callable[[MakeBench], Appraisal | SessionAppraisal]

#: reason -> (crafter, the complete set of reasons its verdict must carry)
CRAFTERS: dict[ReasonCode, tuple[Crafter, frozenset[ReasonCode]]] = {}
#: every registered reason: the core's and every mechanism's, in code order
REASONS = registered_reasons()


def crafts(reason: ReasonCode, *also: ReasonCode) -> Callable[[Crafter], Crafter]:
    """Register a crafter for ``reason``; ``also`` lists reasons that necessarily come with it."""

    def register(f: Crafter) -> Crafter:
        assert reason not in CRAFTERS, f"two crafters for {reason.name}"
        CRAFTERS[reason] = (f, frozenset({reason, *also}))
        return f

    return register


def _flip_last_signature_bit(token: bytes) -> bytes:
    protected, unprotected, payload, signature = decode(token[1:])
    flipped = signature[:-1] + bytes([signature[-1] ^ 1])
    return token[:1] + encode([protected, unprotected, payload, flipped])


# -- envelope and chain -------------------------------------------------------------------------


@crafts(Reason.MALFORMED)
def _malformed(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    return b.appraise(b.answer(ch)[:-1], ch)  # truncated in transit


@crafts(Reason.WRONG_CONTENT_TYPE, Reason.BAD_SIGNATURE)
def _wrong_content_type(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    b.chip.attest_counter += 1
    claims = b.chip.current_evidence(ch, ROUND1_SIGN_S).payload()
    # The device key signs honest claims, but as an attestation result: domain separation.
    return b.appraise(sign1(b.world.device_key("hx100-a"), ContentType.RESULT, claims), ch)


@crafts(Reason.BAD_SIGNATURE)
def _bad_signature(make: MakeBench) -> Appraisal:
    a, other = make("hx100-a"), make("hx100-b")
    ch = a.challenge()
    # Chip B's key signs claims in chip A's name; the verifier checks them against A's chain.
    return a.appraise(other.forge(ch, ueid=a.chip.ueid), ch)


@crafts(Reason.CERT_CHAIN_INVALID, Reason.BAD_SIGNATURE)
def _cert_chain_invalid(make: MakeBench) -> Appraisal:
    b = make("hx100-rogue")  # manufacturer certified by an impostor authority
    ch = b.challenge()
    return b.appraise(b.answer(ch), ch)


@crafts(Reason.CERT_EXPIRED)
def _cert_expired(make: MakeBench) -> Appraisal:
    b = make("hx800-expiring")  # its manufacturer's certificate expires at NOW_S + 1
    ch = b.challenge()
    return b.appraise(b.answer(ch), ch, now_ms=ROUND1_MS)


@crafts(Reason.UNKNOWN_HWMODEL)
def _unknown_hwmodel(make: MakeBench) -> Appraisal:
    b = make("hx100-a")
    ch = b.challenge()
    no_hx100 = Policy(models=MappingProxyType({"CX10": DEFAULT_MODELS["CX10"]}))
    return b.appraise(b.answer(ch), ch, policy=no_hx100)


# -- freshness and binding ------------------------------------------------------------------------


@crafts(Reason.NONCE_MISMATCH)
def _nonce_mismatch(make: MakeBench) -> Appraisal:
    b = make()
    earlier, current = b.challenge("earlier"), b.challenge("current")
    return b.appraise(b.answer(earlier), current)


@crafts(Reason.CHALLENGE_EXPIRED)
def _challenge_expired(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    return b.appraise(b.answer(ch), ch, now_ms=ch.expires_at * 1000)


@crafts(Reason.WRONG_AUDIENCE)
def _wrong_audience(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    return b.appraise(b.forge(ch, verifier_id="sg-1"), ch)


@crafts(Reason.UEID_MISMATCH)
def _ueid_mismatch(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    return b.appraise(b.forge(ch, ueid=vector_ueid("hx100-b")), ch)


@crafts(Reason.REGISTRATION_MISMATCH)
def _registration_mismatch(make: MakeBench) -> Appraisal:
    b = make()
    state, ch = b.next_round()
    registered_elsewhere = replace(state, device_key=b.world.device_key("hx100-b").public_key)
    ev = b.answer(ch, ROUND2_SIGN_S)
    return b.appraise(ev, ch, state=registered_elsewhere, now_ms=ROUND2_MS)


@crafts(Reason.NOT_ENROLLED)
def _not_enrolled(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    return b.appraise(b.answer(ch), ch, policy=Policy(allow_unknown_chips=False))


@crafts(Reason.EVIDENCE_REPLAY, Reason.COUNTER_ROLLBACK)
def _evidence_replay(make: MakeBench) -> Appraisal:
    b = make()
    ch, ev, state = b.accepted_round()
    return b.appraise(ev, ch, state=state, now_ms=ROUND1_MS + 1000)


# -- monotonic state ---------------------------------------------------------------------------


@crafts(Reason.BOOTCOUNT_ROLLBACK)
def _bootcount_rollback(make: MakeBench) -> Appraisal:
    b = make()
    state, ch = b.next_round()
    ev = b.forge(ch, ROUND2_SIGN_S, bootcount=state.bootcount - 1)
    return b.appraise(ev, ch, state=state, now_ms=ROUND2_MS)


@crafts(Reason.COUNTER_ROLLBACK)
def _counter_rollback(make: MakeBench) -> Appraisal:
    b = make()
    state, ch = b.next_round()
    ev = b.forge(ch, ROUND2_SIGN_S, attest_counter=state.attest_counter)
    return b.appraise(ev, ch, state=state, now_ms=ROUND2_MS)


@crafts(Reason.CLONE_SUSPECTED, Reason.COUNTER_ROLLBACK)
def _clone_suspected(make: MakeBench) -> SessionAppraisal:
    """A copy of the chip's state answers another challenge with the counter already used."""
    b = make()
    state, ch = b.next_round()
    ev = b.forge(ch, ROUND2_SIGN_S, attest_counter=state.attest_counter)
    record = ChipRecord(b.chain.device_cert, b.chain.manufacturer_cert, state)
    return appraise_session(
        ev,
        challenge=ch,
        chain=b.chain,
        record=record,
        anchors=b.world.anchors,
        revocations=Revocations(),
        policy=Policy(),
        now_ms=ROUND2_MS,
        node_checks=True,
    )


@crafts(Reason.METER_ROLLBACK)
def _meter_rollback(make: MakeBench) -> Appraisal:
    b = make()
    state, ch = b.next_round()
    lower = replace(state.meters, energy_mj=state.meters.energy_mj - 1)
    ev = b.forge(ch, ROUND2_SIGN_S, meters=lower)
    return b.appraise(ev, ch, state=state, now_ms=ROUND2_MS)


@crafts(Reason.METER_RATE_EXCEEDED)
def _meter_rate_exceeded(make: MakeBench) -> Appraisal:
    b = make()
    state, ch = b.next_round()
    elapsed_ms = ROUND2_MS - state.last_challenge_iat * 1000
    peak_flops = DEFAULT_MODELS["HX100"].peak_flops_per_s
    over = state.meters.flops + elapsed_ms * peak_flops // 1000 + 1
    ev = b.forge(ch, ROUND2_SIGN_S, meters=replace(b.chip.meters, flops=over))
    return b.appraise(ev, ch, state=state, now_ms=ROUND2_MS)


# -- revocation and posture ----------------------------------------------------------------------


@crafts(Reason.DEVICE_REVOKED)
def _device_revoked(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    revoked = Revocations(number=2, devices=frozenset({b.chip.ueid}))
    return b.appraise(b.answer(ch), ch, revocations=revoked)


@crafts(Reason.MANUFACTURER_REVOKED)
def _manufacturer_revoked(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    revoked = Revocations(number=2, manufacturers=frozenset({"mfr-a"}))
    return b.appraise(b.answer(ch), ch, revocations=revoked)


@crafts(Reason.FIRMWARE_MEASUREMENT_MISMATCH)
def _firmware_measurement_mismatch(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    ev = b.forge(ch, firmware_measurement=hashlib.sha256(b"patched firmware").digest())
    return b.appraise(ev, ch)


@crafts(Reason.FIRMWARE_OUTDATED)
def _firmware_outdated(make: MakeBench) -> Appraisal:
    b = make("hx100-oldfw")  # honest chip on 1.0.0; the default minimum is 1.1.0
    ch = b.challenge()
    return b.appraise(b.answer(ch), ch)


@crafts(Reason.FIRMWARE_UNKNOWN)
def _firmware_unknown(make: MakeBench) -> Appraisal:
    b = make("hx100-betafw")  # honest chip on 1.3.0, which the default policy does not know
    ch = b.challenge()
    return b.appraise(b.answer(ch), ch)


@crafts(Reason.FIRMWARE_REVOKED)
def _firmware_revoked(make: MakeBench) -> Appraisal:
    b = make()  # honest chip on 1.2.0, which its vendor's reference values have withdrawn
    ch = b.challenge()
    version = b.chip.firmware_version
    withdrawn = FirmwareReference(
        b.chip.hwmodel, version, simulated_firmware_measurement(version), FirmwareStatus.REVOKED
    )
    policy = Policy(references=MappingProxyType({(b.chip.hwmodel, version): withdrawn}))
    return b.appraise(b.answer(ch), ch, policy=policy)


@crafts(Reason.DEBUG_ENABLED)
def _debug_enabled(make: MakeBench) -> Appraisal:
    b = make()
    ch = b.challenge()
    return b.appraise(b.forge(ch, dbgstat=DBGSTAT_ENABLED), ch)


# -- Offline Licensing: a reported license state against the license ledger ---------------------
_LEDGER = LedgerView.of([IssuedLicense(1, 10**15, 1000), IssuedLicense(2, 10**15, 5000)], 2)


def _license_claim(make: MakeBench, state: LicenseState) -> SessionAppraisal:
    """A compromised chip reports ``state``; the verifier's ledger issued serials 1 and 2."""
    b = make()
    ch = b.challenge()
    return appraise_with_ledger(
        b.forge(ch, license_state=state),
        challenge=ch,
        chain=b.chain,
        state=None,
        anchors=b.world.anchors,
        revocations=Revocations(),
        policy=Policy(),
        now_ms=ROUND1_MS,
        ledger=_LEDGER,
    )


@crafts(LicenseReason.LICENSE_SERIAL_UNKNOWN)
def _license_serial_unknown(make: MakeBench) -> SessionAppraisal:
    return _license_claim(make, LicenseState(3, 0, 100))


@crafts(LicenseReason.LICENSE_BUDGET_EXCEEDS_ISSUED)
def _license_budget_exceeds(make: MakeBench) -> SessionAppraisal:
    return _license_claim(make, LicenseState(2, 2 * 10**15 + 1, 100))


@crafts(LicenseReason.LICENSE_SERIAL_ROLLBACK)
def _license_serial_rollback(make: MakeBench) -> SessionAppraisal:
    return _license_claim(make, LicenseState(1, 0, 100))


@crafts(LicenseReason.LICENSE_EXPIRY_IGNORED)
def _license_expiry_ignored(make: MakeBench) -> SessionAppraisal:
    return _license_claim(make, LicenseState(2, 1, 5000))


# -- Fixed Set: reported pods and links, through the verifier's pods part -------------------
#: pod ids of the pod vectors (attest/testvectors/pod_vectors.py): G1 = g0..g3, G2 = h0..h3,
#: X = g0 and x1, CX2 = cx0 and cx1 (size class 2)
G1, G2, CX2 = pod_id("G1"), pod_id("G2"), pod_id("CX2")


def _ueid(name: str) -> bytes:
    return member(name)[0]


def _pods_session(
    make: MakeBench,
    subject: str,
    *,
    pods: Iterable[str],
    revoked: Iterable[str] = (),
    peers: Iterable[tuple[str, Mapping[str, Any]]] = (),
    hwmodel: str = "HX100",
    **claims: Any,
) -> SessionAppraisal:
    """Pod chip ``subject`` (compromised) reports ``claims`` to verifier kl-1.

    The verifier holds the certificates of ``pods`` (``revoked`` ones revoked) and has already
    concluded a session of each of ``peers`` (name, claims) the way the node does, so their
    pod reports are stored; the subject's session is then appraised with the pods part.
    """
    world: World = make().world
    revocations = Revocations(number=2, pods=frozenset(pod_id(p) for p in revoked))
    policy = Policy()

    def attend(name: str, changes: Mapping[str, Any]) -> tuple[Bench, Any, bytes]:
        chip = pod_chip(world, name, hwmodel, CompromisedChip)
        assert isinstance(chip, CompromisedChip)
        b = Bench(world, chip)
        ch = b.challenge()
        return b, ch, b.forge(ch, **changes)

    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "kl-1.db", verifier_id="kl-1")
        try:
            part = PodsVerifier(store.db, world.anchors, policy)
            for name in pods:
                token, issuer_cert = pod_cert(name)
                part.register(token, issuer_cert, now_s=NOW_S)
            service = VerifierService(
                identity=world.verifiers["kl-1"],
                anchors=world.anchors,
                store=store,
                policy=policy,
                revocations=revocations,
                clock_ms=lambda: ROUND1_MS,
                parts={"pods": part},
            )
            for name, changes in peers:
                b, ch, ev = attend(name, changes)
                store.issue_challenge(ch.nonce, None, ch.issued_at * 1000, ch.expires_at * 1000)
                outcome = service.conclude(b.chain, ch, ev)
                assert outcome.verdict.evidence is not None, outcome.verdict
            b, ch, ev = attend(subject, claims)
            return appraise_session(
                ev,
                challenge=ch,
                chain=b.chain,
                record=store.get_chip(b.chip.ueid),
                anchors=world.anchors,
                revocations=revocations,
                policy=policy,
                now_ms=ROUND1_MS,
                mechanisms=[(part, part.load(b.chip.ueid))],
            )
        finally:
            store.close()


@crafts(PodReason.POD_UNKNOWN)
def _pod_unknown(make: MakeBench) -> SessionAppraisal:
    return _pods_session(make, "g0", pods=(), pod_id=G1)  # no certificate for G1


@crafts(PodReason.POD_NOT_MEMBER)
def _pod_not_member(make: MakeBench) -> SessionAppraisal:
    return _pods_session(make, "h0", pods=("G1",), pod_id=G1)  # G1 does not list h0


@crafts(PodReason.POD_REVOKED)
def _pod_revoked(make: MakeBench) -> SessionAppraisal:
    return _pods_session(make, "g0", pods=("G1",), revoked=("G1",), pod_id=G1)


@crafts(PodReason.POD_CONFLICT)
def _pod_conflict(make: MakeBench) -> SessionAppraisal:
    return _pods_session(make, "g0", pods=("G1", "X"), pod_id=G1)  # g0 is listed in both


@crafts(PodReason.LINK_NON_MEMBER)
def _link_non_member(make: MakeBench) -> SessionAppraisal:
    return _pods_session(make, "g0", pods=("G1", "G2"), pod_id=G1, links=[_ueid("h0")])


@crafts(PodReason.LINK_ONE_SIDED)
def _link_one_sided(make: MakeBench) -> SessionAppraisal:
    peers = [("g1", {"pod_id": G1})]  # g1 reports no link to g0
    return _pods_session(make, "g0", pods=("G1",), peers=peers, pod_id=G1, links=[_ueid("g1")])


@crafts(PodReason.COMPONENT_OVER_LIMIT)
def _component_over_limit(make: MakeBench) -> SessionAppraisal:
    # Two consumer chips (a pod of one each by model) linked inside a size-2 pod.
    peers = [("cx1", {"pod_id": CX2, "links": [_ueid("cx0")]})]
    return _pods_session(
        make, "cx0", pods=("CX2",), peers=peers, hwmodel="CX10", pod_id=CX2, links=[_ueid("cx1")]
    )


@crafts(PodReason.LINK_ATTEMPT_REFUSED)
def _link_attempt_refused(make: MakeBench) -> SessionAppraisal:
    # g0's firmware ignores the pod rule: it signed its acceptance of a link with h1 (pod G2);
    # h1 refused the link and forwards that acceptance to the verifier.
    t, _ = transcript("g0", "h1", "r1", ipod="G1", rpod="G2")
    accepted = LinkConfirm.for_session(t, pod_id=G1, accept=True).sign(member("g0")[1])
    peers = [("h1", {"pod_id": G2, "link_refusals": [accepted]})]
    return _pods_session(make, "g0", pods=("G1", "G2"), peers=peers, pod_id=G1)


# -- location verification: the landmark's part, with this round's timed PINGs ---------------


def _location_session(
    make: MakeBench,
    *,
    at: str = "kl-1",
    rtt_ns: int = rtt_for_bound(20_000),
    region: str = "MY",
    stored: Iterable[tuple[str, int]] = (),
    concurrent: Iterable[OpenSession] = (),
    bad_pong: bool = False,
) -> SessionAppraisal:
    """The chip answers 3 PINGs from landmark ``at`` (each ``rtt_ns``); the landmark's part
    holds records of ``stored`` (landmark, least round trip) made one minute earlier."""
    import json

    b = make()
    world = b.world
    identity = landmark(world, at)
    lat, lon = place_of(at).lat, place_of(at).lon
    with tempfile.TemporaryDirectory() as folder:
        regions = Path(folder) / "regions.json"
        regions.write_text(json.dumps(sample_regions()))
        store = SqliteStore(Path(folder) / "landmark.db", verifier_id=identity.verifier_id)
        try:
            part = LocationVerifier(
                identity=identity,
                anchors=world.anchors,
                store=store,
                section=LocationSection(
                    enabled=True, position=f"{lat},{lon}", default_region=region or ""
                ),
                regions=read_regions(regions.read_text()) if region else None,
            )
            for other, rtt in stored:
                peer = LocationVerifier(
                    identity=landmark(world, other),
                    anchors=world.anchors,
                    store=store,
                    section=LocationSection(
                        enabled=True, position=f"{place_of(other).lat},{place_of(other).lon}"
                    ),
                )
                peer_part_session(peer, b, rtt, ROUND1_MS - 60_000)
            nonces = [bytes([i]) * 32 for i in range(3)]
            pings = [
                TimedPing(n, b.chip.answer_ping(n if not (bad_pong and i == 0) else b"\xee" * 32,
                                                identity.verifier_id), rtt_ns)
                for i, n in enumerate(nonces)
            ]  # fmt: skip
            view = part.load_session(b.chip.ueid, LiveSession(b"s" * 16, tuple(pings)))
            view = replace(view, concurrent=tuple(concurrent))
            ch = b.challenge()
            return appraise_session(
                b.answer(ch),
                challenge=ch,
                chain=b.chain,
                record=None,
                anchors=world.anchors,
                revocations=Revocations(),
                policy=Policy(),
                now_ms=ROUND1_MS,
                mechanisms=[(part, view)],
            )
        finally:
            store.close()


def peer_part_session(peer: LocationVerifier, b: Bench, rtt_ns: int, now_ms: int) -> None:
    """Another landmark measures the chip and stores its record, as after a session there."""
    from attest.location.appraisal import Measurement, measure
    from attest.location.messages import record_digest

    record = measure(
        Measurement((rtt_ns,)),
        landmark_id=peer.identity.verifier_id,
        position=peer.position,
        ueid=b.chip.ueid,
        session_nonce=bytes(32),
        now_ms=now_ms,
        allowance_ns=peer.section.allowance_ns,
        clock_resolution_ns=1,
    )
    assert record is not None
    token = record.sign(peer.identity.key)
    peer.tables.put_record(
        record_digest(token), record.ueid, record.landmark_id, record.issued_at * 1000, token,
        peer.identity.cert,
    )  # fmt: skip


@crafts(LocationReason.LOCATION_UNVERIFIED)
def _location_unverified(make: MakeBench) -> SessionAppraisal:
    # 400 km around Kuala Lumpur reach Sumatra and Singapore: no proof of Malaysia
    return _location_session(make, rtt_ns=rtt_for_bound(400_000))


@crafts(LocationReason.LOCATION_OUTSIDE_REGION)
def _location_outside(make: MakeBench) -> SessionAppraisal:
    # a chip licensed for Malaysia answers the Manila landmark within 20 km
    return _location_session(make, at="mnl-1")


@crafts(LocationReason.LOCATION_PING_INVALID)
def _location_ping_invalid(make: MakeBench) -> SessionAppraisal:
    # one PONG answers a nonce that was never sent (a relay guessing, a replay)
    return _location_session(make, bad_pong=True)


def test_clone_suspected_by_impossible_travel(make_bench: MakeBench) -> None:
    # the same device key answered Manila (within 20 km) a minute before Kuala Lumpur
    session = _location_session(make_bench, region="", stored=[("mnl-1", rtt_for_bound(20_000))])
    assert session.verdict.reasons == (Reason.CLONE_SUSPECTED,)


def test_clone_suspected_by_concurrent_sessions(make_bench: MakeBench) -> None:
    other = OpenSession("sg-1/0a0b0c0d", bytes(16), ROUND1_MS - 5000, ROUND1_MS - 1000)
    session = _location_session(make_bench, region="", concurrent=[other])
    assert session.verdict.reasons == (Reason.CLONE_SUSPECTED,)
    assert isinstance(session.commit, Enroll)  # the commit rule: the core accepted it


# -- federation: a partner authority's chip, routed by the agreement in force -----------------


def _federation_session(
    make: MakeBench, mc: bytes | None = None, *, expires_at: int | None = None
) -> SessionAppraisal:
    """A chip endorsed through ``authority.sg`` (or ``mc``) appraised by a home node."""
    b = make()
    chain = partner_chain(b.world, mc=mc)
    a = agreement(b.world) if expires_at is None else agreement(b.world, expires_at=expires_at)
    route = federation(b.world, a).route(chain, now_s=ROUND1_MS // 1000)
    assert route is not None
    ch = b.challenge()
    return appraise_session(
        b.answer(ch),
        challenge=ch,
        chain=chain,
        record=None,
        anchors=b.world.anchors,
        revocations=Revocations(),
        policy=Policy(),
        now_ms=ROUND1_MS,
        route=route,
    )


_CHAIN = (Reason.CERT_CHAIN_INVALID, Reason.BAD_SIGNATURE)


def _partner_signatures(change: Callable[[list[Any]], list[Any]]) -> bytes:
    """The partner's 3-of-5 manufacturer certificate with its signature list changed."""
    token = partner_mc()
    body = decode(token[2:])
    body[3] = change(body[3])
    return token[:2] + encode(body)


@crafts(FederationReason.AUTHORITY_NOT_RECOGNISED, *_CHAIN)
def _authority_not_recognised(make: MakeBench) -> SessionAppraisal:
    return _federation_session(make, partner_mc(issuer=TH))  # a member it does not recognise


@crafts(FederationReason.AGREEMENT_EXPIRED, *_CHAIN)
def _agreement_expired(make: MakeBench) -> SessionAppraisal:
    return _federation_session(make, expires_at=ROUND1_MS // 1000)


@crafts(FederationReason.ACT_MALFORMED, *_CHAIN)
def _act_malformed(make: MakeBench) -> SessionAppraisal:
    # validly signed by three officers, but not a ManufacturerCert payload
    return _federation_session(
        make, sign_multi(ContentType.MANUFACTURER_CERT, encode({1: SG}), officers(SG)[:3])
    )


@crafts(FederationReason.ACT_WRONG_CONTENT_TYPE, *_CHAIN)
def _act_wrong_content_type(make: MakeBench) -> SessionAppraisal:
    mc = decode(partner_mc()[2:])[2]  # the honest payload, signed as a VerifierCert
    return _federation_session(make, sign_multi(ContentType.VERIFIER_CERT, mc, officers(SG)[:3]))


@crafts(FederationReason.ACT_BAD_SIGNATURE, *_CHAIN)
def _act_bad_signature(make: MakeBench) -> SessionAppraisal:
    def flip(sigs: list[Any]) -> list[Any]:
        p, u, sig = sigs[0]
        return [[p, u, sig[:-1] + bytes([sig[-1] ^ 1])], *sigs[1:]]

    return _federation_session(make, _partner_signatures(flip))


@crafts(FederationReason.ACT_UNKNOWN_OFFICER, *_CHAIN)
def _act_unknown_officer(make: MakeBench) -> SessionAppraisal:
    # officer 5 is not on committee 1 (it joins on rotation): a key the node does not know
    extra = decode(sign_multi(ContentType.MANUFACTURER_CERT, b"\xa0", officers(SG, 6)[5:])[2:])
    assert extra[3][0][1] == {4: kid_of(officers(SG, 6)[5].public_key)}
    return _federation_session(make, _partner_signatures(lambda sigs: [*sigs, extra[3][0]]))


@crafts(FederationReason.ACT_DUPLICATE_OFFICER, *_CHAIN)
def _act_duplicate_officer(make: MakeBench) -> SessionAppraisal:
    # two officers, one of them twice: three signatures, two officers
    return _federation_session(make, _partner_signatures(lambda sigs: [sigs[0], sigs[0], sigs[1]]))


@crafts(FederationReason.ACT_TOO_FEW_SIGNATURES, *_CHAIN)
def _act_too_few_signatures(make: MakeBench) -> SessionAppraisal:
    return _federation_session(make, partner_mc(signers=2))  # 2 of 5 where 3 are needed


# -- tests -------------------------------------------------------------------------------------


def _outcome(result: Appraisal | SessionAppraisal) -> tuple[Verdict, ChipState | None]:
    """The verdict that is signed, and the chip's state the store is told to keep."""
    if isinstance(result, Appraisal):
        return result.verdict, result.new_state
    commit = result.commit
    if isinstance(commit, Enroll):
        return result.verdict, commit.record.state
    if isinstance(commit, Advance):
        return result.verdict, commit.state
    return result.verdict, None


def test_every_reason_has_a_crafter() -> None:
    missing = set(REASONS) - set(CRAFTERS) - DOCUMENT_ONLY
    assert not missing, f"no crafter for {sorted(r.name for r in missing)}"


@pytest.mark.parametrize(
    "reason", [r for r in REASONS if r not in DOCUMENT_ONLY], ids=lambda r: r.name
)
def test_reason_is_produced(reason: ReasonCode, make_bench: MakeBench) -> None:
    crafter, expected = CRAFTERS[reason]
    result = crafter(make_bench)
    verdict, new_state = _outcome(result)
    assert reason in verdict.reasons
    assert set(verdict.reasons) == expected
    assert list(verdict.reasons) == sorted(verdict.reasons), "reasons are reported in code order"
    assert verdict.tier == max(r.tier for r in verdict.reasons)
    if isinstance(result, Appraisal):  # the core's own reason
        if verdict.tier is Tier.CONTRAINDICATED:
            assert new_state is None
        else:
            assert new_state is not None  # a warning still accepts the evidence
    else:
        # The commit rule (attest/mechanism.py): a mechanism's or the node's reason judges the
        # verdict (even to contraindicated), and the chip's counters and meters advance exactly
        # when the core accepted the Evidence.
        assert (new_state is not None) == (result.core.new_state is not None)


def test_tier_arithmetic() -> None:
    warnings = {r for r in REASONS if r.tier is Tier.WARNING}
    assert warnings == {
        Reason.FIRMWARE_OUTDATED,
        Reason.FIRMWARE_UNKNOWN,
        Reason.DEBUG_ENABLED,
        PodReason.POD_UNKNOWN,
        PodReason.LINK_ONE_SIDED,
        LocationReason.LOCATION_UNVERIFIED,
    }
    assert all(r.tier is Tier.CONTRAINDICATED for r in set(REASONS) - warnings)
    assert tier_of(()) is Tier.AFFIRMING
    assert tier_of([Reason.DEBUG_ENABLED]) is Tier.WARNING
    assert tier_of([Reason.DEBUG_ENABLED, Reason.FIRMWARE_UNKNOWN]) is Tier.WARNING
    # the worst part decides, whatever the order
    assert tier_of([Reason.DEBUG_ENABLED, Reason.NONCE_MISMATCH]) is Tier.CONTRAINDICATED
    assert tier_of([Reason.NONCE_MISMATCH, Reason.DEBUG_ENABLED]) is Tier.CONTRAINDICATED
    assert Tier.AFFIRMING < Tier.WARNING < Tier.CONTRAINDICATED


def test_warning_plus_contraindication_is_contraindicated(bench: Bench) -> None:
    ch = bench.challenge()
    verdict = bench.appraise(bench.forge(ch, dbgstat=DBGSTAT_ENABLED, nonce=bytes(32)), ch)
    assert verdict.reasons == (Reason.NONCE_MISMATCH, Reason.DEBUG_ENABLED)
    assert verdict.tier is Tier.CONTRAINDICATED
    assert verdict.new_state is None


def test_bad_signature_masks_payload_reasons(bench: Bench) -> None:
    state, ch = bench.next_round()
    lies = bench.forge(
        ch, ROUND2_SIGN_S, attest_counter=0, nonce=bytes(32), dbgstat=DBGSTAT_ENABLED
    )
    # Validly signed, the lies are all reported ...
    signed = bench.appraise(lies, ch, state=state, now_ms=ROUND2_MS)
    assert {Reason.COUNTER_ROLLBACK, Reason.NONCE_MISMATCH, Reason.DEBUG_ENABLED} <= set(
        signed.reasons
    )
    # ... with one signature bit flipped, nothing from the payload is.
    verdict = bench.appraise(_flip_last_signature_bit(lies), ch, state=state, now_ms=ROUND2_MS)
    assert verdict.reasons == (Reason.BAD_SIGNATURE,)
    assert verdict.evidence is None
    assert verdict.new_state is None


def test_first_contact_happy_path(bench: Bench) -> None:
    bench.chip.run_workload(10, 0.5)
    ch = bench.challenge()
    ev = bench.answer(ch)
    verdict = bench.appraise(ev, ch)
    assert verdict.tier is Tier.AFFIRMING and verdict.affirming
    assert verdict.reasons == ()
    assert verdict.ueid == bench.chip.ueid
    assert verdict.evidence is not None and verdict.evidence.nonce == ch.nonce
    assert verdict.evidence_digest == hashlib.sha256(ev).digest()
    state = verdict.new_state
    assert state is not None
    assert state.ueid == bench.chip.ueid
    assert state.device_key == bench.chip.public_key
    assert state.hwmodel == "HX100"
    assert (state.bootcount, state.attest_counter) == (1, 1)
    assert state.meters == bench.chip.meters != Meters()
    assert state.last_challenge_iat == ch.issued_at
    assert state.last_seen_ms == ROUND1_MS
    assert state.last_evidence_digest == verdict.evidence_digest
    assert state.status is ChipStatus.ACTIVE


def test_second_round_happy_path(bench: Bench) -> None:
    state, ch = bench.next_round()
    ev = bench.answer(ch, ROUND2_SIGN_S)
    verdict = bench.appraise(ev, ch, state=state, now_ms=ROUND2_MS)
    assert verdict.tier is Tier.AFFIRMING, verdict.reasons
    new = verdict.new_state
    assert new is not None
    assert new.attest_counter == state.attest_counter + 1
    assert new.meters.flops > state.meters.flops
    assert new.last_challenge_iat == ch.issued_at
    # The state advanced: the same evidence is now a replay.
    again = bench.appraise(ev, ch, state=new, now_ms=ROUND2_MS + 1)
    assert Reason.EVIDENCE_REPLAY in again.reasons and again.new_state is None
