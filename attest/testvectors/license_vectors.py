"""Offline Licensing vectors (vectors/license.json) from the deterministic world.

Every chip-side acceptance check (each refusal name, in check order, with precedence cases),
every licensing reason code of the appraisal (100-103, with masking), the verifier's renewal
decision and the quota arithmetic. As for the other families, each case states the outcome it
is written for and generation fails if the implementation disagrees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from attest.codec.cbor import encode
from attest.codec.cose import sign1
from attest.errors import ChipRefusal
from attest.licensing import chip as L
from attest.licensing import claims as LC
from attest.licensing.authority import delegate, sign_license
from attest.licensing.checks import IssuedLicense, LedgerView
from attest.licensing.chip import ChipLicensing, DelegationUse, accept, apply_pending, check_license
from attest.licensing.chip import LicenseRefusal as LR
from attest.licensing.issuer import LicensingPolicy, RenewalOutcome, plan_renewal
from attest.licensing.messages import LICENSE_CONTENT_TYPE, Budgets, LicenseGrant, LicenseState
from attest.licensing.quota import charged, exceeded_meter
from attest.licensing.reasons import LicenseReason
from attest.licensing.verifier import appraise_with_ledger
from attest.messages import claims as C
from attest.messages.attestation import Challenge
from attest.messages.content import ContentType
from attest.messages.revocation import Revocations
from attest.testvectors.evidence_vectors import policy_json, revocations_json
from attest.testvectors.format import VectorError, annotate, vector_document
from attest.testvectors.license_check import (
    LICENSE_ALGORITHM,
    LICENSE_FILE,
    budgets_json,
    ledger_json,
    license_state_json,
    licensing_json,
    renewal_policy_json,
)
from attest.testvectors.world import (
    AUTHORITY_ID,
    CERTIFIED_S,
    NOW_S,
    ROUND1_MS,
    ROUND1_S,
    ROUND1_SIGN_S,
    World,
    build_world,
    vector_key,
    vector_nonce,
    vector_ueid,
)
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, ReasonCode, Tier

DAY_S = 24 * 3600
#: the chips' monotonic operating time in every acceptance case
CHIP_TIME_S = 50_000
#: default license: 10^15 FLOPs for an hour of chip time
BUDGET = 10**15
EXPIRY_S = CHIP_TIME_S + 3600
UEID_A = vector_ueid("hx100-a")
UEID_B = vector_ueid("hx100-b")
FIRMWARE = (1, 2, 0)
SESSION_NONCE = vector_nonce("license/session")
REQUEST_NONCE = vector_nonce("license/request")

LICENSE_HEADER = [
    "Offline Licensing (SPEC: Licensing): the chip's acceptance procedure, the licensing checks",
    "of the appraisal (reason codes 100-103), the verifier's renewal decision and quota rules.",
    "LicenseAcceptance: run the chip's checks on `license` (+ `delegation`) with the chip state",
    "of `chip`; a valid license must leave exactly the state `after` once applied.",
    "LicenseStateAppraisal: appraise `evidence` as in evidence_appraisal.json with the license",
    "ledger view `context.ledger` (null: the verifier keeps no ledger).",
    "LicenseRenewal: the renewal plan for a verdict tier, a reported license state and a ledger.",
    "LicenseQuota: whether `budget` fits `quota` given `issued`, and the totals afterwards.",
    "Keys and identities are derived from public labels: never use them outside tests.",
]
LICENSE_NOTES = {
    "Valid": "The license is accepted and applied.",
    "Delegated": "Issued by a verifier node under an authority delegation.",
    "Nonce": "The license is bound to a chip nonce (eat_nonce).",
    "CarryOver": "Unexpired budget left from an earlier license carries over.",
    "Forfeit": "Budget of an expired license is forfeited when the next one is applied.",
    "Boundary": "A value exactly at a limit.",
    "Precedence": "Several checks fail; the first one in check order is reported.",
    "Refused": "The chip must refuse the license with the given name.",
    "Honest": "What an honest chip reports: no licensing reason.",
    "NoLedger": "The verifier keeps no ledger: licensing checks are not evaluated.",
    "Lie": "A tampered chip reports a license state it cannot have.",
    "Masked": "The evidence is not authentic, so its license claims are not reported.",
    "Outcome": "The renewal decision named in `outcome`.",
    "Quota": "Quota arithmetic of the issuing transaction.",
}


_BUDGETS = Budgets(BUDGET)
__all__ = ["LICENSE_FILE", "license_document"]


@dataclass
class _Ctx:
    w: World
    delegations: dict[str, bytes] = field(default_factory=dict)

    def license(
        self,
        *,
        serial: int = 1,
        budgets: Budgets = _BUDGETS,
        expiry_s: int = EXPIRY_S,
        ueid: bytes = UEID_A,
        nonce: bytes | None = None,
        min_firmware: tuple[int, ...] = (1, 1, 0),
        issuer: str | None = None,
        delegation_id: int | None = None,
        verifier: str | None = None,
        key_label: str | None = None,
    ) -> bytes:
        """An authority license by default; ``verifier`` signs with that node's key."""
        if key_label is not None:
            key = vector_key(key_label)
        elif verifier is not None:
            key = self.w.verifiers[verifier].key
        else:
            key = self.w.authority.key
        default_issuer = AUTHORITY_ID if verifier is None else verifier
        return sign_license(
            key,
            issuer=issuer or default_issuer,
            ueid=ueid,
            serial=serial,
            budgets=budgets,
            expiry_s=expiry_s,
            now_s=NOW_S,
            min_firmware=min_firmware,
            nonce=nonce,
            delegation_id=delegation_id,
        )


