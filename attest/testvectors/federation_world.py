"""A deterministic coalition around the vector world: four authorities, one agreement.

The home authority is the world's (``authority.example``, a single key: the 1-of-1 committee);
three partners are 3-of-5 committees whose officer keys derive from public labels (tests and
vectors only). The agreement (number 1, 3 of 4 members) lets the home authority recognise the
endorsements of ``mfr-sg`` by ``authority.sg`` and results of ``authority.sg``'s nodes; nothing
else. A partner chip is a chip of the world whose device key ``mfr-sg`` endorsed and whose
manufacturer certificate ``authority.sg``'s officers signed.
"""

from __future__ import annotations

from functools import cache

from attest.federation.agreement import Agreement, Member, Recognition
from attest.federation.committee import Committee
from attest.federation.route import Federation
from attest.federation.sign import sign_multi
from attest.identity import VerifierIdentity
from attest.keys import SigningKey
from attest.messages.certs import DeviceCert, ManufacturerCert, VerifierCert
from attest.testvectors.world import (
    AUTHORITY_ID,
    CERTIFIED_S,
    NOW_S,
    World,
    vector_key,
    vector_ueid,
)
from attest.verify.chain import DeviceChain

SG, TH, ID = "authority.sg", "authority.th", "authority.id"
PARTNERS = (SG, TH, ID)
PARTNER_MANUFACTURER = "mfr-sg"
AGREEMENT_ID = "compute-south"
#: the agreement's validity
AGREEMENT_ISSUED_S = CERTIFIED_S
AGREEMENT_EXPIRES_S = NOW_S + 365 * 24 * 3600
YEAR_S = 365 * 24 * 3600


def officer(authority: str, i: int) -> SigningKey:
    """Officer ``i`` of a partner's committee (derived from a public label: tests only)."""
    return vector_key(f"federation/{authority}/officer-{i}")


def officers(authority: str, n: int = 5) -> list[SigningKey]:
    return [officer(authority, i) for i in range(n)]


@cache
def partner_committee(authority: str, number: int = 1) -> Committee:
    """A 3-of-5 committee (number 2: officer 0 rotated out for officer 5)."""
    keys = officers(authority, 6)
    chosen = keys[:5] if number == 1 else keys[1:6]
    return Committee.of(
        authority, [k.public_key for k in chosen], 3, number=number, issued_at=CERTIFIED_S
    )


def home_committee(world: World) -> Committee:
    return Committee.single(AUTHORITY_ID, world.anchors.authority_key)


def agreement(
    world: World,
    number: int = 1,
    *,
    expires_at: int = AGREEMENT_EXPIRES_S,
    recognitions: tuple[Recognition, ...] | None = None,
) -> Agreement:
    members = (
        Member(AUTHORITY_ID, home_committee(world), ("MY",)),
        *(Member(a, partner_committee(a), (a.rsplit(".", 1)[1].upper(),)) for a in PARTNERS),
    )
    if recognitions is None:
        recognitions = (
            Recognition(
                AUTHORITY_ID, SG, (PARTNER_MANUFACTURER,), results=True, licence_quota=10**18
            ),
            Recognition(TH, AUTHORITY_ID, ("mfr-a",), results=True),
        )
    return Agreement(AGREEMENT_ID, number, AGREEMENT_ISSUED_S, expires_at, members, 3, recognitions)


def sign_agreement(world: World, a: Agreement, approvers: dict[str, int]) -> bytes:
    """``a`` signed by the first ``n`` officers of each named member (home: its one key)."""
    keys: list[SigningKey] = []
    for member, n in approvers.items():
        if member == AUTHORITY_ID:
            keys += [world.authority.key] if n else []
        else:
            keys += officers(member)[:n]
    return a.sign(keys)


def federation(world: World, a: Agreement | None = None) -> Federation:
    return Federation(home_committee(world), a or agreement(world))


def partner_mc(
    *, signers: int = 3, issuer: str = SG, manufacturer: str = PARTNER_MANUFACTURER
) -> bytes:
    """The partner manufacturer's certificate, signed by ``signers`` officers of ``issuer``."""
    key = vector_key("manufacturer/" + manufacturer)
    mc = ManufacturerCert(
        issuer, manufacturer, CERTIFIED_S, CERTIFIED_S + 10 * YEAR_S, key.public_key
    )
    return sign_multi(mc.CONTENT_TYPE, mc.payload(), officers(issuer)[:signers])


def partner_chain(world: World, chip: str = "hx100-a", mc: bytes | None = None) -> DeviceChain:
    """The world chip ``chip`` as endorsed by the partner's manufacturer ``mfr-sg``."""
    spec = world.chips[chip]
    dc = DeviceCert(
        issuer=PARTNER_MANUFACTURER,
        issued_at=CERTIFIED_S,
        public_key=world.device_key(chip).public_key,
        ueid=vector_ueid(chip),
        hwmodel=spec.hwmodel,
        pod_class=spec.pod_class,
    ).sign(vector_key("manufacturer/" + PARTNER_MANUFACTURER))
    return DeviceChain(dc, mc if mc is not None else partner_mc())


def partner_verifier(authority: str = SG, vid: str = "sg-fed-1") -> VerifierIdentity:
    """A verifier node of a partner, certified by 3 of its officers."""
    key = vector_key("verifier/" + vid)
    cert = VerifierCert(authority, vid, CERTIFIED_S, CERTIFIED_S + YEAR_S * 2, key.public_key, "SG")
    token = sign_multi(cert.CONTENT_TYPE, cert.payload(), officers(authority)[:3])
    return VerifierIdentity(vid, "SG", key, token)
