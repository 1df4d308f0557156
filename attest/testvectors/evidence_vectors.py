"""Evidence-appraisal vectors (vectors/evidence_appraisal.json) from the deterministic world.

Each case states the outcome it is *meant* to have; the generator runs the real implementation
on it and refuses to write a file if the two disagree, so a vector can never silently pin a
bug. The output is byte-identical across runs: keys and times are fixed, Ed25519 is
deterministic, cases are listed in a fixed order and JSON is written with a fixed layout.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cbor2
import nacl.signing
from nacl.bindings import crypto_scalarmult_ed25519_base_noclamp, crypto_scalarmult_ed25519_noclamp

from attest.chip.adversary import CompromisedChip
from attest.codec.cbor import decode, encode
from attest.codec.cose import protected_header, sig_structure, sign1
from attest.federation.reasons import FederationReason
from attest.hardware import DEFAULT_MODELS, simulated_firmware_measurement
from attest.keys import SigningKey
from attest.messages import claims as C
from attest.messages.attestation import Challenge, Evidence, Meters
from attest.messages.certs import DeviceCert
from attest.messages.claims import DBGSTAT_ENABLED
from attest.messages.content import ContentType
from attest.messages.reference import FirmwareReference, FirmwareStatus
from attest.messages.revocation import Revocations
from attest.testvectors.check import (
    EVIDENCE_ALGORITHM,
)
from attest.testvectors.format import VectorError, annotate, vector_document
from attest.testvectors.world import (
    CERTIFIED_S,
    NOW_S,
    ROUND1_MS,
    ROUND1_S,
    ROUND1_SIGN_S,
    ROUND2_MS,
    ROUND2_S,
    ROUND2_SIGN_S,
    World,
    build_world,
    vector_key,
    vector_ueid,
)
from attest.verify.chain import DeviceChain
from attest.verify.core import Appraisal, appraise
from attest.verify.policy import Policy
from attest.verify.reasons import (
    NODE_REASONS,
    Reason,
    ReasonCode,
    Tier,
    registered_reasons,
    tier_of,
)
from attest.verify.state import ChipState, ChipStatus

#: Group order of the Ed25519 base point (RFC 8032 §5.1).
ED25519_L = 2**252 + 27742317777372353535851937790883648493

_TAG18 = b"\xd2"
_NO_REVOCATIONS = Revocations()
_EVIDENCE_CT = ContentType.EVIDENCE


# ================================================================================================
# Evidence appraisal
# ================================================================================================

EVIDENCE_NOTES: dict[str, str] = {
    "FirstContact": "The verifier holds no state for the chip (priorState is null): first contact.",
    "Enrolled": (
        "priorState is the registry entry of an enrolled chip that was never appraised: "
        "counters and meters zero, lastEvidenceDigest all zeros."
    ),
    "SecondRound": "priorState is the state stored after an earlier accepted appraisal.",
    "ChipModel": "Exercises the chip models named in the policy (HX100, HX800, CX10).",
    "Warning": (
        "Expected tier warning: result is valid (the evidence is accepted and the chip state "
        "advances to newState) although the verdict carries warning reasons."
    ),
    "Boundary": "Time or limit exactly at, or one unit either side of, a bound.",
    "MeterBoundary": (
        "Meter growth since priorState exactly at peak x (nowMs - lastChallengeIat x 1000) / 1000, "
        "or one unit over it."
    ),
    "Malformed": "The evidence bytes are not a well-formed, deterministic Evidence COSE_Sign1.",
    "SignedMalformed": (
        "The COSE envelope and signature are valid (the device key signed it) but the payload is "
        "not a valid deterministic Evidence claims map."
    ),
    "ContentType": "Domain separation: the token is not (only) an Evidence-type COSE_Sign1.",
    "BadSignature": "The signature does not verify under the device key of the presented chain.",
    "Ed25519Strict": (
        "Ed25519 is verified with libsodium crypto_sign_open semantics; see cose_sign1.json notes."
    ),
    "CertificateChain": "The device endorsement chain does not verify or has expired.",
    "Policy": "The outcome depends on the group's policy (known models, enrolment).",
    "Freshness": "Nonce, challenge expiry or audience binding.",
    "Binding": "The evidence or the chain does not belong to the chip the verifier knows.",
    "Replay": "Evidence already accepted is presented again.",
    "Rollback": "A monotonic value (boot count, counter, meter) went backwards.",
    "Revocation": "The revocation list or the stored chip status revokes the chip or its maker.",
    "FirmwarePosture": "Firmware version or measurement against the policy.",
    "Debug": "The chip reports debug enabled (dbgstat 0).",
    "CompromisedChip": (
        "The claims were signed with the chip's genuine device key (a physically attacked chip "
        "signs what it is told): signature and chain are valid, the claims are false."
    ),
    "Masking": (
        "An envelope failure (signature, content type, chain, malformed payload) hides every "
        "payload-derived reason: claims that are not authentic are neither reported nor trusted."
    ),
    "TierArithmetic": "Several reasons of different tiers: the tier is the worst of them.",
    "EdgeValue": "Largest integers (2^64 - 1), zero meters, or every optional claim present.",
}

EVIDENCE_HEADER = [
    "Appraisal of chip Evidence (an EAT in a COSE_Sign1 signed with the chip's device key).",
    "Each test gives the evidence bytes and everything the verifier knows when appraising them:",
    "the challenge it issued (signed by verifierCert, which chains to the group's trust anchors),",
    "the chip's endorsement chain (deviceCert <- manufacturerCert <- authority), the chip's stored",
    "state (priorState, null on first contact), the revocation list, the group's policy and the",
    "time nowMs (milliseconds since the Unix epoch).",
    "The expected verdict is the EAR tier (affirming 2, warning 32, contraindicated 96) and the",
    "complete list of reason codes, sorted by code; the tier is the worst tier of the reasons.",
    "newState is the chip state the verifier must store after a valid result (null if invalid);",
    "its lastChallengeIat is the issue time of the answered challenge, which the next rate",
    "bound starts from.",
    'result "valid" means the evidence is accepted and the chip state advances (tier affirming or',
    'warning); "invalid" means contraindicated: nothing is accepted and the state is unchanged.',
    "Reasons derived from the payload are reported only if the envelope is authentic (well-formed",
    "payload, Evidence content type, empty unprotected header, valid signature, valid chain).",
    "Meter rate bound: for each meter, (new - old) x 1000 <= (nowMs - lastChallengeIat x 1000) x",
    "peak, with the peaks of the device certificate's hwmodel in the policy.",
    "Byte strings are hex. Integers (meters) may exceed 2^53: parse them as 64-bit unsigned.",
]


@dataclass(frozen=True, slots=True)
class AppraisalCase:
    """One evidence-appraisal test: inputs and the reasons it is written to produce."""

    comment: str
    flags: tuple[str, ...]
    evidence: bytes
    challenge: bytes
    chain: DeviceChain
    expect: tuple[Reason, ...]
    prior: ChipState | None = None
    revocations: Revocations = _NO_REVOCATIONS
    now_ms: int = ROUND1_MS
    verifier: str = "kl-1"


@dataclass(frozen=True, slots=True)
class AppraisalGroup:
    comment: str
    policy: Policy
    cases: tuple[AppraisalCase, ...]


@dataclass
class Session:
    """One chip (fresh from the world) going through honest rounds against the real core.

    Sessions make prior states realistic: the state a second-round case starts from is the one
    the verification core itself returned for an accepted first round.
    """

    world: World
    chip_name: str
    label: str
    policy: Policy = field(default_factory=Policy)
    chip: CompromisedChip = field(init=False)

    def __post_init__(self) -> None:
        self.chip = self.world.chip(self.chip_name)
        # The chip has been busy for half an hour before anyone asked (meters are not zero).
        self.chip.run_workload(1800, 0.5)

    @property
    def chain(self) -> DeviceChain:
        return self.chip.chain

    def challenge(
        self, round_no: int, *, verifier: str = "kl-1", tag: str = ""
    ) -> tuple[Challenge, bytes]:
        """The challenge of round 1 or 2 (as accepted by the chip) and its token."""
        issued = ROUND1_S if round_no == 1 else ROUND2_S
        _, token = self.world.challenge(
            f"{self.label}/round{round_no}{tag}", verifier=verifier, issued_at=issued
        )
        parsed = self.chip.accept_challenge(self.world.verifiers[verifier].cert, token, issued)
        return parsed, token

    def answer(self, challenge: Challenge, round_no: int = 1) -> bytes:
        return self.chip.answer(challenge, ROUND1_SIGN_S if round_no == 1 else ROUND2_SIGN_S)

    def claims(self, challenge: Challenge, round_no: int = 1) -> Evidence:
        """The honest claims for ``challenge`` with the counter advanced, as ``answer`` would."""
        self.chip.attest_counter += 1
        at = ROUND1_SIGN_S if round_no == 1 else ROUND2_SIGN_S
        return self.chip.current_evidence(challenge, at)

    def forge(self, challenge: Challenge, round_no: int = 1, **changes: Any) -> bytes:
        """Evidence with some claims replaced, signed by the chip's genuine key."""
        ev = self.claims(challenge, round_no).replaced(**changes)
        return self.chip.sign_arbitrary_evidence(ev)

    def accepted_round1(self) -> tuple[bytes, bytes, ChipState]:
        """Run an honest first round through the core: (challenge token, evidence, new state)."""
        ch, token = self.challenge(1)
        ev = self.answer(ch, 1)
        verdict = appraise(
            ev,
            challenge=ch,
            chain=self.chain,
            state=None,
            anchors=self.world.anchors,
            revocations=_NO_REVOCATIONS,
            policy=self.policy,
            now_ms=ROUND1_MS,
        )
        if verdict.new_state is None:
            raise VectorError(f"{self.label}: honest first round rejected: {verdict.reasons}")
        return token, ev, verdict.new_state

    def round2(self) -> tuple[ChipState, Challenge, bytes]:
        """Accepted round 1, then a minute of work: (state after round 1, challenge 2, token 2)."""
        _, _, state = self.accepted_round1()
        self.chip.run_workload(60, 0.5)
        ch, token = self.challenge(2)
        return state, ch, token