def _delegations(w: World) -> dict[str, bytes]:
    def make(
        did: int,
        verifier: str,
        quota: Budgets,
        *,
        exp: int = NOW_S + 90 * DAY_S,
        authority: Any = None,
    ) -> bytes:
        v = w.verifiers[verifier]
        return delegate(
            authority or w.authority,
            delegation_id=did,
            verifier_id=v.verifier_id,
            public_key=v.key.public_key,
            region=v.region,
            quota=quota,
            now_s=CERTIFIED_S,
            validity_s=exp - CERTIFIED_S,
        )

    from attest.identity import Authority

    impostor = Authority(AUTHORITY_ID, vector_key("impostor-authority"))
    stranger = Authority("authority.other", w.authority.key)
    return {
        "kl": make(1, "kl-1", Budgets(10 * BUDGET)),
        "sg-energy": make(2, "sg-1", Budgets(10 * BUDGET, 10**9)),
        "kl-expired": make(3, "kl-1", Budgets(10 * BUDGET), exp=NOW_S),
        "kl-revoked": make(4, "kl-1", Budgets(10 * BUDGET)),
        "impostor": make(1, "kl-1", Budgets(10 * BUDGET), authority=impostor),
        "stranger": make(1, "kl-1", Budgets(10 * BUDGET), authority=stranger),
    }


# -- acceptance --------------------------------------------------------
@dataclass
class _Accept:
    comment: str
    license: bytes
    delegation: bytes | None
    expect: str | None
    flags: tuple[str, ...] = ()
    state: ChipLicensing = field(default_factory=ChipLicensing)
    ueid: bytes = UEID_A
    firmware: tuple[int, ...] = FIRMWARE
    chip_time_s: int = CHIP_TIME_S
    now_s: int = NOW_S
    session_nonce: bytes | None = None


