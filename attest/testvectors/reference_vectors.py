"""Reference-values vectors (vectors/reference_values.json): opening a vendor's document, folding.

``ReferenceValuesOpen`` pins SPEC §6.10 "Verifying" step by step — the certificate the document
carries (impostor authority, another issuer, expiry at the exact second), the signature, ``iss``
against the certificate's ``sub``, every schema rule stated in CDDL or only in prose, the sizes
at and past the bounds, and anti-rollback by number — each with its refusal name and, for a
valid document, what a verifier learns from it. ``ReferenceValuesFold`` pins §8.1 rules 1–3 and
the referenced-model rule: the models and references a set of documents yields, or the rule that
refuses it. Each case states the outcome it is written for; generation fails if the checker
disagrees. (The module is long because it is the table of 75 cases; the machinery is the last
hundred lines.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attest.codec.cbor import encode
from attest.codec.cose import sign1
from attest.hardware import DEFAULT_MODELS, ChipModel
from attest.identity import YEAR_S, Manufacturer
from attest.keys import SigningKey
from attest.messages import claims as C
from attest.messages.certs import ManufacturerCert
from attest.messages.content import ContentType
from attest.messages.reference import FirmwareReference, FirmwareStatus, ReferenceValues
from attest.testvectors.format import VectorError, vector_document
from attest.testvectors.reference_check import (
    REFERENCE_ALGORITHM,
    _fold,
    _open,
    model_json,
)
from attest.testvectors.world import (
    CERTIFIED_S,
    NOW_S,
    World,
    build_world,
    vector_key,
    vector_nonce,
)
from attest.verify.references import RvRefusal

HEADER = [
    "Vendors' reference values (SPEC §6.10, §8.1). ReferenceValuesOpen: a verifier with the",
    "group's trust anchors opens the ReferenceValues token at time nowS (seconds), holding",
    "document number heldNumber of the token's manufacturer (null: none). It runs §6.10",
    "'Verifying' steps 1-7 in order and gets the document, or the refusal name of the first step",
    "that fails. document is what it learns: issuer, issuedAt, number, the models and the",
    "firmware entries in the document's order (versions written as their integer parts joined",
    "by dots, statuses by name). ReferenceValuesFold: a verifier whose configured models are",
    "configuredModels folds the documents (tokens, each opened at the group's nowS with no held",
    "number) into its policy by §8.1. It gets the resulting models, the firmware references",
    "sorted by model and version (§8.2) and the referenced models (sorted), or the number of the",
    "lowest-numbered rule of §8.1 that refuses the set (refusedRule; the outputs then are null).",
]

NOTES = {
    "Contents": "A valid document: what the verifier learns from it.",
    "Numbering": "hem-rv-number against the number held for that manufacturer (anti-rollback).",
    "Issuer": "The certificate the document carries, or its iss against that certificate.",
    "Expiry": "The carried certificate's exp against nowS, at the exact second.",
    "Signature": "The document's signature does not verify under the carried certificate's key.",
    "Envelope": "Not a ReferenceValues token, or no certificate to check it with (step 1).",
    "CddlInvalid": "Validly signed; the payload breaks a rule the CDDL of §6.10 states.",
    "ProseInvalid": "Validly signed; the payload satisfies the CDDL but breaks a prose rule.",
    "Boundary": "Sizes and numbers at and just past their bounds.",
    "ErrorPrecedence": "Several steps fail; the first in §6.10's order names the refusal.",
    "Fold": "Folding a set of opened documents into the policy (§8.1 rules 2-3).",
    "Ownership": "One model name, one vendor: redefinitions and a model declared twice.",
    "OneDocumentEach": "Rule 1 over a set: every document opens, one per manufacturer.",
}

QX9 = ChipModel("QX9", 2 * 10**15, 900_000, 18 * 10**11, 16)
RZ2 = ChipModel("RZ2", 5 * 10**14, 350_000, 2 * 10**11, 4)
EX5 = ChipModel("EX5", 10**14, 200_000, 10**10, 1)
HX100 = DEFAULT_MODELS["HX100"]


def _fw(model: str, version: tuple[int, ...], status: FirmwareStatus) -> FirmwareReference:
    return FirmwareReference(model, version, vector_nonce(f"rv/{model}/{version}"), status)


QX9_FIRMWARE = (
    _fw("QX9", (2, 9, 0), FirmwareStatus.REVOKED),
    _fw("QX9", (3, 0, 0), FirmwareStatus.OUTDATED),
    _fw("QX9", (3, 1, 0), FirmwareStatus.CURRENT),
)
#: one past the bounds of §6.10 (the valid cases take the first 64 / 1 024)
MANY_MODELS = tuple(
    ChipModel(f"M{i:02d}", 10**15 + i, 500_000, 10**11, 1 + i % 8) for i in range(65)
)
Q = ChipModel("Q", 10**15, 500_000, 10**11, 8)  # a one-letter name keeps 1 024 entries small
MANY_FIRMWARE = tuple(
    FirmwareReference("Q", (1, 0, i), vector_nonce(f"rv/Q/{i}"), FirmwareStatus(i % 3))
    for i in range(1025)
)


@dataclass(frozen=True, slots=True)
class _Vendor:
    """A manufacturer of the vectors: its id, key and the certificate its documents carry."""

    mid: str
    key: SigningKey
    cert: bytes

    def doc(
        self,
        number: int = 4,
        models: tuple[ChipModel, ...] = (QX9,),
        firmware: tuple[FirmwareReference, ...] = QX9_FIRMWARE,
        *,
        issuer: str | None = None,
        issued_at: int = NOW_S,
    ) -> ReferenceValues:
        return ReferenceValues(
            issuer=self.mid if issuer is None else issuer,
            issued_at=issued_at,
            number=number,
            issuer_cert=self.cert,
            models=models,
            firmware=firmware,
        )

    def sign(self, doc: ReferenceValues) -> bytes:
        return doc.sign(self.key)

    def raw(
        self, claims: dict[Any, Any], content_type: str = ContentType.REFERENCE_VALUES
    ) -> bytes:
        """Any claims map, signed as a ReferenceValues (or another type's) token."""
        return sign1(self.key, content_type, encode(claims))


def _vendor(m: Manufacturer) -> _Vendor:
    return _Vendor(m.manufacturer_id, m.key, m.cert)


def _expiry(w: World) -> int:
    """``exp`` of mfr-expiring's certificate (NOW_S + 1 in the world)."""
    cert = w.manufacturers["mfr-expiring"].cert
    return ManufacturerCert.verify(cert, w.anchors.authority_key).expires_at


def _certified(w: World, mid: str) -> _Vendor:
    """A further manufacturer the world's Authority certified (for sets of several vendors)."""
    key = vector_key("manufacturer/" + mid)
    cert = w.authority.certify_manufacturer(mid, key.public_key, now_s=CERTIFIED_S)
    return _Vendor(mid, key, cert)


def _with(doc: ReferenceValues, *mutations: tuple[Any, Any]) -> dict[Any, Any]:
    """The claims of ``doc`` with (key, value) replaced; value None removes the claim."""
    claims = dict(doc.to_claims())
    for key, value in mutations:
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _model_claims(m: ChipModel, **replace: Any) -> dict[int, Any]:
    keys = {"name": 1, "flops": 2, "power": 3, "interconnect": 4, "pod": 5}
    claims: dict[int, Any] = {
        1: m.name.encode(),
        2: m.peak_flops_per_s,
        3: m.peak_power_mw,
        4: m.peak_interconnect_bytes_per_s,
        5: m.max_pod_size,
    }
    for name, value in replace.items():
        claims[keys[name]] = value
    return claims


def _fw_claims(r: FirmwareReference, **replace: Any) -> dict[int, Any]:
    claims: dict[int, Any] = {
        1: r.hwmodel.encode(),
        2: ".".join(str(p) for p in r.version),
        3: r.measurement,
        4: int(r.status),
    }
    for key, value in replace.items():
        claims[{"version": 2, "measurement": 3, "status": 4}[key]] = value
    return claims


def _flip(token: bytes, at: int = -1) -> bytes:
    raw = bytearray(token)
    raw[at] ^= 0x01
    return bytes(raw)


@dataclass(frozen=True, slots=True)
class _Open:
    """A ReferenceValuesOpen case and the refusal it is written for (None: it opens)."""

    comment: str
    token: bytes
    refusal: str | None
    flags: tuple[str, ...]
    sections: tuple[str, ...] = ("6.10",)
    now_s: int = NOW_S
    held: int | None = None


@dataclass(frozen=True, slots=True)
class _Fold:
    """A ReferenceValuesFold case and the rule of §8.1 it is written to fail (None: none)."""

    comment: str
    documents: tuple[bytes, ...]
    rule: int | None
    flags: tuple[str, ...]
    sections: tuple[str, ...] = ("8.1",)
    configured: Mapping[str, ChipModel] = field(default_factory=lambda: DEFAULT_MODELS)


MALFORMED, ISSUER_INVALID = RvRefusal.RV_MALFORMED, RvRefusal.RV_ISSUER_INVALID
EXPIRED, SIGNATURE = RvRefusal.RV_ISSUER_EXPIRED, RvRefusal.RV_SIGNATURE_INVALID
MISMATCH, NOT_NEWER = RvRefusal.RV_ISSUER_MISMATCH, RvRefusal.RV_NOT_NEWER
#: sections of the certificate, numbering, envelope and version cases
S_CERT, S_NUM = ("6.10", "6.2", "3.1"), ("6.10", "8.1")
S_ENV, S_VER = ("6.10", "4.5", "4.3"), ("6.10", "6.7")


def _open_cases(w: World) -> list[_Open]:
    a = _vendor(w.manufacturers["mfr-a"])
    base, ok = a.doc(), a.sign(a.doc())
    return [
        *_valid_cases(a),
        *_numbering_cases(a, ok),
        *_issuer_cases(w, a),
        *_envelope_cases(w, a, base, ok),
        *_schema_cases(a, base),
        *_precedence_cases(w, a, base),
    ]


def _valid_cases(a: _Vendor) -> list[_Open]:
    hx = _fw("HX100", (1, 2), FirmwareStatus.CURRENT)
    leading = _fw_claims(QX9_FIRMWARE[2], version="03.01.000")
    four = _fw("QX9", (3, 1, 0, 7), FirmwareStatus.CURRENT)
    contents, edge = ("Contents",), ("Contents", "Boundary")
    return [
        _Open("mfr-a: one model, firmware of each status", a.sign(a.doc()), None, contents),
        _Open(
            "mfr-a adopts the built-in HX100 (identical limits) beside its own QX9",
            a.sign(a.doc(models=(QX9, HX100), firmware=(*QX9_FIRMWARE, hx))),
            None,
            contents,
        ),
        _Open(
            "an empty document (no models, no firmware)",
            a.sign(a.doc(models=(), firmware=())),
            None,
            edge,
        ),
        _Open(
            "a model declared with no firmware",
            a.sign(a.doc(models=(QX9, RZ2))),
            None,
            contents,
        ),
        _Open(
            "a four-part firmware version", a.sign(a.doc(firmware=(four,))), None, contents, S_VER
        ),
        _Open(
            "a version with leading zeros (03.01.000 is 3.1.0)",
            a.raw(_with(a.doc(), (C.HEM_RV_FIRMWARE, [leading]))),
            None,
            contents,
            S_VER,
        ),
        _Open(
            "iat is informational (issued ten years from now)",
            a.sign(a.doc(issued_at=NOW_S + 10 * YEAR_S)),
            None,
            contents,
        ),
        _Open(
            "64 models (the most a document may declare)",
            a.sign(a.doc(models=MANY_MODELS[:64], firmware=())),
            None,
            edge,
        ),
        _Open(
            "1 024 firmware entries (the most a document may list)",
            a.sign(a.doc(models=(Q,), firmware=MANY_FIRMWARE[:1024])),
            None,
            edge,
        ),
    ]


def _numbering_cases(a: _Vendor, ok: bytes) -> list[_Open]:
    num, edge = ("Numbering",), ("Numbering", "Boundary")
    top = a.sign(a.doc(number=2**64 - 1))
    return [
        _Open("number 4, holding 3", ok, None, num, S_NUM, held=3),
        _Open("number 4, holding 4 (the same number again)", ok, NOT_NEWER, num, S_NUM, held=4),
        _Open("number 4, holding 5 (rollback)", ok, NOT_NEWER, num, S_NUM, held=5),
        _Open(
            "number 1000, holding 1 (numbers need not be consecutive)",
            a.sign(a.doc(number=1000)),
            None,
            num,
            S_NUM,
            held=1,
        ),
        _Open("number 1, holding none", a.sign(a.doc(number=1)), None, edge, S_NUM),
        _Open("number 2^64 - 1, holding 2^64 - 2", top, None, edge, S_NUM, held=2**64 - 2),
        _Open("number 2^64 - 1, holding 2^64 - 1", top, NOT_NEWER, edge, S_NUM, held=2**64 - 1),
        _Open(
            "number 0 (hem-rv-number is at least 1)",
            a.sign(a.doc(number=0)),
            MALFORMED,
            ("Numbering", "CddlInvalid", "Boundary"),
        ),
    ]


def _issuer_cases(w: World, a: _Vendor) -> list[_Open]:
    expiring = _vendor(w.manufacturers["mfr-expiring"])
    rogue = _vendor(w.manufacturers["mfr-rogue"])
    other_authority = ManufacturerCert(
        issuer="other-authority",
        manufacturer_id="mfr-a",
        issued_at=CERTIFIED_S,
        expires_at=CERTIFIED_S + 10 * YEAR_S,
        public_key=a.key.public_key,
    ).sign(w.authority.key)
    carrying = {
        "other-authority": _Vendor("mfr-a", a.key, other_authority),
        "verifier-cert": _Vendor("mfr-a", a.key, w.verifiers["kl-1"].cert),
        "garbage": _Vendor("mfr-a", a.key, b"\xd2\x84" + bytes(14)),
        "other-key": _Vendor("mfr-a", expiring.key, a.cert),
    }
    issuer, signature = ("Issuer",), ("Signature",)
    s_sig = ("6.10", "4.5")
    return [
        _Open(
            "mfr-rogue, certified by an impostor authority (same authority id, another key)",
            rogue.sign(rogue.doc()),
            ISSUER_INVALID,
            issuer,
            S_CERT,
        ),
        _Open(
            "a ManufacturerCert signed by the authority key, but with iss other-authority",
            carrying["other-authority"].sign(carrying["other-authority"].doc()),
            ISSUER_INVALID,
            issuer,
            S_CERT,
        ),
        _Open(
            "the carried certificate is a VerifierCert of the authority",
            carrying["verifier-cert"].sign(carrying["verifier-cert"].doc()),
            ISSUER_INVALID,
            issuer,
            ("6.10", "6.2", "4.5"),
        ),
        _Open(
            "the carried certificate is 16 bytes that are no token",
            carrying["garbage"].sign(carrying["garbage"].doc()),
            ISSUER_INVALID,
            issuer,
            s_sig,
        ),
        _Open(
            "mfr-expiring, one second before its certificate expires",
            expiring.sign(expiring.doc()),
            None,
            ("Expiry",),
            S_CERT,
            now_s=_expiry(w) - 1,
        ),
        _Open(
            "mfr-expiring at its certificate's exp",
            expiring.sign(expiring.doc()),
            EXPIRED,
            ("Expiry",),
            S_CERT,
            now_s=_expiry(w),
        ),
        _Open(
            "iss mfr-b, signed by mfr-a's key and carrying mfr-a's certificate",
            a.sign(a.doc(issuer="mfr-b")),
            MISMATCH,
            issuer,
        ),
        _Open(
            "mfr-expiring speaks for mfr-a (its own certificate and key, iss mfr-a)",
            expiring.sign(expiring.doc(issuer="mfr-a")),
            MISMATCH,
            issuer,
        ),
        _Open(
            "mfr-a's certificate, signed by mfr-expiring's key",
            carrying["other-key"].sign(carrying["other-key"].doc()),
            SIGNATURE,
            signature,
            s_sig,
        ),
        _Open(
            "one bit of the signature flipped", _flip(a.sign(a.doc())), SIGNATURE, signature, s_sig
        ),
        _Open(
            "the number raised after signing",
            _resigned_payload(a.sign(a.doc()), a.raw(_with(a.doc(), (C.HEM_RV_NUMBER, 5)))),
            SIGNATURE,
            signature,
            s_sig,
        ),
    ]


def _envelope_cases(w: World, a: _Vendor, base: ReferenceValues, ok: bytes) -> list[_Open]:
    env = ("Envelope",)
    return [
        _Open("truncated by one byte", ok[:-1], MALFORMED, env, S_ENV),
        _Open("a DeviceCert token of mfr-a", w.chain("hx100-a").device_cert, MALFORMED, env, S_ENV),
        _Open("mfr-a's ManufacturerCert alone", a.cert, MALFORMED, env, S_ENV),
        _Open(
            "a valid document's claims signed as a DeviceCert",
            a.raw(base.to_claims(), ContentType.DEVICE_CERT),
            MALFORMED,
            env,
            S_ENV,
        ),
        _Open(
            "no hem-rv-issuer-cert claim",
            a.raw(_with(base, (C.HEM_RV_ISSUER_CERT, None))),
            MALFORMED,
            env,
        ),
        _Open(
            "hem-rv-issuer-cert is a text string",
            a.raw(_with(base, (C.HEM_RV_ISSUER_CERT, "mfr-a"))),
            MALFORMED,
            env,
        ),
        _Open(
            "the payload is an array, not a map",
            sign1(a.key, ContentType.REFERENCE_VALUES, encode([a.cert])),
            MALFORMED,
            env,
            ("6.10", "6.1"),
        ),
    ]


def _schema_cases(a: _Vendor, base: ReferenceValues) -> list[_Open]:
    """Validly signed documents whose payload breaks a rule of §6.10 (CDDL or prose)."""

    def bad(comment: str, flags: tuple[str, ...], *changes: tuple[Any, Any], **kw: Any) -> _Open:
        return _Open(comment, a.raw(_with(base, *changes)), MALFORMED, flags, **kw)

    prose, cddl, edge = ("ProseInvalid",), ("CddlInvalid",), ("CddlInvalid", "Boundary")
    current = QX9_FIRMWARE[2]
    models, firmware = C.HEM_RV_MODELS, C.HEM_RV_FIRMWARE
    stray = _fw_claims(_fw("HX100", (1, 2, 0), FirmwareStatus.CURRENT))
    no_status = {k: v for k, v in _fw_claims(current).items() if k != 4}
    return [
        bad(
            "firmware for HX100, a model the document does not declare", prose, (firmware, [stray])
        ),
        bad("QX9 declared twice", prose, (models, [_model_claims(QX9)] * 2)),
        bad(
            "QX9 declared twice with different limits",
            prose,
            (models, [_model_claims(QX9), _model_claims(QX9, pod=1)]),
        ),
        bad("(QX9, 3.1.0) listed twice", prose, (firmware, [_fw_claims(current)] * 2)),
        bad(
            "(QX9, 3.1.0) listed twice, once as 03.01.000",
            prose,
            (firmware, [_fw_claims(current), _fw_claims(current, version="03.01.000")]),
            sections=S_VER,
        ),
        bad(
            "a model name that is not ASCII",
            prose,
            (models, [_model_claims(QX9, name="QX\u00e9".encode())]),
            sections=("6.10", "6.1"),
        ),
        bad(
            "65 models",
            edge,
            (models, [_model_claims(m) for m in MANY_MODELS]),
            (firmware, []),
        ),
        bad(
            "1 025 firmware entries",
            edge,
            (models, [_model_claims(Q)]),
            (firmware, [_fw_claims(r) for r in MANY_FIRMWARE]),
        ),
        bad(
            "a model name of 33 bytes",
            edge,
            (models, [_model_claims(QX9, name=b"Q" * 33)]),
            (firmware, []),
        ),
        bad("peak power 0", edge, (models, [_model_claims(QX9, power=0)])),
        bad("maximum pod size 0", edge, (models, [_model_claims(QX9, pod=0)])),
        bad("a model map with an unknown key 6", cddl, (models, [{**_model_claims(QX9), 6: 1}])),
        bad("firmware status 3", cddl, (firmware, [_fw_claims(current, status=3)])),
        bad(
            "a five-part firmware version",
            cddl,
            (firmware, [_fw_claims(current, version="3.1.0.0.1")]),
            sections=S_VER,
        ),
        bad(
            "a measurement of 31 bytes",
            cddl,
            (firmware, [_fw_claims(current, measurement=bytes(31))]),
        ),
        bad("a firmware entry without its status", cddl, (firmware, [no_status])),
        bad(
            "an unknown claim (exp, 4)",
            cddl,
            (C.EXP, NOW_S + YEAR_S),
            sections=("6.10", "6.1"),
        ),
    ]


def _precedence_cases(w: World, a: _Vendor, base: ReferenceValues) -> list[_Open]:
    """Several steps fail: the first in §6.10's order names the refusal."""
    expiring = _vendor(w.manufacturers["mfr-expiring"])
    rogue = _vendor(w.manufacturers["mfr-rogue"])
    other_key = _Vendor("mfr-a", expiring.key, a.cert)
    twice = (C.HEM_RV_MODELS, [_model_claims(QX9)] * 2)
    first = "ErrorPrecedence"
    return [
        _Open(
            "QX9 declared twice, signed by another key: the signature is checked first",
            other_key.raw(_with(base, twice)),
            SIGNATURE,
            (first, "Signature", "ProseInvalid"),
        ),
        _Open(
            "QX9 declared twice under an expired certificate",
            expiring.raw(_with(expiring.doc(), twice)),
            EXPIRED,
            (first, "Expiry", "ProseInvalid"),
            now_s=_expiry(w),
        ),
        _Open(
            "an impostor's document, not newer either",
            rogue.sign(rogue.doc()),
            ISSUER_INVALID,
            (first, "Issuer", "Numbering"),
            held=9,
        ),
        _Open(
            "expired and not newer",
            expiring.sign(expiring.doc()),
            EXPIRED,
            (first, "Expiry", "Numbering"),
            now_s=_expiry(w),
            held=9,
        ),
        _Open(
            "iss of another vendor and not newer",
            a.sign(a.doc(issuer="mfr-b")),
            MISMATCH,
            (first, "Issuer", "Numbering"),
            held=9,
        ),
        _Open(
            "number 0 to a holder of 3",
            a.sign(a.doc(number=0)),
            MALFORMED,
            (first, "CddlInvalid", "Numbering"),
            held=3,
        ),
    ]


def _resigned_payload(original: bytes, altered: bytes) -> bytes:
    """``altered``'s envelope and payload with ``original``'s signature (64 bytes at the end)."""
    return altered[:-64] + original[-64:]


def _fold_cases(w: World) -> list[_Fold]:
    a = _vendor(w.manufacturers["mfr-a"])
    expiring = _vendor(w.manufacturers["mfr-expiring"])
    rogue = _vendor(w.manufacturers["mfr-rogue"])
    b = _certified(w, "mfr-b")
    # listed out of order; the references come out in the version order of §8.2 (1.0 < 1.0.0,
    # 1.9 < 1.10), which is not the order of their texts
    rz2_fw = tuple(
        _fw("RZ2", v, FirmwareStatus(st))
        for v, st in (((1, 10), 0), ((1, 0, 0), 1), ((0, 9), 2), ((1, 9), 1), ((1, 0), 1))
    )
    hx_fw = (_fw("HX100", (1, 2, 0), FirmwareStatus.CURRENT),)
    ex_fw = (_fw("EX5", (1, 0, 0), FirmwareStatus.CURRENT),)
    doc_a = a.sign(a.doc())
    doc_b = b.sign(b.doc(number=1, models=(RZ2,), firmware=rz2_fw))
    doc_e = expiring.sign(expiring.doc(number=2, models=(EX5,), firmware=ex_fw))
    a_hx = a.sign(a.doc(models=(QX9, HX100), firmware=(*QX9_FIRMWARE, *hx_fw)))
    b_hx = b.sign(b.doc(number=1, models=(HX100,), firmware=()))
    faster = dataclasses.replace(HX100, peak_flops_per_s=4 * 10**15)
    a_fast = a.sign(a.doc(models=(faster,), firmware=hx_fw))
    b_qx = b.sign(b.doc(number=1, models=(QX9,), firmware=()))
    rogue_doc = rogue.sign(rogue.doc(number=1, models=(RZ2,), firmware=rz2_fw))
    lower = {"hx100": dataclasses.replace(HX100, name="hx100")}
    fold, owner, each = ("Fold",), ("Ownership",), ("OneDocumentEach",)
    r1 = ("8.1", "6.10")
    return [
        _Fold("no documents: the configured models alone", (), None, fold),
        _Fold("mfr-a's QX9 and its firmware", (doc_a,), None, fold),
        _Fold(
            "two vendors, each its own model (RZ2's versions sort as tuples: 1.9 before 1.10)",
            (doc_a, doc_b),
            None,
            fold,
            ("8.1", "8.2"),
        ),
        _Fold("the same two in the other order", (doc_b, doc_a), None, fold),
        _Fold("three vendors", (doc_e, doc_a, doc_b), None, fold),
        _Fold(
            "mfr-a adopts HX100 with identical limits: HX100 becomes a referenced model",
            (a_hx,),
            None,
            ("Fold", "Ownership"),
        ),
        _Fold("a declared model with no firmware is not a referenced model", (b_hx,), None, fold),
        _Fold(
            "an empty document adds nothing", (a.sign(a.doc(models=(), firmware=())),), None, fold
        ),
        _Fold(
            "no configured models: mfr-a's HX100 is new",
            (a_fast,),
            None,
            ("Fold", "Ownership"),
            configured={},
        ),
        _Fold(
            "model names are compared byte for byte: configured hx100 is not HX100",
            (a_fast,),
            None,
            ("Fold", "Ownership"),
            configured=lower,
        ),
        _Fold("mfr-a redefines the configured HX100 with a higher peak", (a_fast,), 2, owner),
        _Fold("mfr-a and mfr-b both declare QX9, with the same limits", (doc_a, b_qx), 2, owner),
        _Fold(
            "mfr-a and mfr-b both adopt the configured HX100 with identical limits",
            (a_hx, b_hx),
            2,
            owner,
        ),
        _Fold(
            "two documents of mfr-a (numbers 4 and 5)",
            (doc_a, a.sign(a.doc(number=5))),
            1,
            each,
        ),
        _Fold(
            "a document of an impostor authority's manufacturer beside mfr-a's",
            (doc_a, rogue_doc),
            1,
            each,
            r1,
        ),
        _Fold("a truncated document beside mfr-a's", (doc_a, doc_b[:-1]), 1, each, r1),
        _Fold(
            "two documents of mfr-a, one redefining HX100: rule 1 is checked first",
            (a_fast, doc_a),
            1,
            ("OneDocumentEach", "Ownership", "ErrorPrecedence"),
        ),
    ]


def _anchors_json(w: World) -> dict[str, str]:
    return {
        "authorityId": w.anchors.authority_id,
        "authorityKey": w.anchors.authority_key.raw.hex(),
    }


def _open_group(w: World, tc: int) -> dict[str, Any]:
    group: dict[str, Any] = {
        "type": "ReferenceValuesOpen",
        "comment": "a verifier at nowS, holding heldNumber of the token's vendor, opens a token",
        "outputs": ["result", "refusal", "document"],
        "trustAnchors": _anchors_json(w),
        "tests": [],
    }
    compute = _open(group)
    for c in _open_cases(w):
        if len(c.token) > 65536:
            raise VectorError(f"reference-values case {c.comment!r}: token over 65 536 bytes")
        t = {
            "tcId": tc,
            "comment": c.comment,
            "flags": list(c.flags),
            "sections": list(c.sections),
            "nowS": c.now_s,
            "heldNumber": c.held,
            "token": c.token.hex(),
        }
        out = compute(t)
        if out["refusal"] != c.refusal:
            raise VectorError(f"reference-values case {c.comment!r}: meant {c.refusal}, got {out}")
        group["tests"].append({**t, **out})
        tc += 1
    return group


def _fold_group(w: World, tc: int) -> dict[str, Any]:
    group: dict[str, Any] = {
        "type": "ReferenceValuesFold",
        "comment": "a verifier folds documents into its configured models (SPEC §8.1)",
        "outputs": ["result", "refusedRule", "models", "firmwareReferences", "referencedModels"],
        "trustAnchors": _anchors_json(w),
        "nowS": NOW_S,
        "tests": [],
    }
    compute = _fold(group)
    for c in _fold_cases(w):
        t = {
            "tcId": tc,
            "comment": c.comment,
            "flags": list(c.flags),
            "sections": list(c.sections),
            "configuredModels": {name: model_json(m) for name, m in c.configured.items()},
            "documents": [d.hex() for d in c.documents],
        }
        out = compute(t)
        if out["refusedRule"] != c.rule:
            raise VectorError(f"reference-values fold {c.comment!r}: meant {c.rule}, got {out}")
        group["tests"].append({**t, **out})
        tc += 1
    return group


def reference_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    opening = _open_group(w, 1)
    folding = _fold_group(w, 1 + len(opening["tests"]))
    groups = [opening, folding]
    n = sum(len(g["tests"]) for g in groups)
    used = {f for g in groups for t in g["tests"] for f in t["flags"]}
    return vector_document(
        REFERENCE_ALGORITHM, n, HEADER, {k: v for k, v in NOTES.items() if k in used}, groups
    )