def _cose(
    protected: Any, unprotected: Any, payload: Any, signature: Any, *, tag: bool = True
) -> bytes:
    """A COSE_Sign1 assembled field by field (for tokens no honest signer would make)."""
    return (_TAG18 if tag else b"") + encode([protected, unprotected, payload, signature])


def _fields(token: bytes) -> list[Any]:
    body = decode(token[1:])
    assert isinstance(body, list)
    return body


def _with_signature(token: bytes, signature: bytes) -> bytes:
    protected, unprotected, payload, _ = _fields(token)
    return _cose(protected, unprotected, payload, signature)


def _flip_bit(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _sign_raw(key: SigningKey, protected: bytes, payload: bytes) -> bytes:
    """A COSE_Sign1 whose signature covers exactly ``protected`` and ``payload``."""
    return _cose(protected, {}, payload, key.sign(sig_structure(protected, payload)))


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    if data.count(old) != 1:
        raise VectorError(f"pattern {old.hex()} occurs {data.count(old)} times")
    return data.replace(old, new)


def _alg_last(protected: bytes) -> bytes:
    """``{1: -8, 3: ct}`` re-encoded with the content type first: not deterministic CBOR."""
    if protected[:3] != bytes.fromhex("a20127"):
        raise VectorError("unexpected protected header layout")
    return bytes.fromhex("a2") + protected[3:] + bytes.fromhex("0127")


def _noncanonical_s(signature: bytes) -> bytes:
    """The same signature with S replaced by S + L: equal mod L, but not canonical (S >= L)."""
    s = int.from_bytes(signature[32:], "little")
    return signature[:32] + (s + ED25519_L).to_bytes(32, "little")


def _small_order_r(label: str, message: bytes) -> bytes:
    """A signature by world key ``label`` whose R is the identity point (of small order).

    With the secret scalar ``a`` and S = k·a mod L, [S]B = [k]A = R + [k]A: the cofactorless
    equation holds, so only the small-order check on R rejects it (libsodium does). Building it
    needs the secret scalar, which the public test-key derivation gives us.
    """
    seed = hashlib.sha256(b"attest-test-key:attest-vectors/" + label.encode()).digest()
    public = vector_key(label).public_key.raw
    if bytes(nacl.signing.SigningKey(seed).verify_key) != public:
        raise VectorError("the test-key derivation changed; update _small_order_r")
    clamped = bytearray(hashlib.sha512(seed).digest()[:32])
    clamped[0] &= 248
    clamped[31] = (clamped[31] & 127) | 64
    a = int.from_bytes(clamped, "little")
    r = b"\x01" + bytes(31)
    k = int.from_bytes(hashlib.sha512(r + public + message).digest(), "little") % ED25519_L
    s = (k * a) % ED25519_L
    s_b = crypto_scalarmult_ed25519_base_noclamp(s.to_bytes(32, "little"))
    if s_b != crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), public):
        raise VectorError("[S]B != [k]A")
    return r + s.to_bytes(32, "little")