def _accept_cases(c: _Ctx) -> list[_Accept]:
    d = c.delegations
    kl: dict[str, Any] = {"verifier": "kl-1", "delegation_id": 1}
    licensed = ChipLicensing(
        serial=3,
        remaining=Budgets(4 * 10**14),
        expiry_s=CHIP_TIME_S + 10,
        applied=(3 * BUDGET, 0, 0),
    )
    used = ChipLicensing(delegations=(DelegationUse(1, NOW_S + 90 * DAY_S, (9 * BUDGET, 0, 0)),))
    cases = [
        _Accept("authority license, fresh chip", c.license(), None, None, ("Valid",)),
        _Accept("delegated license (kl-1, delegation 1)", c.license(**kl), d["kl"], None,
                ("Valid", "Delegated")),
        _Accept("bound to the session nonce", c.license(nonce=SESSION_NONCE), None, None,
                ("Valid", "Nonce"), session_nonce=SESSION_NONCE),
        _Accept("bound to the chip's request nonce (cleared after use)",
                c.license(nonce=REQUEST_NONCE), None, None, ("Valid", "Nonce"),
                state=ChipLicensing(request_nonce=REQUEST_NONCE)),
        _Accept("energy and interconnect budgets under a delegation with an energy quota",
                c.license(serial=1, budgets=Budgets(BUDGET, 10**8, 10**12), verifier="sg-1",
                          delegation_id=2),
                d["sg-energy"], None, ("Valid", "Delegated")),
        _Accept("unexpired budget carries over", c.license(serial=4), None, None,
                ("Valid", "CarryOver"), state=licensed),
        _Accept("expired budget is forfeited", c.license(serial=4), None, None,
                ("Valid", "Forfeit"), state=dataclasses.replace(licensed, expiry_s=CHIP_TIME_S)),
        _Accept("serial may jump", c.license(serial=9), None, None, ("Valid",), state=licensed),
        _Accept("firmware exactly the minimum", c.license(min_firmware=FIRMWARE), None, None,
                ("Valid", "Boundary")),
        _Accept("expiry one second after chip time", c.license(expiry_s=CHIP_TIME_S + 1), None,
                None, ("Valid", "Boundary")),
        _Accept("delegation quota reached exactly", c.license(**kl), d["kl"], None,
                ("Valid", "Delegated", "Boundary"), state=used),
        # -- refusals, in check order
        _Accept("delegation signed by an impostor authority key", c.license(**kl),
                d["impostor"], LR.LICENSE_DELEGATION_INVALID, ("Refused", "Delegated")),
        _Accept("delegation issued under another authority id", c.license(**kl), d["stranger"],
                LR.LICENSE_DELEGATION_INVALID, ("Refused", "Delegated")),
        _Accept("a license token in place of the delegation", c.license(**kl), c.license(),
                LR.LICENSE_DELEGATION_INVALID, ("Refused", "Delegated")),
        _Accept("delegation expired on the chip's clock", c.license(verifier="kl-1",
                delegation_id=3), d["kl-expired"], LR.LICENSE_DELEGATION_EXPIRED,
                ("Refused", "Delegated", "Boundary")),
        _Accept("delegation revoked (revocation list held by the chip)",
                c.license(verifier="kl-1", delegation_id=4), d["kl-revoked"],
                LR.LICENSE_DELEGATION_REVOKED, ("Refused", "Delegated"),
                state=ChipLicensing(revocations_number=2, revoked_delegations=frozenset({4}))),
        _Accept("validly signed but serial 0 (malformed payload)", _raw_license(c, serial=0),
                None, LR.LICENSE_MALFORMED, ("Refused",)),
        _Accept("validly signed payload with an unknown claim",
                _raw_license(c, extra={C.HEM_POD_CLASS: 8}), None, LR.LICENSE_MALFORMED,
                ("Refused",)),
        _Accept("signed by an impostor key claiming the authority",
                c.license(key_label="impostor-authority"), None, LR.LICENSE_SIGNATURE_INVALID,
                ("Refused",)),
        _Accept("one signature bit flipped", _flip_last(c.license()), None,
                LR.LICENSE_SIGNATURE_INVALID, ("Refused",)),
        _Accept("license claims signed as a Challenge (domain separation)",
                _as_type(c, ContentType.CHALLENGE), None, LR.LICENSE_SIGNATURE_INVALID,
                ("Refused",)),
        _Accept("delegated license signed by the authority, not the delegated key",
                c.license(issuer="kl-1", delegation_id=1), d["kl"], LR.LICENSE_SIGNATURE_INVALID,
                ("Refused", "Delegated")),
        _Accept("delegated license names another delegation", c.license(verifier="kl-1",
                delegation_id=2), d["kl"], LR.LICENSE_ISSUER_MISMATCH, ("Refused", "Delegated")),
        _Accept("delegated license names another issuer", c.license(verifier="kl-1",
                issuer="sg-1", delegation_id=1), d["kl"], LR.LICENSE_ISSUER_MISMATCH,
                ("Refused", "Delegated")),
        _Accept("authority license that names a delegation, none presented",
                c.license(delegation_id=1), None, LR.LICENSE_ISSUER_MISMATCH, ("Refused",)),
        _Accept("license for another chip", c.license(ueid=UEID_B), None, LR.LICENSE_WRONG_CHIP,
                ("Refused",)),
        _Accept("serial equal to the high-water mark (replay)", c.license(serial=3), None,
                LR.LICENSE_REPLAYED, ("Refused",), state=licensed),
        _Accept("serial below the high-water mark", c.license(serial=2), None,
                LR.LICENSE_SERIAL_OUT_OF_ORDER, ("Refused",), state=licensed),
        _Accept("expiry equal to the chip time", c.license(expiry_s=CHIP_TIME_S), None,
                LR.LICENSE_EXPIRED, ("Refused", "Boundary")),
        _Accept("expiry before the chip time", c.license(expiry_s=10), None, LR.LICENSE_EXPIRED,
                ("Refused",)),
        _Accept("chip firmware older than the minimum", c.license(min_firmware=(1, 2, 1)),
                None, LR.LICENSE_FIRMWARE_TOO_OLD, ("Refused",)),
        _Accept("bound to a nonce the chip does not expect",
                c.license(nonce=vector_nonce("license/other")), None, LR.LICENSE_NONCE_MISMATCH,
                ("Refused", "Nonce"), session_nonce=SESSION_NONCE),
        _Accept("bound to a nonce, offline with no request outstanding",
                c.license(nonce=SESSION_NONCE), None, LR.LICENSE_NONCE_MISMATCH,
                ("Refused", "Nonce")),
        _Accept("budget beyond the delegation's quota", c.license(budgets=Budgets(11 * BUDGET),
                **kl), d["kl"], LR.LICENSE_QUOTA_EXCEEDED, ("Refused", "Delegated")),
        _Accept("quota already used up by earlier licenses", c.license(budgets=Budgets(BUDGET + 1),
                **kl), d["kl"], LR.LICENSE_QUOTA_EXCEEDED, ("Refused", "Delegated", "Boundary"),
                state=used),
        _Accept("energy left unbudgeted under an energy quota",
                c.license(verifier="sg-1", delegation_id=2), d["sg-energy"],
                LR.LICENSE_QUOTA_EXCEEDED, ("Refused", "Delegated")),
        # -- precedence
        _Accept("another chip's license, replayed serial: the ueid check comes first",
                c.license(ueid=UEID_B, serial=3), None, LR.LICENSE_WRONG_CHIP,
                ("Refused", "Precedence"), state=licensed),
        _Accept("forged and for another chip: the signature check comes first",
                c.license(key_label="impostor-authority", ueid=UEID_B), None,
                LR.LICENSE_SIGNATURE_INVALID, ("Refused", "Precedence")),
        _Accept("revoked delegation and a quota overrun: revocation comes first",
                c.license(verifier="kl-1", delegation_id=4, budgets=Budgets(10**18)),
                d["kl-revoked"], LR.LICENSE_DELEGATION_REVOKED,
                ("Refused", "Precedence", "Delegated"),
                state=ChipLicensing(revocations_number=2, revoked_delegations=frozenset({4}))),
        _Accept("expired and firmware too old: expiry comes first",
                c.license(expiry_s=1, min_firmware=(9,)), None, LR.LICENSE_EXPIRED,
                ("Refused", "Precedence")),
    ]  # fmt: skip
    return cases


