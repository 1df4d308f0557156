"""Revocation-list vectors (vectors/revocation.json): adoption by number, anti-rollback, checks.

One rule (SPEC §12) serves chips (each mechanism's copy) and verifiers (the stored list): a list
is adopted only if the Authority signed it as a RevocationList, its ``iss`` is the authority id
and its number is greater than the one held; the complete list then replaces what was held.
Each case states the outcome it is written for; generation fails if the checker disagrees.
"""

from __future__ import annotations

from typing import Any

from attest.codec.cbor import encode
from attest.codec.cose import sign1
from attest.messages import claims as C
from attest.messages.content import ContentType
from attest.messages.revocation import RevocationList
from attest.testvectors.format import VectorError, vector_document
from attest.testvectors.revocation_check import REVOCATION_ALGORITHM, _adoption
from attest.testvectors.world import (
    AUTHORITY_ID,
    NOW_S,
    World,
    build_world,
    vector_key,
    vector_ueid,
)

HEADER = [
    "Adopting a revocation list (SPEC §12). A holder that holds list number heldNumber is given",
    "the token list. It verifies it as a RevocationList under the group's authority key, checks",
    "that its iss is the authority id (else REVOCATIONS_INVALID) and that its number is greater",
    "than heldNumber (else REVOCATIONS_STALE). adopted is what it then holds: the number and",
    "every list of the token as a sorted set (lists are complete, so they replace, never add);",
    "null when the list is refused. An absent revoked-delegations claim means none.",
]

NOTES = {
    "Numbering": "The list number against the held number: newer, equal, older, extremes.",
    "Signature": "The token is not the Authority's RevocationList.",
    "Malformed": "Validly signed, but the payload is not a valid RevocationList.",
    "Contents": "What is adopted: complete lists, order and duplicates, the optional claim.",
    "Boundary": "Largest numbers and list sizes.",
}


def _list(number: int, **kw: Any) -> RevocationList:
    return RevocationList(AUTHORITY_ID, NOW_S, number, **kw)


def _raw(claims: dict[Any, Any], signer: str = "authority") -> bytes:
    return sign1(vector_key(signer), ContentType.REVOCATION_LIST, encode(claims))