def _at_bound(prior: Meters, peaks: tuple[int, int, int], elapsed_ms: int) -> Meters:
    """Meters grown from ``prior`` by exactly the peak-rate bound over ``elapsed_ms``."""
    grown = []
    for old, peak in zip(prior.as_tuple(), peaks, strict=True):
        if elapsed_ms * peak % 1000:
            raise VectorError("bound is not an integer; choose another elapsed time")
        grown.append(old + elapsed_ms * peak // 1000)
    return Meters(*grown)


def _default_cases(w: World) -> list[AppraisalCase]:
    cases: list[AppraisalCase] = []
    add = cases.append
    R = Reason

    # -- valid: first contact, each model ------------------------------------------------------
    for name, model in (("hx100-a", "HX100"), ("hx800-a", "HX800"), ("cx10-a", "CX10")):
        s = Session(w, name, f"valid/first/{name}")
        ch, token = s.challenge(1)
        add(
            AppraisalCase(
                f"honest {model} chip, first contact",
                ("FirstContact", "ChipModel"),
                s.answer(ch),
                token,
                s.chain,
                (),
            )
        )
    # -- valid: second round, each model -------------------------------------------------------
    for name, model in (("hx100-a", "HX100"), ("hx800-a", "HX800"), ("cx10-a", "CX10")):
        s = Session(w, name, f"valid/second/{name}")
        state, ch, token = s.round2()
        add(
            AppraisalCase(
                f"honest {model} chip, second round a minute later",
                ("SecondRound", "ChipModel"),
                s.answer(ch, 2),
                token,
                s.chain,
                (),
                prior=state,
                now_ms=ROUND2_MS,
            )
        )

    s = Session(w, "hx100-a", "valid/enrolled")
    ch, token = s.challenge(1)
    enrolled = ChipState.enrolled(s.chip.ueid, s.chip.public_key, s.chip.hwmodel)
    add(
        AppraisalCase(
            "first evidence of an enrolled chip",
            ("Enrolled",),
            s.answer(ch),
            token,
            s.chain,
            (),
            prior=enrolled,
        )
    )

    s = Session(w, "hx100-a", "valid/reboot")
    state, ch, token = s.round2()
    s.chip.boot(ROUND2_S - 10)
    add(
        AppraisalCase(
            "second round after a reboot: bootcount up by one, counters continue",
            ("SecondRound",),
            s.answer(ch, 2),
            token,
            s.chain,
            (),
            prior=state,
            now_ms=ROUND2_MS,
        )
    )

    s = Session(w, "hx100-a", "valid/revocations-of-others")
    ch, token = s.challenge(1)
    others = Revocations(
        number=4,
        devices=frozenset({vector_ueid("hx100-b"), vector_ueid("hx800-a")}),
        manufacturers=frozenset({"mfr-expiring"}),
        verifiers=frozenset({"sg-1"}),
        pods=frozenset({hashlib.sha256(b"pod-7").digest()[:16]}),
    )
    add(
        AppraisalCase(
            "revocation list names other chips, another manufacturer, a verifier and a pod",
            ("FirstContact", "Revocation"),
            s.answer(ch),
            token,
            s.chain,
            (),
            revocations=others,
        )
    )

    # -- meter growth at the peak-rate bound -----------------------------------------------------
    peaks = DEFAULT_MODELS["HX100"].peaks()
    elapsed = ROUND2_MS - ROUND1_S * 1000
    s = Session(w, "hx100-a", "meter/at-bound")
    state, ch, token = s.round2()
    add(
        AppraisalCase(
            "all three meters grew by exactly peak rate x time since the last challenge",
            ("SecondRound", "MeterBoundary", "Boundary", "CompromisedChip"),
            s.forge(ch, 2, meters=_at_bound(state.meters, peaks, elapsed)),
            token,
            s.chain,
            (),
            prior=state,
            now_ms=ROUND2_MS,
        )
    )
    for index, meter in enumerate(("flops", "energy_mj", "interconnect_bytes")):
        s = Session(w, "hx100-a", f"meter/over-bound/{meter}")
        state, ch, token = s.round2()
        honest = s.chip.meters.as_tuple()
        over = list(honest)
        over[index] = _at_bound(state.meters, peaks, elapsed).as_tuple()[index] + 1
        add(
            AppraisalCase(
                f"meter {meter} grew one unit more than peak rate x time since the last challenge",
                ("SecondRound", "MeterBoundary", "Boundary", "CompromisedChip"),
                s.forge(ch, 2, meters=Meters(*over)),
                token,
                s.chain,
                (R.METER_RATE_EXCEEDED,),
                prior=state,
                now_ms=ROUND2_MS,
            )
        )

    # -- malformed ---------------------------------------------------------------------------------
    s = Session(w, "hx100-a", "malformed")
    ch, token = s.challenge(1)
    good = s.answer(ch)
    key = w.device_key("hx100-a")
    claims = s.claims(ch).to_claims()
    payload = encode(claims)
    ev_protected = protected_header(_EVIDENCE_CT)

    def malformed(comment: str, evidence: bytes, *flags: str) -> None:
        add(AppraisalCase(comment, ("Malformed", *flags), evidence, token, s.chain, (R.MALFORMED,)))

    malformed("empty input", b"")
    malformed("truncated: last byte of a valid token removed", good[:-1])
    malformed("truncated to the COSE tag alone", good[:1])
    malformed("trailing byte after a valid token", good + b"\x00")
    malformed("not COSE: the bare claims map without an envelope", payload)
    malformed("not COSE: a CBOR text string", encode("evidence"))
    malformed("COSE_Sign1 without tag 18", good[1:])
    malformed("tag 17 (COSE_Mac0) instead of 18", b"\xd1" + good[1:])
    body = _fields(good)
    malformed("COSE array of three items", _TAG18 + encode(body[:3]))
    malformed("detached payload (null)", _cose(body[0], {}, None, body[3]))
    malformed("signature is a text string", _cose(body[0], {}, body[2], body[3].hex()))
    malformed(
        "protected header bytes are not deterministic CBOR (content type before alg)",
        _sign_raw(key, _alg_last(ev_protected), payload),
    )
    # Payloads below are signed with the genuine device key under the Evidence header: only the
    # payload is wrong.
    bootcount = claims[C.BOOTCOUNT]
    head = encode(C.BOOTCOUNT) + encode(bootcount)
    non_shortest = encode(C.BOOTCOUNT) + bytes([0x18, bootcount])  # 1 encoded in two bytes
    malformed(
        "payload: bootcount 1 encoded as 0x1801 (not shortest form)",
        _sign_raw(key, ev_protected, _replace_once(payload, head, non_shortest)),
        "SignedMalformed",
    )
    items = list(claims.items())
    swapped = dict([items[1], items[0], *items[2:]])  # cbor2 keeps insertion order
    malformed(
        "payload: claim keys not in deterministic order",
        _sign_raw(key, ev_protected, cbor2.dumps(swapped)),
        "SignedMalformed",
    )
    dup = bytes([0xA0 + len(items) + 1]) + payload[1:] + encode(C.BOOTCOUNT) + encode(bootcount)
    malformed(
        "payload: bootcount claim appears twice",
        _sign_raw(key, ev_protected, dup),
        "SignedMalformed",
    )
    malformed(
        "payload: unknown claim 999",
        _sign_raw(key, ev_protected, encode({**claims, 999: 1})),
        "SignedMalformed",
    )
    malformed(
        "payload: bootcount is a text string",
        _sign_raw(key, ev_protected, encode({**claims, C.BOOTCOUNT: "1"})),
        "SignedMalformed",
    )
    malformed(
        "payload: required claim eat_nonce missing",
        _sign_raw(key, ev_protected, encode({k: v for k, v in claims.items() if k != C.EAT_NONCE})),
        "SignedMalformed",
    )
    malformed(
        "payload: eat_nonce of 7 bytes (EAT allows 8..64)",
        _sign_raw(key, ev_protected, encode({**claims, C.EAT_NONCE: bytes(7)})),
        "SignedMalformed",
    )
    malformed(
        "payload: a CBOR array instead of a claims map",
        _sign_raw(key, ev_protected, encode(list(claims.values()))),
        "SignedMalformed",
    )
    malformed(
        "payload: dbgstat 5 is not an EAT debug status",
        _sign_raw(key, ev_protected, encode({**claims, C.DBGSTAT: 5})),
        "SignedMalformed",
    )

    # -- content type --------------------------------------------------------------------------
    s = Session(w, "hx100-a", "content-type")
    ch, token = s.challenge(1)
    ev_claims = s.claims(ch)
    payload = ev_claims.payload()
    add(
        AppraisalCase(
            "the verifier's own Challenge token presented as Evidence",
            ("ContentType", "Masking"),
            token,
            token,
            s.chain,
            (R.MALFORMED, R.WRONG_CONTENT_TYPE, R.BAD_SIGNATURE),
        )
    )
    for ct in (ContentType.RESULT, ContentType.CHALLENGE):
        add(
            AppraisalCase(
                f"honest evidence claims signed by the device key with content type {ct}",
                ("ContentType",),
                sign1(key, ct, payload),
                token,
                s.chain,
                (R.WRONG_CONTENT_TYPE, R.BAD_SIGNATURE),
            )
        )
    good = sign1(key, _EVIDENCE_CT, payload)
    protected, _, _, signature = _fields(good)
    add(
        AppraisalCase(
            "valid evidence with a non-empty unprotected header {4: kid}",
            ("ContentType",),
            _cose(protected, {4: b"kid"}, payload, signature),
            token,
            s.chain,
            (R.WRONG_CONTENT_TYPE,),
        )
    )
    extra = encode({1: -8, 3: str(_EVIDENCE_CT), 4: b"kid"})
    add(
        AppraisalCase(
            "evidence signed over a protected header with an extra parameter (kid)",
            ("ContentType",),
            _sign_raw(key, extra, payload),
            token,
            s.chain,
            (R.WRONG_CONTENT_TYPE, R.BAD_SIGNATURE),
        )
    )
    add(
        AppraisalCase(
            "evidence signed over a protected header without a content type",
            ("ContentType",),
            _sign_raw(key, encode({1: -8}), payload),
            token,
            s.chain,
            (R.WRONG_CONTENT_TYPE, R.BAD_SIGNATURE),
        )
    )

    # -- signature ---------------------------------------------------------------------------------
    s = Session(w, "hx100-a", "signature")
    ch, token = s.challenge(1)
    good = s.answer(ch)
    good_protected, _, good_payload, sig = _fields(good)

    def bad_sig(comment: str, evidence: bytes, *flags: str) -> None:
        add(
            AppraisalCase(
                comment,
                ("BadSignature", *flags),
                evidence,
                token,
                s.chain,
                (R.BAD_SIGNATURE,),
            )
        )

    bad_sig("one bit of R flipped", _with_signature(good, _flip_bit(sig, 0)))
    bad_sig("one bit of S flipped", _with_signature(good, _flip_bit(sig, 40, 3)))
    bad_sig("63-byte signature (last byte dropped)", _with_signature(good, sig[:63]))
    bad_sig("65-byte signature (zero byte appended)", _with_signature(good, sig + b"\x00"))
    bad_sig("all-zero signature", _with_signature(good, bytes(64)))
    bad_sig(
        "S replaced by S + L (same value mod L, not canonical)",
        _with_signature(good, _noncanonical_s(sig)),
        "Ed25519Strict",
    )
    bad_sig(
        "R is the identity point (small order) and S = k·a: the cofactorless equation holds",
        _with_signature(
            good,
            _small_order_r("chip/hx100-a", sig_structure(good_protected, good_payload)),
        ),
        "Ed25519Strict",
    )
    other = Session(w, "hx100-b", "signature/other-key")
    forged_claims = dataclasses.replace(other.claims(ch), ueid=s.chip.ueid)
    bad_sig(
        "claims of chip A signed by chip B's device key, presented with chip A's chain",
        other.chip.sign_arbitrary_evidence(forged_claims),
    )
    protected, _, payload, _ = _fields(good)
    tampered = _replace_once(payload, ch.nonce, _flip_bit(ch.nonce, 31))
    bad_sig(
        "one bit of the signed payload changed after signing",
        _cose(protected, {}, tampered, sig),
    )

    # -- certificate chain -------------------------------------------------------------------------
    def chain_case(comment: str, chip: str, chain: DeviceChain, label: str) -> None:
        s = Session(w, chip, f"chain/{label}")
        ch, token = s.challenge(1)
        add(
            AppraisalCase(
                comment,
                ("CertificateChain", "Masking"),
                s.answer(ch),
                token,
                chain,
                (R.BAD_SIGNATURE, R.CERT_CHAIN_INVALID),
            )
        )

    chain_case(
        "manufacturer certificate signed by an impostor using the authority's name",
        "hx100-rogue",
        w.chain("hx100-rogue"),
        "impostor",
    )
    a_chain = w.chain("hx100-a")
    chain_case(
        "device certificate presented with another manufacturer's certificate",
        "hx100-a",
        DeviceChain(a_chain.device_cert, w.manufacturers["mfr-expiring"].cert),
        "wrong-manufacturer",
    )
    chain_case(
        "device certificate truncated",
        "hx100-a",
        DeviceChain(a_chain.device_cert[:-1], a_chain.manufacturer_cert),
        "truncated-device-cert",
    )
    chain_case(
        "device and manufacturer certificates swapped",
        "hx100-a",
        DeviceChain(a_chain.manufacturer_cert, a_chain.device_cert),
        "swapped",
    )
    rogue_mfr_key = vector_key("manufacturer/mfr-uncertified")
    forged_device = DeviceCert(
        issuer="mfr-a",
        issued_at=CERTIFIED_S,
        public_key=w.device_key("hx100-a").public_key,
        ueid=vector_ueid("hx100-a"),
        hwmodel="HX100",
        pod_class=8,
    ).sign(rogue_mfr_key)
    chain_case(
        "device certificate in mfr-a's name signed by a key the authority never certified",
        "hx100-a",
        DeviceChain(forged_device, a_chain.manufacturer_cert),
        "uncertified-key",
    )

    # -- certificate expiry ------------------------------------------------------------------------
    expiry_ms = (NOW_S + 1) * 1000  # mfr-expiring's certificate
    for comment, now_ms, expect, flags in (
        ("manufacturer certificate expired 500 ms ago", ROUND1_MS, (R.CERT_EXPIRED,), ()),
        (
            "appraised exactly when the manufacturer certificate expires",
            expiry_ms,
            (R.CERT_EXPIRED,),
            ("Boundary",),
        ),
        (
            "appraised 1 ms before the manufacturer certificate expires",
            expiry_ms - 1,
            (),
            ("Boundary",),
        ),
    ):
        s = Session(w, "hx800-expiring", f"expiry/{now_ms}")
        ch, token = s.challenge(1)
        add(
            AppraisalCase(
                comment,
                ("CertificateChain", "FirstContact", *flags),
                s.chip.answer(ch, ROUND1_S),
                token,
                s.chain,
                expect,
                now_ms=now_ms,
            )
        )

    # -- model not in policy (device certificate of a model the policy does not list) -----------
    qx_key = vector_key("chip/qx1-a")
    qx_ueid = vector_ueid("qx1-a")
    qx_chain = DeviceChain(
        w.manufacturers["mfr-a"].endorse(
            qx_key.public_key, ueid=qx_ueid, hwmodel="QX1", pod_class=1, now_s=CERTIFIED_S
        ),
        w.manufacturers["mfr-a"].cert,
    )
    s = Session(w, "cx10-a", "hwmodel/qx1")
    ch, token = s.challenge(1)
    qx_claims = dataclasses.replace(s.claims(ch), ueid=qx_ueid)
    add(
        AppraisalCase(
            "device certificate for model QX1, which the policy does not list",
            ("Policy", "FirstContact"),
            qx_claims.sign(qx_key),
            token,
            qx_chain,
            (R.UNKNOWN_HWMODEL,),
        )
    )

    # -- freshness -------------------------------------------------------------------------------
    s = Session(w, "hx100-a", "freshness/older-challenge")
    old_ch, _ = s.challenge(1, tag="/first")
    ch, token = s.challenge(1, tag="/second")
    add(
        AppraisalCase(
            "honest evidence answering an earlier challenge of the same verifier",
            ("Freshness", "FirstContact"),
            s.answer(old_ch),
            token,
            s.chain,
            (R.NONCE_MISMATCH,),
        )
    )
    s = Session(w, "hx100-a", "freshness/zero-nonce")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "evidence claims an all-zero nonce",
            ("Freshness", "CompromisedChip", "FirstContact"),
            s.forge(ch, nonce=bytes(32)),
            token,
            s.chain,
            (R.NONCE_MISMATCH,),
        )
    )
    for comment, now_ms, expired, flags in (
        (
            "appraised exactly when the challenge expires",
            (ROUND1_S + 30) * 1000,
            True,
            ("Boundary",),
        ),
        (
            "appraised 1 ms before the challenge expires",
            (ROUND1_S + 30) * 1000 - 1,
            False,
            ("Boundary",),
        ),
        ("evidence arrives five minutes after the challenge", (ROUND1_S + 300) * 1000, True, ()),
    ):
        s = Session(w, "hx100-a", f"freshness/expiry/{now_ms}")
        ch, token = s.challenge(1)
        add(
            AppraisalCase(
                comment,
                ("Freshness", "FirstContact", *flags),
                s.answer(ch),
                token,
                s.chain,
                (R.CHALLENGE_EXPIRED,) if expired else (),
                now_ms=now_ms,
            )
        )
    s = Session(w, "hx100-a", "freshness/audience")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "evidence addressed to verifier sg-1 presented to kl-1 (nonce matches)",
            ("Freshness", "CompromisedChip", "FirstContact"),
            s.forge(ch, verifier_id="sg-1"),
            token,
            s.chain,
            (R.WRONG_AUDIENCE,),
        )
    )

    # -- binding ---------------------------------------------------------------------------------
    s = Session(w, "hx100-a", "binding/ueid")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "evidence claims the UEID of another chip",
            ("Binding", "CompromisedChip", "FirstContact"),
            s.forge(ch, ueid=vector_ueid("hx100-b")),
            token,
            s.chain,
            (R.UEID_MISMATCH,),
        )
    )
    s = Session(w, "hx100-a", "binding/registered-key")
    state, ch, token = s.round2()
    add(
        AppraisalCase(
            "the chip's UEID is registered with another device key",
            ("Binding", "SecondRound"),
            s.answer(ch, 2),
            token,
            s.chain,
            (R.REGISTRATION_MISMATCH,),
            prior=dataclasses.replace(state, device_key=w.device_key("hx100-b").public_key),
            now_ms=ROUND2_MS,
        )
    )
    s = Session(w, "hx100-a", "binding/registered-ueid")
    state, ch, token = s.round2()
    add(
        AppraisalCase(
            "the chip's device key is registered under another UEID",
            ("Binding", "SecondRound"),
            s.answer(ch, 2),
            token,
            s.chain,
            (R.REGISTRATION_MISMATCH,),
            prior=dataclasses.replace(state, ueid=vector_ueid("hx100-b")),
            now_ms=ROUND2_MS,
        )
    )

    # -- replay ------------------------------------------------------------------------------------
    s = Session(w, "hx100-a", "replay/same-challenge")
    token, ev, state = s.accepted_round1()
    add(
        AppraisalCase(
            "accepted evidence sent again while its challenge is still open",
            ("Replay", "SecondRound"),
            ev,
            token,
            s.chain,
            (R.EVIDENCE_REPLAY, R.COUNTER_ROLLBACK),
            prior=state,
            now_ms=ROUND1_MS + 1000,
        )
    )
    s = Session(w, "hx100-a", "replay/next-challenge")
    _, ev, state = s.accepted_round1()
    ch, token = s.challenge(2)
    add(
        AppraisalCase(
            "accepted evidence replayed against the next challenge",
            ("Replay", "Freshness", "SecondRound"),
            ev,
            token,
            s.chain,
            (R.NONCE_MISMATCH, R.EVIDENCE_REPLAY, R.COUNTER_ROLLBACK),
            prior=state,
            now_ms=ROUND2_MS,
        )
    )

    # -- rollback ----------------------------------------------------------------------------------
    def rollback(
        label: str, comment: str, expect: Reason, **changes: Callable[[ChipState], Any]
    ) -> None:
        s = Session(w, "hx100-a", f"rollback/{label}")
        state, ch, token = s.round2()
        add(
            AppraisalCase(
                comment,
                ("Rollback", "CompromisedChip", "SecondRound"),
                s.forge(ch, 2, **{k: f(state) for k, f in changes.items()}),
                token,
                s.chain,
                (expect,),
                prior=state,
                now_ms=ROUND2_MS,
            )
        )

    rollback(
        "bootcount",
        "boot count one lower than stored",
        R.BOOTCOUNT_ROLLBACK,
        bootcount=lambda st: st.bootcount - 1,
    )
    rollback(
        "counter-equal",
        "attestation counter equal to the stored one",
        R.COUNTER_ROLLBACK,
        attest_counter=lambda st: st.attest_counter,
    )
    rollback(
        "counter-zero",
        "attestation counter reset to zero",
        R.COUNTER_ROLLBACK,
        attest_counter=lambda st: 0,
    )
    for index, meter in enumerate(("flops", "energy_mj", "interconnect_bytes")):

        def lower(st: ChipState, i: int = index) -> Meters:
            values = list(st.meters.as_tuple())
            values[i] -= 1
            return Meters(*values)

        rollback(
            f"meter-{meter}",
            f"meter {meter} one unit lower than stored",
            R.METER_ROLLBACK,
            meters=lower,
        )
    s = Session(w, "hx100-a", "rollback/first-contact-counter")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "first contact with attestation counter 0 (counters start at 1)",
            ("Rollback", "CompromisedChip", "FirstContact", "Boundary"),
            s.forge(ch, attest_counter=0),
            token,
            s.chain,
            (R.COUNTER_ROLLBACK,),
        )
    )

    # -- revocation ------------------------------------------------------------------------------
    s = Session(w, "hx100-a", "revocation/device")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "the revocation list names the chip",
            ("Revocation", "FirstContact"),
            s.answer(ch),
            token,
            s.chain,
            (R.DEVICE_REVOKED,),
            revocations=Revocations(number=5, devices=frozenset({s.chip.ueid})),
        )
    )
    s = Session(w, "hx100-a", "revocation/status")
    state, ch, token = s.round2()
    add(
        AppraisalCase(
            "the stored chip state has status revoked",
            ("Revocation", "SecondRound"),
            s.answer(ch, 2),
            token,
            s.chain,
            (R.DEVICE_REVOKED,),
            prior=dataclasses.replace(state, status=ChipStatus.REVOKED),
            now_ms=ROUND2_MS,
        )
    )
    s = Session(w, "hx100-a", "revocation/manufacturer")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "the revocation list names the chip's manufacturer",
            ("Revocation", "FirstContact"),
            s.answer(ch),
            token,
            s.chain,
            (R.MANUFACTURER_REVOKED,),
            revocations=Revocations(number=6, manufacturers=frozenset({"mfr-a"})),
        )
    )

    # -- firmware posture and debug ----------------------------------------------------------------
    def posture(
        label: str,
        chip: str,
        comment: str,
        expect: tuple[Reason, ...],
        flags: tuple[str, ...],
        **changes: Any,
    ) -> None:
        s = Session(w, chip, f"posture/{label}")
        ch, token = s.challenge(1)
        evidence = s.forge(ch, **changes) if changes else s.answer(ch)
        add(AppraisalCase(comment, ("FirstContact", *flags), evidence, token, s.chain, expect))

    wrong_digest = hashlib.sha256(b"attest-vectors/tampered-firmware").digest()
    posture(
        "measurement",
        "hx100-a",
        "firmware 1.2.0 with a measurement that is not 1.2.0's",
        (R.FIRMWARE_MEASUREMENT_MISMATCH,),
        ("FirmwarePosture", "CompromisedChip"),
        firmware_measurement=wrong_digest,
    )
    posture(
        "measurement-claims-newer",
        "hx100-a",
        "claims firmware 2.0.0 but reports the measurement of 1.2.0",
        (R.FIRMWARE_MEASUREMENT_MISMATCH,),
        ("FirmwarePosture", "CompromisedChip"),
        firmware_version=(2, 0, 0),
    )
    posture(
        "outdated",
        "hx100-oldfw",
        "honest chip on firmware 1.0.0, below the minimum 1.1.0",
        (R.FIRMWARE_OUTDATED,),
        ("FirmwarePosture",),
    )
    posture(
        "unknown",
        "hx100-betafw",
        "honest chip on firmware 1.3.0, which the policy does not know",
        (R.FIRMWARE_UNKNOWN,),
        ("FirmwarePosture",),
    )
    posture(
        "old-and-unknown",
        "hx100-a",
        "firmware 0.9 with its own measurement: too old and unknown",
        (R.FIRMWARE_OUTDATED, R.FIRMWARE_UNKNOWN),
        ("FirmwarePosture", "CompromisedChip"),
        firmware_version=(0, 9),
        firmware_measurement=hashlib.sha256(b"attest-simulated-firmware:0.9").digest(),
    )
    posture(
        "debug",
        "hx100-a",
        "debug enabled (dbgstat 0)",
        (R.DEBUG_ENABLED,),
        ("Debug", "CompromisedChip"),
        dbgstat=DBGSTAT_ENABLED,
    )
    posture(
        "debug-outdated",
        "hx100-oldfw",
        "debug enabled on outdated firmware: two warnings",
        (R.FIRMWARE_OUTDATED, R.DEBUG_ENABLED),
        ("Debug", "FirmwarePosture", "TierArithmetic", "CompromisedChip"),
        dbgstat=DBGSTAT_ENABLED,
    )
    posture(
        "debug-nonce",
        "hx100-a",
        "debug enabled and wrong nonce: warning plus contraindicated",
        (R.NONCE_MISMATCH, R.DEBUG_ENABLED),
        ("Debug", "Freshness", "TierArithmetic", "CompromisedChip"),
        dbgstat=DBGSTAT_ENABLED,
        nonce=bytes(32),
    )

    # -- masking -----------------------------------------------------------------------------------
    s = Session(w, "hx100-a", "masking")
    state, ch, token = s.round2()
    lies = s.forge(
        ch,
        2,
        attest_counter=0,
        bootcount=0,
        nonce=bytes(32),
        dbgstat=DBGSTAT_ENABLED,
        ueid=vector_ueid("hx100-b"),
        firmware_version=(0, 1),
    )
    protected, _, payload, sig = _fields(lies)
    add(
        AppraisalCase(
            "claims that would fail seven checks, with one signature bit flipped",
            ("Masking", "BadSignature", "SecondRound"),
            _cose(protected, {}, payload, _flip_bit(sig, 5)),
            token,
            s.chain,
            (R.BAD_SIGNATURE,),
            prior=state,
            now_ms=ROUND2_MS,
        )
    )
    add(
        AppraisalCase(
            "the same claims, validly signed, with a non-empty unprotected header",
            ("Masking", "ContentType", "SecondRound"),
            _cose(protected, {4: b"kid"}, payload, sig),
            token,
            s.chain,
            (R.WRONG_CONTENT_TYPE,),
            prior=state,
            now_ms=ROUND2_MS,
        )
    )
    add(
        AppraisalCase(
            "the same claims, validly signed: every payload reason is reported",
            ("CompromisedChip", "SecondRound", "TierArithmetic"),
            lies,
            token,
            s.chain,
            (
                R.NONCE_MISMATCH,
                R.UEID_MISMATCH,
                R.BOOTCOUNT_ROLLBACK,
                R.COUNTER_ROLLBACK,
                R.FIRMWARE_OUTDATED,
                R.FIRMWARE_UNKNOWN,
                R.DEBUG_ENABLED,
            ),
            prior=state,
            now_ms=ROUND2_MS,
        )
    )
    return cases