def _raw_license(c: _Ctx, *, serial: int = 1, extra: dict[int, Any] | None = None) -> bytes:
    claims: dict[int, Any] = {
        C.ISS: AUTHORITY_ID,
        C.IAT: NOW_S,
        C.UEID: UEID_A,
        C.SWVERSION: ["1.1.0", 1],
        LC.HEM_LICENSE_SERIAL: serial,
        LC.HEM_LICENSE_BUDGETS: {C.METER_FLOPS: BUDGET},
        LC.HEM_LICENSE_EXPIRY: EXPIRY_S,
        **(extra or {}),
    }
    return sign1(c.w.authority.key, LICENSE_CONTENT_TYPE, encode(claims))


def _as_type(c: _Ctx, content_type: str) -> bytes:
    from attest.codec.cose import parse_sign1

    payload = parse_sign1(c.license()).payload
    return sign1(c.w.authority.key, content_type, payload)


def _flip_last(token: bytes) -> bytes:
    return token[:-1] + bytes([token[-1] ^ 1])


def _run_accept(c: _Ctx, a: _Accept) -> dict[str, Any]:
    grant = LicenseGrant(a.license, a.delegation)
    try:
        lic, delegation = check_license(
            a.state,
            grant,
            anchors=c.w.anchors,
            ueid=a.ueid,
            firmware=a.firmware,
            chip_time_s=a.chip_time_s,
            now_s=a.now_s,
            session_nonce=a.session_nonce,
        )
    except ChipRefusal as exc:
        if exc.reason != a.expect:
            raise VectorError(
                f"{a.comment!r}: refused {exc.reason}, written for {a.expect}"
            ) from None
        after = None
    else:
        if a.expect is not None:
            raise VectorError(f"{a.comment!r}: accepted, written for {a.expect}")
        after = licensing_json(
            apply_pending(accept(a.state, lic, delegation, now_s=a.now_s), a.chip_time_s)
        )
    return {
        "comment": a.comment,
        "flags": list(a.flags),
        "license": a.license.hex(),
        "delegation": None if a.delegation is None else a.delegation.hex(),
        "chip": {
            "ueid": a.ueid.hex(),
            "firmware": ".".join(map(str, a.firmware)),
            "chipTimeS": a.chip_time_s,
            "nowS": a.now_s,
            "sessionNonce": None if a.session_nonce is None else a.session_nonce.hex(),
            "license": licensing_json(a.state),
        },
        "result": "invalid" if a.expect else "valid",
        "refusal": a.expect,
        "after": after,
    }


