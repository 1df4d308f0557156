"""The verification core: one pure function that appraises one piece of Evidence.

Theory of operation
-------------------
:func:`appraise` takes everything it needs as arguments — the evidence bytes, the challenge
this verifier issued, the chip's endorsement chain, the chip's last accepted state, the trust
anchors, the current revocations, the policy and the time — and returns a :class:`Verdict`. It
reads no clock, does no I/O and keeps no state (the optional chain cache is a memo of a pure
function). The daemon, the published vectors, the benchmarks and the timing test all drive this
one function.

Every check runs on every call. Each produces a boolean; the booleans are combined at the end
without early exit, so that the running time should not depend on *which* check failed (CPython
gives no hard guarantee: ``attest bench timing`` measures what is left, tens of nanoseconds
between failure classes on a ~80 µs call at the time of writing). Comparisons of
attacker-influenced byte strings use libsodium's constant-time ``sodium_memcmp``. The only
early return is for bytes that are not a COSE_Sign1 at all (nothing to check; the fact is
public anyway). When the chain, the content type or the signature fails, checks on payload
values still run (same work) but their outcomes are masked: nothing in an unauthenticated
payload is reported or trusted.

The evidence signature is checked against the protected header of the *expected* type
(Evidence), not the one the sender put on the wire: a token of another type fails both the
content-type check and the signature (domain separation).

When the tier is better than contraindicated, the appraisal carries the chip's new state; the
caller must store it (and consume the nonce) atomically and durably before reporting success.
Mechanisms (licensing, pods ...) judge their own claims afterwards, on the same appraisal:
:func:`attest.mechanism.appraise_session` combines both into the one verdict that is signed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from attest.codec.cose import parse_sign1, protected_header, sig_structure
from attest.errors import DecodeError
from attest.keys import PublicKey, ct_equal, ed25519_verify
from attest.messages.attestation import NO_CHIP_UEID, Challenge, Evidence, Firmware, Meters
from attest.messages.claims import DBGSTAT_ENABLED
from attest.messages.content import ContentType
from attest.messages.revocation import Revocations
from attest.verify.chain import ChainCache, DeviceChain, TrustAnchors, verify_device_chain
from attest.verify.policy import ChipModel, FirmwareStatus, Policy
from attest.verify.reasons import ENVELOPE, Reason, ReasonCode, Tier, tier_of
from attest.verify.state import ChipState, ChipStatus

_EVIDENCE_PROTECTED = protected_header(ContentType.EVIDENCE)
# Stand-ins used when a real value is missing, so the same operations run on every path.
_NO_KEY = PublicKey(bytes(32))
_NO_MODEL = ChipModel("", 0, 0, 0, 0)
_GENESIS = ChipState.enrolled(b"", _NO_KEY, "")
_EMPTY_EVIDENCE = Evidence(
    verifier_id="-",
    nonce=bytes(32),
    ueid=NO_CHIP_UEID,
    uptime_s=0,
    dbgstat=1,
    bootcount=0,
    firmware=Firmware((0,), bytes(32)),
    attest_counter=0,
    meters=Meters(),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judgement of one Evidence: what a verifier signs in its result."""

    tier: Tier
    #: in ascending code order (core and mechanism reasons alike)
    reasons: tuple[ReasonCode, ...]
    evidence_digest: bytes
    #: the chip's identity from its (verified) device certificate, else None
    ueid: bytes | None
    #: the parsed evidence when it was authentic, else None
    evidence: Evidence | None

    @property
    def affirming(self) -> bool:
        return self.tier == Tier.AFFIRMING


@dataclass(frozen=True, slots=True)
class Appraisal:
    """The verification core's outcome: its verdict, and the state it accepted."""

    verdict: Verdict
    #: the chip's state after this Evidence if the core accepted it (its tier is better than
    #: contraindicated), else None
    new_state: ChipState | None

    @property
    def tier(self) -> Tier:
        return self.verdict.tier

    @property
    def reasons(self) -> tuple[ReasonCode, ...]:
        return self.verdict.reasons

    @property
    def evidence(self) -> Evidence | None:
        return self.verdict.evidence

    @property
    def ueid(self) -> bytes | None:
        return self.verdict.ueid

    @property
    def evidence_digest(self) -> bytes:
        return self.verdict.evidence_digest

    @property
    def affirming(self) -> bool:
        return self.verdict.affirming


#: constant-time byte-string equality (see attest.keys.ct_equal)
_eq = ct_equal