def datacentre_policy() -> Policy:
    """A policy for datacentre parts only: the consumer model CX10 is unknown to it."""
    return Policy(
        policy_id="attest-datacentre-only-v1",
        models=MappingProxyType({k: v for k, v in DEFAULT_MODELS.items() if k != "CX10"}),
    )


def enrolled_only_policy() -> Policy:
    """A policy that appraises only chips an operator enrolled beforehand."""
    return Policy(policy_id="attest-enrolled-only-v1", allow_unknown_chips=False)


def _datacentre_cases(w: World, policy: Policy) -> list[AppraisalCase]:
    cases = []
    s = Session(w, "hx100-a", "datacentre/hx100", policy)
    ch, token = s.challenge(1)
    cases.append(
        AppraisalCase(
            "HX100 is listed in this policy",
            ("Policy", "FirstContact"),
            s.answer(ch),
            token,
            s.chain,
            (),
        )
    )
    s = Session(w, "cx10-a", "datacentre/cx10", policy)
    ch, token = s.challenge(1)
    cases.append(
        AppraisalCase(
            "honest CX10 chip: its model is not listed in this policy",
            ("Policy", "FirstContact"),
            s.answer(ch),
            token,
            s.chain,
            (Reason.UNKNOWN_HWMODEL,),
        )
    )
    return cases