# -- appraisal --------------------------------------------------------
@dataclass
class _Appraise:
    comment: str
    state: LicenseState | None
    ledger: LedgerView | None
    expect: tuple[ReasonCode, ...]
    flags: tuple[str, ...]
    flip: bool = False


def _ledger(*rows: tuple[int, int, int], reported: int = 0) -> LedgerView:
    return LedgerView.of((IssuedLicense(*r) for r in rows), reported)


def _appraise_cases() -> list[_Appraise]:
    two = _ledger((1, BUDGET, 1000), (2, BUDGET, 5000), reported=1)
    R = LicenseReason
    return [
        _Appraise("chip without the mechanism", None, two, (), ("Honest",)),
        _Appraise("unlicensed chip, empty ledger", LicenseState(0, 0, 10), _ledger(), (),
                  ("Honest",)),
        _Appraise("serial 2 with budget left", LicenseState(2, BUDGET, 2000), two, (), ("Honest",)),
        _Appraise("remaining equal to everything issued up to serial 2",
                  LicenseState(2, 2 * BUDGET, 2000), two, (), ("Honest", "Boundary")),
        _Appraise("expired license, nothing left", LicenseState(2, 0, 5000), two, (),
                  ("Honest", "Boundary")),
        _Appraise("no ledger: nothing is checked", LicenseState(7, 10**18, 1), None, (),
                  ("NoLedger",)),
        _Appraise("serial the ledger never issued", LicenseState(3, 0, 2000), two,
                  (R.LICENSE_SERIAL_UNKNOWN,), ("Lie",)),
        _Appraise("more budget left than issued", LicenseState(2, 2 * BUDGET + 1, 2000), two,
                  (R.LICENSE_BUDGET_EXCEEDS_ISSUED,), ("Lie", "Boundary")),
        _Appraise("budget of a later license counted early", LicenseState(1, BUDGET + 1, 10), two,
                  (R.LICENSE_BUDGET_EXCEEDS_ISSUED,), ("Lie",)),
        _Appraise("serial below the one reported before", LicenseState(1, 0, 2000),
                  _ledger((1, BUDGET, 1000), (2, BUDGET, 5000), reported=2),
                  (R.LICENSE_SERIAL_ROLLBACK,), ("Lie",)),
        _Appraise("budget left at the expiry chip time", LicenseState(2, 1, 5000), two,
                  (R.LICENSE_EXPIRY_IGNORED,), ("Lie", "Boundary")),
        _Appraise("forged license: unknown serial and budget", LicenseState(9, 10**18, 10), two,
                  (R.LICENSE_SERIAL_UNKNOWN, R.LICENSE_BUDGET_EXCEEDS_ISSUED), ("Lie",)),
        _Appraise("signature broken: license lies are masked", LicenseState(9, 10**18, 10), two,
                  (Reason.BAD_SIGNATURE,), ("Masked",), flip=True),
    ]  # fmt: skip


