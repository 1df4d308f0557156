"""Reference-values vectors (vectors/reference_values.json): opening a vendor's document, folding.

``ReferenceValuesOpen`` pins SPEC §6.10 "Verifying" step by step — the certificate the document
carries (impostor authority, another issuer, expiry at the exact second), the signature, ``iss``
against the certificate's ``sub``, every schema rule stated in CDDL or only in prose, the sizes
at and past the bounds, and anti-rollback by number — each with its refusal name and, for a
valid document, what a verifier learns from it. ``ReferenceValuesFold`` pins §8.1 rules 1–3 and
the referenced-model rule: the models and references a set of documents yields, or the rule that
refuses it. Each case states the outcome it is written for; generation fails if the checker
disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        claims[{"version": 2, "measurement": 3, "status": 4, "extra": 9}[key]] = value
    return claims


def _flip(token: bytes, at: int = -1) -> bytes:
    raw = bytearray(token)
    raw[at] ^= 0x01
    return bytes(raw)


#: (comment, flags, sections, nowS, heldNumber, token, refusal the case is written for)
OpenCase = tuple[str, tuple[str, ...], tuple[str, ...], int, int | None, bytes, str | None]


def _open_cases(w: World) -> list[OpenCase]:
    a = _vendor(w.manufacturers["mfr-a"])
    expiring = _vendor(w.manufacturers["mfr-expiring"])
    rogue = _vendor(w.manufacturers["mfr-rogue"])
    exp_s = NOW_S + 1  # mfr-expiring's certificate: exp (SPEC §6.2: expired once now >= exp)
    base = a.doc()
    ok = a.sign(base)
    s, sc = ("6.10",), ("6.10", "6.2", "3.1")
    sn, se = ("6.10", "8.1"), ("6.10", "4.5", "4.3")
    adopted = a.doc(
        models=(QX9, HX100), firmware=(*QX9_FIRMWARE, _fw("HX100", (1, 2), FirmwareStatus.CURRENT))
    )
    four_parts = a.doc(firmware=(_fw("QX9", (3, 1, 0, 7), FirmwareStatus.CURRENT),))
    many_models = tuple(
        ChipModel(f"M{i:02d}", 10**15 + i, 500_000, 10**11, 1 + i % 8) for i in range(65)
    )
    many_fw = tuple(
        FirmwareReference("Q", (1, 0, i), vector_nonce(f"rv/Q/{i}"), FirmwareStatus(i % 3))
        for i in range(1025)
    )
    q = ChipModel("Q", 10**15, 500_000, 10**11, 8)
    leading = _fw_claims(QX9_FIRMWARE[2], version="03.01.000")
    other_cert = ManufacturerCert(
        issuer="other-authority",
        manufacturer_id="mfr-a",
        issued_at=CERTIFIED_S,
        expires_at=CERTIFIED_S + 10 * YEAR_S,
        public_key=a.key.public_key,
    ).sign(w.authority.key)
    with_cert = _Vendor("mfr-a", a.key, other_cert)
    verifier_cert = _Vendor("mfr-a", a.key, w.verifiers["kl-1"].cert)
    garbage_cert = _Vendor("mfr-a", a.key, b"\xd2\x84" + bytes(14))
    a_cert_other_key = _Vendor("mfr-a", expiring.key, a.cert)
    device_cert = w.chain("hx100-a").device_cert
    dup_model = _with(base, (C.HEM_RV_MODELS, [_model_claims(QX9)] * 2))
    return [
        # -- valid documents
        ("mfr-a: one model, firmware of each status", ("Contents",), s, NOW_S, None, ok, None),
        (
            "mfr-a adopts the built-in HX100 (identical limits) beside its own QX9",
            ("Contents",),
            s,
            NOW_S,
            None,
            a.sign(adopted),
            None,
        ),
        (
            "an empty document (no models, no firmware)",
            ("Contents", "Boundary"),
            s,
            NOW_S,
            None,
            a.sign(a.doc(models=(), firmware=())),
            None,
        ),
        (
            "a model declared with no firmware",
            ("Contents",),
            s,
            NOW_S,
            None,
            a.sign(a.doc(models=(QX9, RZ2), firmware=QX9_FIRMWARE)),
            None,
        ),
        (
            "a four-part firmware version",
            ("Contents",),
            ("6.10", "6.7"),
            NOW_S,
            None,
            a.sign(four_parts),
            None,
        ),
        (
            "a version with leading zeros (03.01.000 is 3.1.0)",
            ("Contents",),
            ("6.10", "6.7"),
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_FIRMWARE, [leading]))),
            None,
        ),
        (
            "iat is informational (issued ten years from now)",
            ("Contents",),
            s,
            NOW_S,
            None,
            a.sign(a.doc(issued_at=NOW_S + 10 * YEAR_S)),
            None,
        ),
        (
            "64 models (the most a document may declare)",
            ("Contents", "Boundary"),
            s,
            NOW_S,
            None,
            a.sign(a.doc(models=many_models[:64], firmware=())),
            None,
        ),
        (
            "1 024 firmware entries (the most a document may list)",
            ("Contents", "Boundary"),
            s,
            NOW_S,
            None,
            a.sign(a.doc(models=(q,), firmware=many_fw[:1024])),
            None,
        ),
        # -- numbering
        ("number 4, holding 3", ("Numbering",), sn, NOW_S, 3, ok, None),
        (
            "number 4, holding 4 (the same number again)",
            ("Numbering",),
            sn,
            NOW_S,
            4,
            ok,
            "RV_NOT_NEWER",
        ),
        ("number 4, holding 5 (rollback)", ("Numbering",), sn, NOW_S, 5, ok, "RV_NOT_NEWER"),
        (
            "number 1000, holding 1 (numbers need not be consecutive)",
            ("Numbering",),
            sn,
            NOW_S,
            1,
            a.sign(a.doc(number=1000)),
            None,
        ),
        (
            "number 1, holding none",
            ("Numbering", "Boundary"),
            sn,
            NOW_S,
            None,
            a.sign(a.doc(number=1)),
            None,
        ),
        (
            "number 2^64 - 1, holding 2^64 - 2",
            ("Numbering", "Boundary"),
            sn,
            NOW_S,
            2**64 - 2,
            a.sign(a.doc(number=2**64 - 1)),
            None,
        ),
        (
            "number 2^64 - 1, holding 2^64 - 1",
            ("Numbering", "Boundary"),
            sn,
            NOW_S,
            2**64 - 1,
            a.sign(a.doc(number=2**64 - 1)),
            "RV_NOT_NEWER",
        ),
        (
            "number 0 (hem-rv-number is at least 1)",
            ("Numbering", "CddlInvalid", "Boundary"),
            s,
            NOW_S,
            None,
            a.sign(a.doc(number=0)),
            "RV_MALFORMED",
        ),
        # -- the certificate the document carries
        (
            "mfr-rogue, certified by an impostor authority (same authority id, another key)",
            ("Issuer",),
            sc,
            NOW_S,
            None,
            rogue.sign(rogue.doc()),
            "RV_ISSUER_INVALID",
        ),
        (
            "a ManufacturerCert signed by the authority key, but with iss other-authority",
            ("Issuer",),
            sc,
            NOW_S,
            None,
            with_cert.sign(with_cert.doc()),
            "RV_ISSUER_INVALID",
        ),
        (
            "the carried certificate is a VerifierCert of the authority",
            ("Issuer",),
            ("6.10", "6.2", "4.5"),
            NOW_S,
            None,
            verifier_cert.sign(verifier_cert.doc()),
            "RV_ISSUER_INVALID",
        ),
        (
            "the carried certificate is 16 bytes that are no token",
            ("Issuer",),
            ("6.10", "4.5"),
            NOW_S,
            None,
            garbage_cert.sign(garbage_cert.doc()),
            "RV_ISSUER_INVALID",
        ),
        (
            "mfr-expiring, one second before its certificate expires",
            ("Expiry",),
            sc,
            exp_s - 1,
            None,
            expiring.sign(expiring.doc()),
            None,
        ),
        (
            "mfr-expiring at its certificate's exp",
            ("Expiry",),
            sc,
            exp_s,
            None,
            expiring.sign(expiring.doc()),
            "RV_ISSUER_EXPIRED",
        ),
        (
            "iss mfr-b, signed by mfr-a's key and carrying mfr-a's certificate",
            ("Issuer",),
            s,
            NOW_S,
            None,
            a.sign(a.doc(issuer="mfr-b")),
            "RV_ISSUER_MISMATCH",
        ),
        (
            "mfr-expiring speaks for mfr-a (its own certificate and key, iss mfr-a)",
            ("Issuer",),
            s,
            NOW_S,
            None,
            expiring.sign(expiring.doc(issuer="mfr-a")),
            "RV_ISSUER_MISMATCH",
        ),
        # -- the signature
        (
            "mfr-a's certificate, signed by mfr-expiring's key",
            ("Signature",),
            ("6.10", "4.5"),
            NOW_S,
            None,
            a_cert_other_key.sign(a_cert_other_key.doc()),
            "RV_SIGNATURE_INVALID",
        ),
        (
            "one bit of the signature flipped",
            ("Signature",),
            ("6.10", "4.5"),
            NOW_S,
            None,
            _flip(ok),
            "RV_SIGNATURE_INVALID",
        ),
        (
            "the number raised after signing",
            ("Signature",),
            ("6.10", "4.5"),
            NOW_S,
            None,
            _resigned_payload(ok, a.raw(_with(base, (C.HEM_RV_NUMBER, 5)))),
            "RV_SIGNATURE_INVALID",
        ),
        # -- not a ReferenceValues token
        ("truncated by one byte", ("Envelope",), se, NOW_S, None, ok[:-1], "RV_MALFORMED"),
        (
            "a DeviceCert token of mfr-a",
            ("Envelope",),
            se,
            NOW_S,
            None,
            device_cert,
            "RV_MALFORMED",
        ),
        (
            "mfr-a's ManufacturerCert alone",
            ("Envelope",),
            se,
            NOW_S,
            None,
            a.cert,
            "RV_MALFORMED",
        ),
        (
            "a valid document's claims signed as a DeviceCert",
            ("Envelope",),
            se,
            NOW_S,
            None,
            a.raw(base.to_claims(), ContentType.DEVICE_CERT),
            "RV_MALFORMED",
        ),
        (
            "no hem-rv-issuer-cert claim",
            ("Envelope",),
            s,
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_ISSUER_CERT, None))),
            "RV_MALFORMED",
        ),
        (
            "hem-rv-issuer-cert is a text string",
            ("Envelope",),
            s,
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_ISSUER_CERT, "mfr-a"))),
            "RV_MALFORMED",
        ),
        (
            "the payload is an array, not a map",
            ("Envelope",),
            ("6.10", "6.1"),
            NOW_S,
            None,
            sign1(a.key, ContentType.REFERENCE_VALUES, encode([a.cert])),
            "RV_MALFORMED",
        ),
        # -- validly signed, the payload breaks the schema
        (
            "firmware for HX100, a model the document does not declare",
            ("ProseInvalid",),
            s,
            NOW_S,
            None,
            a.raw(
                _with(
                    base,
                    (
                        C.HEM_RV_FIRMWARE,
                        [_fw_claims(_fw("HX100", (1, 2, 0), FirmwareStatus.CURRENT))],
                    ),
                )
            ),
            "RV_MALFORMED",
        ),
        ("QX9 declared twice", ("ProseInvalid",), s, NOW_S, None, a.raw(dup_model), "RV_MALFORMED"),
        (
            "QX9 declared twice with different limits",
            ("ProseInvalid",),
            s,
            NOW_S,
            None,
            a.raw(
                _with(
                    base,
                    (C.HEM_RV_MODELS, [_model_claims(QX9), _model_claims(QX9, pod=1)]),
                )
            ),
            "RV_MALFORMED",
        ),
        (
            "(QX9, 3.1.0) listed twice",
            ("ProseInvalid",),
            s,
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_FIRMWARE, [_fw_claims(QX9_FIRMWARE[2])] * 2))),
            "RV_MALFORMED",
        ),
        (
            "(QX9, 3.1.0) listed twice, once as 03.01.000",
            ("ProseInvalid",),
            ("6.10", "6.7"),
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_FIRMWARE, [_fw_claims(QX9_FIRMWARE[2]), leading]))),
            "RV_MALFORMED",
        ),
        (
            "a model name that is not ASCII",
            ("ProseInvalid",),
            ("6.10", "6.1"),
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_MODELS, [_model_claims(QX9, name="QX\u00e9".encode())]))),
            "RV_MALFORMED",
        ),
        (
            "65 models",
            ("CddlInvalid", "Boundary"),
            s,
            NOW_S,
            None,
            a.raw(
                _with(
                    base,
                    (C.HEM_RV_MODELS, [_model_claims(m) for m in many_models]),
                    (C.HEM_RV_FIRMWARE, []),
                )
            ),
            "RV_MALFORMED",
        ),
        (
            "1 025 firmware entries",
            ("CddlInvalid", "Boundary"),
            s,
            NOW_S,
            None,
            a.raw(
                _with(
                    base,
                    (C.HEM_RV_MODELS, [_model_claims(q)]),
                    (C.HEM_RV_FIRMWARE, [_fw_claims(r) for r in many_fw]),
                )
            ),
            "RV_MALFORMED",
        ),
        (
            "a model name of 33 bytes",
            ("CddlInvalid", "Boundary"),
            s,
            NOW_S,
            None,
            a.raw(
                _with(
                    base,
                    (C.HEM_RV_MODELS, [_model_claims(QX9, name=b"Q" * 33)]),
                    (C.HEM_RV_FIRMWARE, []),
                )
            ),
            "RV_MALFORMED",
        ),
        (
            "peak power 0",
            ("CddlInvalid", "Boundary"),
            s,
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_MODELS, [_model_claims(QX9, power=0)]))),
            "RV_MALFORMED",
        ),
        (
            "maximum pod size 0",
            ("CddlInvalid", "Boundary"),
            s,
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_MODELS, [_model_claims(QX9, pod=0)]))),
            "RV_MALFORMED",
        ),
        (
            "a model map with an unknown key 6",
            ("CddlInvalid",),
            s,
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_MODELS, [{**_model_claims(QX9), 6: 1}]))),
            "RV_MALFORMED",
        ),
        (
            "firmware status 3",
            ("CddlInvalid",),
            s,
            NOW_S,
            None,
            a.raw(_with(base, (C.HEM_RV_FIRMWARE, [_fw_claims(QX9_FIRMWARE[2], status=3)]))),
            "RV_MALFORMED",
        ),
        (
            "a five-part firmware version",
            ("CddlInvalid",),
            ("6.10", "6.7"),
            NOW_S,
            None,
            a.raw(
                _with(base, (C.HEM_RV_FIRMWARE, [_fw_claims(QX9_FIRMWARE[2], version="3.1.0.0.1")]))
            ),
            "RV_MALFORMED",
        ),
        (
            "a measurement of 31 bytes",
            ("CddlInvalid",),
            s,
            NOW_S,
            None,
            a.raw(
                _with(
                    base,
                    (C.HEM_RV_FIRMWARE, [_fw_claims(QX9_FIRMWARE[2], measurement=bytes(31))]),
                )
            ),
            "RV_MALFORMED",
        ),
        (
            "a firmware entry without its status",
            ("CddlInvalid",),
            s,
            NOW_S,
            None,
            a.raw(
                _with(
                    base,
                    (
                        C.HEM_RV_FIRMWARE,
                        [{k: v for k, v in _fw_claims(QX9_FIRMWARE[2]).items() if k != 4}],
                    ),
                )
            ),
            "RV_MALFORMED",
        ),
        (
            "an unknown claim (exp, 4)",
            ("CddlInvalid",),
            ("6.10", "6.1"),
            NOW_S,
            None,
            a.raw(_with(base, (C.EXP, NOW_S + YEAR_S))),
            "RV_MALFORMED",
        ),
        # -- several steps fail: the first in §6.10's order names the refusal
        (
            "QX9 declared twice, signed by another key: the signature is checked first",
            ("ErrorPrecedence", "Signature", "ProseInvalid"),
            s,
            NOW_S,
            None,
            a_cert_other_key.raw(dup_model),
            "RV_SIGNATURE_INVALID",
        ),
        (
            "QX9 declared twice under an expired certificate",
            ("ErrorPrecedence", "Expiry", "ProseInvalid"),
            s,
            exp_s,
            None,
            expiring.raw(_with(expiring.doc(), (C.HEM_RV_MODELS, [_model_claims(QX9)] * 2))),
            "RV_ISSUER_EXPIRED",
        ),
        (
            "an impostor's document, not newer either",
            ("ErrorPrecedence", "Issuer", "Numbering"),
            s,
            NOW_S,
            9,
            rogue.sign(rogue.doc()),
            "RV_ISSUER_INVALID",
        ),
        (
            "expired and not newer",
            ("ErrorPrecedence", "Expiry", "Numbering"),
            s,
            exp_s,
            9,
            expiring.sign(expiring.doc()),
            "RV_ISSUER_EXPIRED",
        ),
        (
            "iss of another vendor and not newer",
            ("ErrorPrecedence", "Issuer", "Numbering"),
            s,
            NOW_S,
            9,
            a.sign(a.doc(issuer="mfr-b")),
            "RV_ISSUER_MISMATCH",
        ),
        (
            "number 0 to a holder of 3",
            ("ErrorPrecedence", "CddlInvalid", "Numbering"),
            s,
            NOW_S,
            3,
            a.sign(a.doc(number=0)),
            "RV_MALFORMED",
        ),
    ]


def _resigned_payload(original: bytes, altered: bytes) -> bytes:
    """``altered``'s envelope and payload with ``original``'s signature (64 bytes at the end)."""
    return altered[:-64] + original[-64:]


#: (comment, flags, sections, configured models, document tokens, rule the case is written for)
FoldCase = tuple[
    str, tuple[str, ...], tuple[str, ...], dict[str, ChipModel], list[bytes], int | None
]


def _fold_cases(w: World) -> list[FoldCase]:
    a = _vendor(w.manufacturers["mfr-a"])
    expiring = _vendor(w.manufacturers["mfr-expiring"])
    rogue = _vendor(w.manufacturers["mfr-rogue"])
    b = _certified(w, "mfr-b")
    # listed out of order; the references come out in the version order of §8.2 (1.0 < 1.0.0,
    # 1.9 < 1.10), which is not the order of their texts
    rz2_fw = (
        _fw("RZ2", (1, 10), FirmwareStatus.CURRENT),
        _fw("RZ2", (1, 0, 0), FirmwareStatus.OUTDATED),
        _fw("RZ2", (0, 9), FirmwareStatus.REVOKED),
        _fw("RZ2", (1, 9), FirmwareStatus.OUTDATED),
        _fw("RZ2", (1, 0), FirmwareStatus.OUTDATED),
    )
    hx_fw = (_fw("HX100", (1, 2, 0), FirmwareStatus.CURRENT),)
    doc_a = a.sign(a.doc())
    doc_b = b.sign(b.doc(number=1, models=(RZ2,), firmware=rz2_fw))
    doc_e = expiring.sign(
        expiring.doc(
            number=2, models=(EX5,), firmware=(_fw("EX5", (1, 0, 0), FirmwareStatus.CURRENT),)
        )
    )
    a_hx = a.sign(a.doc(models=(QX9, HX100), firmware=(*QX9_FIRMWARE, *hx_fw)))
    b_hx = b.sign(b.doc(number=1, models=(HX100,), firmware=()))
    faster = ChipModel(
        "HX100", 4 * 10**15, HX100.peak_power_mw, HX100.peak_interconnect_bytes_per_s, 8
    )
    a_fast = a.sign(a.doc(models=(faster,), firmware=hx_fw))
    b_qx = b.sign(b.doc(number=1, models=(QX9,), firmware=()))
    a_next = a.sign(a.doc(number=5))
    defaults = dict(DEFAULT_MODELS)
    r2, r1 = ("8.1",), ("8.1", "6.10")
    lower = {"hx100": ChipModel("hx100", *_limits(HX100))}
    return [
        ("no documents: the configured models alone", ("Fold",), r2, defaults, [], None),
        ("mfr-a's QX9 and its firmware", ("Fold",), r2, defaults, [doc_a], None),
        (
            "two vendors, each its own model (RZ2's versions sort as tuples: 1.9 before 1.10)",
            ("Fold",),
            ("8.1", "8.2"),
            defaults,
            [doc_a, doc_b],
            None,
        ),
        ("the same two in the other order", ("Fold",), r2, defaults, [doc_b, doc_a], None),
        ("three vendors", ("Fold",), r2, defaults, [doc_e, doc_a, doc_b], None),
        (
            "mfr-a adopts HX100 with identical limits: HX100 becomes a referenced model",
            ("Fold", "Ownership"),
            r2,
            defaults,
            [a_hx],
            None,
        ),
        (
            "a declared model with no firmware is not a referenced model",
            ("Fold",),
            r2,
            defaults,
            [b_hx],
            None,
        ),
        (
            "an empty document adds nothing",
            ("Fold",),
            r2,
            defaults,
            [a.sign(a.doc(models=(), firmware=()))],
            None,
        ),
        (
            "no configured models: mfr-a's HX100 is new",
            ("Fold", "Ownership"),
            r2,
            {},
            [a_fast],
            None,
        ),
        (
            "model names are compared byte for byte: configured hx100 is not HX100",
            ("Fold", "Ownership"),
            r2,
            lower,
            [a_fast],
            None,
        ),
        (
            "mfr-a redefines the configured HX100 with a higher peak",
            ("Ownership",),
            r2,
            defaults,
            [a_fast],
            2,
        ),
        (
            "mfr-a and mfr-b both declare QX9, with the same limits",
            ("Ownership",),
            r2,
            defaults,
            [doc_a, b_qx],
            2,
        ),
        (
            "mfr-a and mfr-b both adopt the configured HX100 with identical limits",
            ("Ownership",),
            r2,
            defaults,
            [a_hx, b_hx],
            2,
        ),
        (
            "two documents of mfr-a (numbers 4 and 5)",
            ("OneDocumentEach",),
            r2,
            defaults,
            [doc_a, a_next],
            1,
        ),
        (
            "a document of an impostor authority's manufacturer beside mfr-a's",
            ("OneDocumentEach",),
            r1,
            defaults,
            [doc_a, rogue.sign(rogue.doc(number=1, models=(RZ2,), firmware=rz2_fw))],
            1,
        ),
        (
            "a truncated document beside mfr-a's",
            ("OneDocumentEach",),
            r1,
            defaults,
            [doc_a, doc_b[:-1]],
            1,
        ),
        (
            "two documents of mfr-a, one redefining HX100: rule 1 is checked first",
            ("OneDocumentEach", "Ownership", "ErrorPrecedence"),
            r2,
            defaults,
            [a_fast, doc_a],
            1,
        ),
    ]


def _limits(m: ChipModel) -> tuple[int, int, int, int]:
    return (m.peak_flops_per_s, m.peak_power_mw, m.peak_interconnect_bytes_per_s, m.max_pod_size)


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
    for comment, flags, sections, now_s, held, token, refusal in _open_cases(w):
        if len(token) > 65536:
            raise VectorError(f"reference-values case {comment!r}: token over 65 536 bytes")
        t = {
            "tcId": tc,
            "comment": comment,
            "flags": list(flags),
            "sections": list(sections),
            "nowS": now_s,
            "heldNumber": held,
            "token": token.hex(),
        }
        out = compute(t)
        if out["refusal"] != refusal:
            raise VectorError(f"reference-values case {comment!r}: meant {refusal}, got {out}")
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
    for comment, flags, sections, configured, tokens, rule in _fold_cases(w):
        t = {
            "tcId": tc,
            "comment": comment,
            "flags": list(flags),
            "sections": list(sections),
            "configuredModels": {name: model_json(m) for name, m in configured.items()},
            "documents": [d.hex() for d in tokens],
        }
        out = compute(t)
        if out["refusedRule"] != rule:
            raise VectorError(f"reference-values fold {comment!r}: meant rule {rule}, got {out}")
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