def _enrolled_only_cases(w: World, policy: Policy) -> list[AppraisalCase]:
    cases = []
    s = Session(w, "hx100-a", "enrolled-only/unknown", policy)
    ch, token = s.challenge(1)
    cases.append(
        AppraisalCase(
            "honest chip that was never enrolled (no prior state)",
            ("Policy", "FirstContact"),
            s.answer(ch),
            token,
            s.chain,
            (Reason.NOT_ENROLLED,),
        )
    )
    s = Session(w, "hx100-a", "enrolled-only/enrolled", policy)
    ch, token = s.challenge(1)
    cases.append(
        AppraisalCase(
            "honest chip, enrolled beforehand",
            ("Policy", "Enrolled"),
            s.answer(ch),
            token,
            s.chain,
            (),
            prior=ChipState.enrolled(s.chip.ueid, s.chip.public_key, s.chip.hwmodel),
        )
    )
    s = Session(w, "hx100-a", "enrolled-only/second", policy)
    s.policy = Policy()  # round 1 happened while enrolment was not yet required
    state, ch, token = s.round2()
    cases.append(
        AppraisalCase(
            "second round of a chip the verifier already holds state for",
            ("Policy", "SecondRound"),
            s.answer(ch, 2),
            token,
            s.chain,
            (),
            prior=state,
            now_ms=ROUND2_MS,
        )
    )
    return cases