def _run_appraise(w: World, a: _Appraise, label: str) -> dict[str, Any]:
    chip = w.chip("hx100-a")
    _, token = w.challenge(f"license/{label}")
    verifier = w.verifiers["kl-1"]
    challenge = chip.accept_challenge(verifier.cert, token, ROUND1_S)
    chip.attest_counter += 1
    claims = chip.current_evidence(challenge, ROUND1_SIGN_S).with_claims(license_state=a.state)
    evidence = chip.sign_arbitrary_evidence(claims)
    if a.flip:
        evidence = _flip_last(evidence)
    verdict = appraise_with_ledger(
        evidence,
        challenge=Challenge.verify(token, verifier.key.public_key),
        chain=chip.chain,
        state=None,
        anchors=w.anchors,
        revocations=Revocations(),
        policy=Policy(),
        now_ms=ROUND1_MS,
        ledger=a.ledger,
    ).verdict
    reasons = tuple(sorted(verdict.reasons))
    if reasons != tuple(sorted(a.expect)):
        raise VectorError(f"{a.comment!r}: the core says {[r.name for r in reasons]}")
    return {
        "comment": a.comment,
        "flags": list(a.flags),
        "evidence": evidence.hex(),
        "context": {
            "challenge": token.hex(),
            "verifierCert": verifier.cert.hex(),
            "deviceCert": chip.chain.device_cert.hex(),
            "manufacturerCert": chip.chain.manufacturer_cert.hex(),
            "priorState": None,
            "revocations": revocations_json(Revocations()),
            "nowMs": ROUND1_MS,
            "ledger": ledger_json(a.ledger),
        },
        "licenseState": license_state_json(a.state),
        "result": "invalid" if verdict.tier is Tier.CONTRAINDICATED else "valid",
        "tier": verdict.tier.name.lower(),
        "reasons": [r.name for r in reasons],
    }