def appraise(
    evidence: bytes,
    *,
    challenge: Challenge,
    chain: DeviceChain,
    state: ChipState | None,
    anchors: TrustAnchors,
    revocations: Revocations,
    policy: Policy,
    now_ms: int,
    cache: ChainCache | None = None,
) -> Appraisal:
    """Appraise ``evidence`` against explicit inputs; see the module docstring and SPEC.md §9."""
    digest = hashlib.sha256(evidence).digest() if type(evidence) is bytes else bytes(32)
    try:
        msg = parse_sign1(evidence)
    except DecodeError:
        return Appraisal(
            Verdict(Tier.CONTRAINDICATED, (Reason.MALFORMED,), digest, None, None), None
        )

    # -- chain, content type, signature ----------------------------------------------------------
    certs = verify_device_chain(chain, anchors, cache)
    chain_ok = certs is not None
    if certs is not None:
        device, manufacturer = certs
        device_key, device_ueid, mfr_id = device.public_key, device.ueid, device.issuer
        hwmodel, mfr_expiry_ms = device.hwmodel, manufacturer.expires_at * 1000
    else:
        device_key, device_ueid, mfr_id, hwmodel, mfr_expiry_ms = _NO_KEY, b"", "", "", 0
    ct_ok = _eq(msg.protected, _EVIDENCE_PROTECTED) & (not msg.unprotected)
    sig_ok = ed25519_verify(
        device_key.raw, sig_structure(_EVIDENCE_PROTECTED, msg.payload), msg.signature
    )
    try:
        ev = Evidence.from_payload(msg.payload)
        well_formed = True
    except DecodeError:
        ev, well_formed = _EMPTY_EVIDENCE, False
    authentic = chain_ok & ct_ok & sig_ok & well_formed

    # -- payload checks (always computed; masked unless authentic) -------------------------------
    prior = state if state is not None else _GENESIS
    model = policy.models.get(hwmodel, _NO_MODEL)
    registered_ok = (state is None) | (
        _eq(prior.ueid, device_ueid) & _eq(prior.device_key.raw, device_key.raw)
    )
    elapsed_ms = max(0, now_ms - prior.last_challenge_iat * 1000)
    new_meters, old_meters = ev.meters.as_tuple(), prior.meters.as_tuple()
    meters_ok = True
    rate_ok = True
    for new, old, peak in zip(new_meters, old_meters, model.peaks(), strict=True):
        meters_ok &= new >= old
        rate_ok &= (new - old) * 1000 <= elapsed_ms * peak
    # a model with vendor references is judged by them alone; others by the version table
    ref = policy.references.get((hwmodel, ev.firmware_version))
    expected_measurement = (
        ref.measurement
        if ref is not None
        else None
        if hwmodel in policy.referenced_models
        else policy.firmware_measurements.get(ev.firmware_version)
    )
    fw_known = expected_measurement is not None
    fw_status = ref.status if ref is not None else FirmwareStatus.CURRENT

    checks: tuple[tuple[Reason, bool], ...] = (
        (Reason.MALFORMED, not well_formed),
        (Reason.WRONG_CONTENT_TYPE, not ct_ok),
        (Reason.BAD_SIGNATURE, not sig_ok),
        (Reason.CERT_CHAIN_INVALID, not chain_ok),
        (Reason.CERT_EXPIRED, now_ms >= mfr_expiry_ms),
        (Reason.UNKNOWN_HWMODEL, model is _NO_MODEL),
        (Reason.NONCE_MISMATCH, not _eq(ev.nonce, challenge.nonce)),
        (Reason.CHALLENGE_EXPIRED, now_ms >= challenge.expires_at * 1000),
        (Reason.WRONG_AUDIENCE, not _eq(ev.verifier_id.encode(), challenge.verifier_id.encode())),
        (Reason.UEID_MISMATCH, not _eq(ev.ueid, device_ueid)),
        (Reason.REGISTRATION_MISMATCH, not registered_ok),
        (Reason.NOT_ENROLLED, (state is None) & (not policy.allow_unknown_chips)),
        (Reason.EVIDENCE_REPLAY, _eq(digest, prior.last_evidence_digest)),
        (Reason.BOOTCOUNT_ROLLBACK, ev.bootcount < prior.bootcount),
        (Reason.COUNTER_ROLLBACK, ev.attest_counter <= prior.attest_counter),
        (Reason.METER_ROLLBACK, not meters_ok),
        # no bound to exceed when the model (and so its peak rates) is unknown
        (Reason.METER_RATE_EXCEEDED, meters_ok & (not rate_ok) & (model is not _NO_MODEL)),
        (
            Reason.DEVICE_REVOKED,
            (device_ueid in revocations.devices) | (prior.status is ChipStatus.REVOKED),
        ),
        (Reason.MANUFACTURER_REVOKED, mfr_id in revocations.manufacturers),
        (
            Reason.FIRMWARE_MEASUREMENT_MISMATCH,
            fw_known & (not _eq(ev.firmware_measurement, expected_measurement or b"")),
        ),
        (
            Reason.FIRMWARE_OUTDATED,
            (ev.firmware_version < policy.min_firmware) | (fw_status is FirmwareStatus.OUTDATED),
        ),
        (Reason.FIRMWARE_UNKNOWN, not fw_known),
        (Reason.DEBUG_ENABLED, ev.dbgstat == DBGSTAT_ENABLED),
        (Reason.FIRMWARE_REVOKED, fw_status is FirmwareStatus.REVOKED),
    )
    # ``r in ENVELOPE`` is evaluated for every failed check, authentic or not, so that masking
    # costs the same whichever check failed (the timing benchmark compares failure classes).
    reasons: tuple[ReasonCode, ...] = tuple(
        sorted([r for r, failed in checks if failed and (r in ENVELOPE or authentic)])
    )
    tier = tier_of(reasons)

    if tier is Tier.CONTRAINDICATED:
        verdict = Verdict(tier, reasons, digest, device_ueid or None, ev if authentic else None)
        return Appraisal(verdict, None)
    new_state = ChipState(
        ueid=device_ueid,
        device_key=device_key,
        hwmodel=hwmodel,
        bootcount=ev.bootcount,
        attest_counter=ev.attest_counter,
        meters=ev.meters,
        last_challenge_iat=challenge.issued_at,
        last_seen_ms=now_ms,
        last_evidence_digest=digest,
    )
    return Appraisal(Verdict(tier, reasons, digest, device_ueid, ev), new_state)