def vendor_reference_policy() -> Policy:
    """The default policy with mfr-a's reference values for HX100 folded in (SPEC §9.5).

    1.2.0 is withdrawn, 1.1.0 superseded, and 1.3.0 (unknown to the version table) is current.
    """
    refs = {
        version: FirmwareReference("HX100", version, simulated_firmware_measurement(version), st)
        for version, st in (
            ((1, 1, 0), FirmwareStatus.OUTDATED),
            ((1, 2, 0), FirmwareStatus.REVOKED),
            ((1, 3, 0), FirmwareStatus.CURRENT),
        )
    }
    return Policy(
        policy_id="attest-vendor-references-v1",
        references=MappingProxyType({("HX100", v): r for v, r in refs.items()}),
    )


def _vendor_reference_cases(w: World, policy: Policy) -> list[AppraisalCase]:
    cases = []
    for chip, label, description, reasons in (
        (
            "hx100-a",
            "references/revoked",
            "honest HX100 on 1.2.0, which its vendor has withdrawn",
            (Reason.FIRMWARE_REVOKED,),
        ),
        (
            "hx100-betafw",
            "references/current",
            "honest HX100 on 1.3.0: unknown to the version table, current for its vendor",
            (),
        ),
        (
            "hx100-oldfw",
            "references/unlisted",
            "honest HX100 on 1.0.0: in the version table, but HX100's references do not list it",
            (Reason.FIRMWARE_OUTDATED, Reason.FIRMWARE_UNKNOWN),
        ),
        (
            "hx800-a",
            "references/other-model",
            "honest HX800 on 2.0.0: no reference for its model, so the version table applies",
            (),
        ),
    ):
        s = Session(w, chip, label, policy)
        ch, token = s.challenge(1)
        cases.append(
            AppraisalCase(
                description,
                ("FirmwarePosture", "FirstContact"),
                s.answer(ch),
                token,
                s.chain,
                reasons,
            )
        )
    return cases