# -- renewal and quota --------------------------------------------------------
RENEWAL_POLICY = LicensingPolicy(budgets=Budgets(BUDGET), validity_s=3600, renew_below=0.25)


def _renewal_cases() -> list[tuple[str, Tier, LicenseState | None, LedgerView, RenewalOutcome]]:
    one = _ledger((1, BUDGET, 4600))
    Out, A = RenewalOutcome, Tier.AFFIRMING
    quarter = BUDGET // 4
    return [
        ("chip reports no license state", A, None, _ledger(), Out.NO_LICENSE_STATE),
        ("license state without chip time", A, LicenseState(0, 0, None), _ledger(),
         Out.NO_LICENSE_STATE),
        ("warning verdict does not qualify", Tier.WARNING, LicenseState(0, 0, 1000), _ledger(),
         Out.NOT_QUALIFYING),
        ("contraindicated verdict does not qualify", Tier.CONTRAINDICATED,
         LicenseState(0, 0, 1000), _ledger(), Out.NOT_QUALIFYING),
        ("first license", A, LicenseState(0, 0, 1000), _ledger(), Out.ISSUED),
        ("issued, not yet applied: the same license again", A, LicenseState(0, 0, 1000), one,
         Out.REDELIVERED),
        ("issued, not applied, expired meanwhile: a new one", A, LicenseState(0, 0, 4600), one,
         Out.ISSUED),
        ("plenty left", A, LicenseState(1, quarter, 1000), one, Out.NOT_DUE),
        ("just below the renewal threshold", A, LicenseState(1, quarter - 1, 1000), one,
         Out.ISSUED),
        ("validity running out", A, LicenseState(1, BUDGET, 4600 - 899), one, Out.ISSUED),
        ("validity exactly at the threshold", A, LicenseState(1, BUDGET, 4600 - 900), one,
         Out.NOT_DUE),
        ("chip ahead of the ledger", A, LicenseState(5, 0, 1000), _ledger(), Out.ISSUED),
    ]  # fmt: skip


def _run_renewal(case: tuple[Any, ...]) -> dict[str, Any]:
    comment, tier, state, view, expect = case
    plan = plan_renewal(tier=tier, state=state, view=view, policy=RENEWAL_POLICY)
    if plan.outcome is not expect:
        raise VectorError(f"{comment!r}: plan {plan.outcome}, written for {expect}")
    return {
        "comment": comment,
        "flags": ["Outcome"],
        "tier": tier.name.lower(),
        "licenseState": license_state_json(state),
        "ledger": ledger_json(view),
        "outcome": plan.outcome.name,
        "serial": plan.serial,
        "expiryS": plan.expiry_s,
    }


_QuotaCase = tuple[str, tuple[int, int, int], Budgets, tuple[Any, Any, Any], str | None]


def _quota_cases() -> list[_QuotaCase]:
    q = (10 * BUDGET, None, None)
    qe = (10 * BUDGET, 10**9, None)
    return [
        ("fits", (0, 0, 0), Budgets(BUDGET), q, None),
        ("reaches the quota exactly", (9 * BUDGET, 0, 0), Budgets(BUDGET), q, None),
        ("one FLOP over", (9 * BUDGET, 0, 0), Budgets(BUDGET + 1), q, "flops"),
        ("energy metered by the quota and budgeted", (0, 0, 0), Budgets(BUDGET, 10**9), qe, None),
        ("energy metered by the quota, left unbudgeted", (0, 0, 0), Budgets(BUDGET), qe,
         "energy_mj"),
        ("interconnect budgeted, not metered by the quota", (0, 0, 0),
         Budgets(BUDGET, None, 10**15), q, None),
        ("issued total would overflow 64 bits", ((1 << 64) - 1, 0, 0), Budgets(1),
         (None, None, None), "flops"),
    ]  # fmt: skip