def _cases(w: World) -> list[tuple[str, tuple[str, ...], int, bytes, str | None]]:
    auth = vector_key("authority")
    imp = vector_key("impostor-authority")
    dev = (vector_ueid("hx100-b"), vector_ueid("cx10-a"))
    pod = bytes.fromhex("00112233445566778899aabbccddeeff")
    full = _list(
        7,
        devices=dev,
        manufacturers=("mfr-x",),
        verifiers=("sg-9",),
        pods=(pod,),
        delegations=(3, 9),
    )
    base = full.to_claims()
    return [
        ("first list (held 0)", ("Numbering",), 0, _list(1, devices=dev[:1]).sign(auth), None),
        ("next list", ("Numbering", "Contents"), 6, full.sign(auth), None),
        ("same number again", ("Numbering",), 7, full.sign(auth), "REVOCATIONS_STALE"),
        ("an older list (rollback)", ("Numbering",), 8, full.sign(auth), "REVOCATIONS_STALE"),
        (
            "list number 0 to a holder of nothing",
            ("Numbering", "Boundary"),
            0,
            _list(0).sign(auth),
            "REVOCATIONS_STALE",
        ),
        (
            "largest number after 2^64 - 2",
            ("Numbering", "Boundary"),
            2**64 - 2,
            _list(2**64 - 1).sign(auth),
            None,
        ),
        (
            "largest number to a holder of it",
            ("Numbering", "Boundary"),
            2**64 - 1,
            _list(2**64 - 1).sign(auth),
            "REVOCATIONS_STALE",
        ),
        (
            "a much newer list (numbers need not be consecutive)",
            ("Numbering",),
            1,
            _list(1000).sign(auth),
            None,
        ),
        (
            "signed by an impostor authority key",
            ("Signature",),
            0,
            full.sign(imp),
            "REVOCATIONS_INVALID",
        ),
        (
            "signed by the authority key with another iss",
            ("Signature",),
            0,
            RevocationList("other-authority", NOW_S, 9).sign(auth),
            "REVOCATIONS_INVALID",
        ),
        (
            "a VerifierCert token, not a RevocationList",
            ("Signature",),
            0,
            w.verifiers["kl-1"].cert,
            "REVOCATIONS_INVALID",
        ),
        (
            "forged and stale: the signature is checked first",
            ("Signature", "Numbering"),
            9,
            full.sign(imp),
            "REVOCATIONS_INVALID",
        ),
        ("no revoked delegations (claim absent)", ("Contents",), 0, _list(2).sign(auth), None),
        (
            "revoked delegations as an empty array (treated as absent)",
            ("Contents",),
            0,
            _raw({**_list(2).to_claims(), C.HEM_REVOKED_DELEGATIONS: []}),
            None,
        ),
        (
            "unsorted lists with duplicates: adopted as sets",
            ("Contents",),
            0,
            _raw(
                {
                    **base,
                    C.HEM_REVOKED_DEVICES: [dev[1], dev[0], dev[1]],
                    C.HEM_REVOKED_MANUFACTURERS: ["mfr-z", "mfr-a", "mfr-z"],
                    C.HEM_REVOKED_DELEGATIONS: [9, 3, 9],
                }
            ),
            None,
        ),
        (
            "4 096 revoked delegations (the most a list may hold)",
            ("Contents", "Boundary"),
            0,
            _list(3, delegations=tuple(range(4096))).sign(auth),
            None,
        ),
        (
            "4 097 revoked delegations",
            ("Malformed", "Boundary"),
            0,
            _raw({**_list(3).to_claims(), C.HEM_REVOKED_DELEGATIONS: list(range(4097))}),
            "REVOCATIONS_INVALID",
        ),
        (
            "a revoked pod id of 15 bytes",
            ("Malformed",),
            0,
            _raw({**base, C.HEM_REVOKED_PODS: [pod[:15]]}),
            "REVOCATIONS_INVALID",
        ),
        (
            "a revoked device that is not a UEID",
            ("Malformed",),
            0,
            _raw({**base, C.HEM_REVOKED_DEVICES: [b"\x02" + dev[0][1:]]}),
            "REVOCATIONS_INVALID",
        ),
        (
            "the revoked pods claim missing",
            ("Malformed",),
            0,
            _raw({k: v for k, v in base.items() if k != C.HEM_REVOKED_PODS}),
            "REVOCATIONS_INVALID",
        ),
        (
            "an unknown claim (EAT location, 264)",
            ("Malformed",),
            0,
            _raw({**base, C.LOCATION: 0}),
            "REVOCATIONS_INVALID",
        ),
        (
            "a revoked manufacturer id of 257 characters",
            ("Malformed", "Boundary"),
            0,
            _raw({**base, C.HEM_REVOKED_MANUFACTURERS: ["m" * 257]}),
            "REVOCATIONS_INVALID",
        ),
    ]


def revocation_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    group: dict[str, Any] = {
        "type": "RevocationAdoption",
        "comment": "a holder of list heldNumber is given a list",
        "outputs": ["result", "refusal", "adopted"],
        "trustAnchors": {
            "authorityId": w.anchors.authority_id,
            "authorityKey": w.anchors.authority_key.raw.hex(),
        },
        "tests": [],
    }
    compute = _adoption(group)
    for tc, (comment, flags, held, token, refusal) in enumerate(_cases(w), start=1):
        t = {
            "tcId": tc,
            "comment": comment,
            "flags": list(flags),
            "sections": ["12", "6.5"],
            "heldNumber": held,
            "list": token.hex(),
        }
        out = compute(t)
        if out["refusal"] != refusal:
            raise VectorError(f"revocation case {comment!r}: meant {refusal}, got {out}")
        group["tests"].append({**t, **out})
    used = {f for t in group["tests"] for f in t["flags"]}
    return vector_document(
        REVOCATION_ALGORITHM,
        len(group["tests"]),
        HEADER,
        {k: v for k, v in NOTES.items() if k in used},
        [group],
    )