def _edge_cases(w: World) -> list[AppraisalCase]:
    """Encoding edges (revision 3): largest integers, zero meters, every optional claim."""
    cases: list[AppraisalCase] = []
    add = cases.append
    R = Reason
    top = 2**64 - 1

    s = Session(w, "hx100-a", "edge/max-counters")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "attestation counter, boot count and uptime at 2^64 - 1, first contact",
            ("FirstContact", "EdgeValue", "CompromisedChip"),
            s.forge(ch, attest_counter=top, bootcount=top, uptime_s=top),
            token,
            s.chain,
            (),
        )
    )
    s = Session(w, "hx100-a", "edge/counter-exhausted")
    state, ch, token = s.round2()
    add(
        AppraisalCase(
            "stored counter 2^64 - 1: no later Evidence can exceed it",
            ("SecondRound", "EdgeValue", "Rollback", "CompromisedChip"),
            s.forge(ch, 2, attest_counter=top),
            token,
            s.chain,
            (R.COUNTER_ROLLBACK,),
            prior=dataclasses.replace(state, attest_counter=top),
            now_ms=ROUND2_MS,
        )
    )
    s = Session(w, "hx100-a", "edge/zero-meters")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "all meters zero (a chip that never ran), first contact",
            ("FirstContact", "EdgeValue", "CompromisedChip"),
            s.forge(ch, meters=Meters(0, 0, 0)),
            token,
            s.chain,
            (),
        )
    )
    s = Session(w, "hx100-a", "edge/max-meters-first")
    ch, token = s.challenge(1)
    add(
        AppraisalCase(
            "all meters at 2^64 - 1 on first contact: energy and interconnect exceed the bound",
            ("FirstContact", "EdgeValue", "MeterBoundary", "CompromisedChip"),
            s.forge(ch, meters=Meters(top, top, top)),
            token,
            s.chain,
            (R.METER_RATE_EXCEEDED,),
        )
    )
    s = Session(w, "hx100-a", "edge/max-meters-stay")
    state, ch, token = s.round2()
    add(
        AppraisalCase(
            "meters stay at 2^64 - 1 (no growth: no bound to exceed)",
            ("SecondRound", "EdgeValue", "CompromisedChip"),
            s.forge(ch, 2, meters=Meters(top, top, top)),
            token,
            s.chain,
            (),
            prior=dataclasses.replace(state, meters=Meters(top, top, top)),
            now_ms=ROUND2_MS,
        )
    )
    s = Session(w, "hx100-a", "edge/optional-claims")
    ch, token = s.challenge(1)
    claims = s.claims(ch).to_claims()
    peer = vector_ueid("hx100-b")
    claims.update(
        {
            -70004: {1: 2, 2: 10**17, 3: 3600},  # hem-license-state
            -70005: hashlib.sha256(b"edge/pod").digest()[:16],  # hem-pod-id
            -70006: [peer],  # hem-links
            -70211: [b"\xd2" + bytes(40)],  # hem-link-refusals (opaque to the core)
        }
    )
    add(
        AppraisalCase(
            "Evidence carrying every optional mechanism claim: the core appraisal reads none",
            ("FirstContact", "EdgeValue"),
            sign1(w.device_key("hx100-a"), _EVIDENCE_CT, encode(claims)),
            token,
            s.chain,
            (),
        )
    )
    return cases