def _run_quota(case: _QuotaCase) -> dict[str, Any]:
    comment, issued, budget, quota, expect = case
    meter = exceeded_meter(issued, budget.as_tuple(), quota)
    if meter != expect:
        raise VectorError(f"{comment!r}: {meter}, written for {expect}")
    after = None if meter else charged(issued, budget.as_tuple())
    return {
        "comment": comment,
        "flags": ["Quota"] + (["Boundary"] if "exactly" in comment else []),
        "quota": dict(zip(("flops", "energyMj", "interconnectBytes"), quota, strict=True)),
        "issued": dict(zip(("flops", "energyMj", "interconnectBytes"), issued, strict=True)),
        "budget": budgets_json(budget),
        "result": "invalid" if meter else "valid",
        "meter": meter,
        "issuedAfter": None
        if after is None
        else dict(zip(("flops", "energyMj", "interconnectBytes"), after, strict=True)),
    }


# -- the document --------------------------------------------------------
def license_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    c = _Ctx(w, _delegations(w))
    anchors = {
        "authorityId": w.anchors.authority_id,
        "authorityKey": w.anchors.authority_key.raw.hex(),
    }
    groups: list[dict[str, Any]] = [
        {
            "type": "LicenseAcceptance",
            "comment": "the chip's license acceptance checks, in order",
            "trustAnchors": anchors,
            "tests": [_run_accept(c, a) for a in _accept_cases(c)],
        },
        {
            "type": "LicenseStateAppraisal",
            "comment": "appraisal of a reported license state against the ledger",
            "trustAnchors": anchors,
            "policy": policy_json(Policy()),
            "tests": [_run_appraise(w, a, str(i)) for i, a in enumerate(_appraise_cases())],
        },
        {
            "type": "LicenseRenewal",
            "comment": "the verifier's renewal decision",
            "policy": renewal_policy_json(RENEWAL_POLICY),
            "tests": [_run_renewal(r) for r in _renewal_cases()],
        },
        {
            "type": "LicenseQuota",
            "comment": "quota arithmetic of the issuing transaction",
            "tests": [_run_quota(q) for q in _quota_cases()],
        },
    ]
    tc = 0
    for g in groups:
        for i, t in enumerate(g["tests"]):
            tc += 1
            g["tests"][i] = {"tcId": tc, **t}
    refusals = {t["refusal"] for t in groups[0]["tests"]} - {None}
    if refusals != set(L.LICENSE_REFUSALS):
        raise VectorError(f"refusals without a vector: {set(L.LICENSE_REFUSALS) - refusals}")
    used = {f for g in groups for t in g["tests"] for f in t["flags"]}
    if used - set(LICENSE_NOTES):
        raise VectorError(f"flags without a note: {sorted(used - set(LICENSE_NOTES))}")
    header = [
        *LICENSE_HEADER,
        "Chip refusals, in check order: " + ", ".join(L.LICENSE_REFUSALS),
        "Reason codes: "
        + ", ".join(f"{r.name} {int(r)} ({r.tier.name.lower()})" for r in LicenseReason),
    ]
    notes = {k: v for k, v in LICENSE_NOTES.items() if k in used}
    doc = vector_document(LICENSE_ALGORITHM, tc, header, notes, groups)
    return annotate(doc, LICENSE_OUTPUTS, lambda g, t: list(LICENSE_SECTIONS[g["type"]]))


#: the expected-result fields of each group type (SPEC §16.6)
LICENSE_OUTPUTS = {
    "LicenseAcceptance": ("result", "refusal", "after"),
    "LicenseStateAppraisal": ("result", "tier", "reasons"),
    "LicenseRenewal": ("outcome", "serial", "expiryS"),
    "LicenseQuota": ("result", "meter", "issuedAfter"),
}
LICENSE_SECTIONS = {
    "LicenseAcceptance": ("13.5", "13.6", "13.7"),
    "LicenseStateAppraisal": ("9.5", "13.10"),
    "LicenseRenewal": ("13.11", "13.12"),
    "LicenseQuota": ("13.9",),
}