def appraisal_groups(w: World | None = None) -> list[AppraisalGroup]:
    w = w or build_world()
    datacentre, enrolled_only = datacentre_policy(), enrolled_only_policy()
    vendor = vendor_reference_policy()
    return [
        AppraisalGroup("default policy", Policy(), tuple(_default_cases(w))),
        AppraisalGroup(
            "policy without the consumer model CX10",
            datacentre,
            tuple(_datacentre_cases(w, datacentre)),
        ),
        AppraisalGroup(
            "policy that requires enrolment",
            enrolled_only,
            tuple(_enrolled_only_cases(w, enrolled_only)),
        ),
        AppraisalGroup("edge values, default policy", Policy(), tuple(_edge_cases(w))),
        AppraisalGroup(
            "policy with a vendor's firmware reference values",
            vendor,
            tuple(_vendor_reference_cases(w, vendor)),
        ),
    ]


# -- JSON ------------------------------------------------------------------------------------------


def _version_text(v: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in v)


def policy_json(p: Policy) -> dict[str, Any]:
    return {
        "policyId": p.policy_id,
        "minFirmware": _version_text(p.min_firmware),
        "firmwareMeasurements": {
            _version_text(v): d.hex() for v, d in sorted(p.firmware_measurements.items())
        },
        "models": {
            name: {
                "peakFlopsPerS": m.peak_flops_per_s,
                "peakPowerMw": m.peak_power_mw,
                "peakInterconnectBytesPerS": m.peak_interconnect_bytes_per_s,
                "maxPodSize": m.max_pod_size,
            }
            for name, m in p.models.items()
        },
        "allowUnknownChips": p.allow_unknown_chips,
        "firmwareReferences": [
            {
                "hwmodel": r.hwmodel,
                "version": _version_text(r.version),
                "measurement": r.measurement.hex(),
                "status": r.status.name.lower(),
            }
            for _, r in sorted(p.references.items())
        ],
    }


def state_json(s: ChipState | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "ueid": s.ueid.hex(),
        "deviceKey": s.device_key.raw.hex(),
        "hwmodel": s.hwmodel,
        "bootcount": s.bootcount,
        "attestCounter": s.attest_counter,
        "meters": {
            "flops": s.meters.flops,
            "energyMj": s.meters.energy_mj,
            "interconnectBytes": s.meters.interconnect_bytes,
        },
        "lastChallengeIat": s.last_challenge_iat,
        "lastSeenMs": s.last_seen_ms,
        "lastEvidenceDigest": s.last_evidence_digest.hex(),
        "status": str(s.status),
    }


def revocations_json(r: Revocations) -> dict[str, Any]:
    return {
        "number": r.number,
        "devices": sorted(u.hex() for u in r.devices),
        "manufacturers": sorted(r.manufacturers),
        "verifiers": sorted(r.verifiers),
        "pods": sorted(p.hex() for p in r.pods),
    }


def _appraise_case(w: World, c: AppraisalCase, policy: Policy) -> Appraisal:
    verifier = w.verifiers[c.verifier]
    challenge = Challenge.verify(c.challenge, verifier.key.public_key)
    verdict = appraise(
        c.evidence,
        challenge=challenge,
        chain=c.chain,
        state=c.prior,
        anchors=w.anchors,
        revocations=c.revocations,
        policy=policy,
        now_ms=c.now_ms,
    )
    reasons = tuple(sorted(verdict.reasons))
    if reasons != tuple(sorted(c.expect)):
        raise VectorError(
            f"{c.comment!r}: expected {[r.name for r in sorted(c.expect)]}, "
            f"the core says {[r.name for r in reasons]}"
        )
    return verdict


def _flags(c: AppraisalCase) -> list[str]:
    """The case's flags, plus Warning when the reasons it is written for are all warnings."""
    warning = bool(c.expect) and tier_of(c.expect) is Tier.WARNING
    return [*c.flags, "Warning"] if warning else list(c.flags)


def _reason_text(r: ReasonCode) -> str:
    return f"{r.name} {int(r)} ({r.tier.name.lower()})"


def evidence_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    groups: list[dict[str, Any]] = []
    tc = 0
    for g in appraisal_groups(w):
        tests = []
        for c in g.cases:
            tc += 1
            verdict = _appraise_case(w, c, g.policy)
            tier, reasons = verdict.tier, tuple(sorted(verdict.reasons))
            verifier = w.verifiers[c.verifier]
            tests.append(
                {
                    "tcId": tc,
                    "comment": c.comment,
                    "flags": _flags(c),
                    "evidence": c.evidence.hex(),
                    "context": {
                        "challenge": c.challenge.hex(),
                        "verifierCert": verifier.cert.hex(),
                        "deviceCert": c.chain.device_cert.hex(),
                        "manufacturerCert": c.chain.manufacturer_cert.hex(),
                        "priorState": state_json(c.prior),
                        "revocations": revocations_json(c.revocations),
                        "nowMs": c.now_ms,
                    },
                    "result": "invalid" if tier is Tier.CONTRAINDICATED else "valid",
                    "tier": tier.name.lower(),
                    "reasons": [r.name for r in reasons],
                    "newState": state_json(verdict.new_state),
                }
            )
        groups.append(
            {
                "type": "EvidenceAppraisal",
                "comment": g.comment,
                "trustAnchors": {
                    "authorityId": w.anchors.authority_id,
                    "authorityKey": w.anchors.authority_key.raw.hex(),
                },
                "policy": policy_json(g.policy),
                "tests": tests,
            }
        )
    notes = {**EVIDENCE_NOTES}
    used = {f for g in groups for t in g["tests"] for f in t["flags"]}
    if used - set(notes):
        raise VectorError(f"flags without a note: {sorted(used - set(notes))}")
    doc = vector_document(
        EVIDENCE_ALGORITHM,
        tc,
        [
            *EVIDENCE_HEADER,
            "Reason codes: "
            + ", ".join(
                _reason_text(r)
                for r in registered_reasons()
                # federation's reasons judge authorities' acts: federation.json lists them
                if r not in NODE_REASONS and not isinstance(r, FederationReason)
            ),
        ],
        {k: v for k, v in notes.items() if k in used},
        groups,
    )
    return annotate(doc, {"EvidenceAppraisal": EVIDENCE_OUTPUTS}, _evidence_sections)


#: the expected-result fields of an EvidenceAppraisal test (SPEC §16.3)
EVIDENCE_OUTPUTS = ("result", "tier", "reasons", "newState")
#: flags that name a section beyond the appraisal procedure itself
_FLAG_SECTIONS = {
    "CertificateChain": "3.4",
    "Ed25519Strict": "4.3",
    "ContentType": "4.4",
    "Malformed": "9.2",
    "MeterBoundary": "9.6",
    "Revocation": "12",
}


def _evidence_sections(g: dict[str, Any], t: dict[str, Any]) -> list[str]:
    extra = {_FLAG_SECTIONS[f] for f in t["flags"] if f in _FLAG_SECTIONS}
    base = {"9.5", "9.7"} | ({"9.8"} if t["newState"] is not None else set())
    return sorted(base | extra, key=lambda s: tuple(int(p) for p in s.split(".")))
