"""A deterministic test world: authority, manufacturers, verifiers and chips from fixed labels.

Every key comes from :meth:`SigningKey.derive_insecure_for_tests`, every UEID from a hash of a
label and every time from the constants below, and Ed25519 signing is deterministic, so any
token built here is the same bytes on every run. The published vectors are generated from this
world and the test-suite builds its fixtures on it; nothing here may read a clock or ``os.urandom``.

Chips are mutable (counters, meters), so the world hands out a *fresh* chip on every call
instead of sharing one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from attest.chip.adversary import CompromisedChip
from attest.chip.device import Chip, fabricate
from attest.identity import YEAR_S, Authority, Manufacturer, VerifierIdentity
from attest.keys import SigningKey
from attest.messages.attestation import Challenge
from attest.verify.chain import DeviceChain, TrustAnchors

DAY_S = 24 * 3600
#: "Now" of the world (2027-01-15T08:00:00Z); certificates, boots and challenges sit around it.
NOW_S = 1_800_000_000
NOW_MS = NOW_S * 1000
#: When the authority certified manufacturers and verifiers and manufacturers endorsed chips.
CERTIFIED_S = NOW_S - 30 * DAY_S
#: When every chip from :meth:`World.chip` booted (once).
BOOT_S = NOW_S - 3600
#: Lifetime of every challenge in the world.
CHALLENGE_TTL_S = 30

#: First attestation round: challenge issued at NOW_S, evidence signed a second later,
#: appraised half a second after that.
ROUND1_S = NOW_S
ROUND1_SIGN_S = ROUND1_S + 1
ROUND1_MS = ROUND1_SIGN_S * 1000 + 500
#: Second round, a minute later.
ROUND2_S = NOW_S + 60
ROUND2_SIGN_S = ROUND2_S + 1
ROUND2_MS = ROUND2_SIGN_S * 1000 + 500

AUTHORITY_ID = "authority.example"


def vector_key(label: str) -> SigningKey:
    """The world's key for ``label`` (public derivation: never use outside tests and vectors)."""
    return SigningKey.derive_insecure_for_tests("attest-vectors/" + label)


def vector_ueid(label: str) -> bytes:
    """A RAND-type UEID that is a fixed function of ``label``."""
    return b"\x01" + hashlib.sha256(b"attest-vectors/ueid/" + label.encode()).digest()[:16]


def vector_nonce(label: str) -> bytes:
    """A 32-byte challenge nonce that is a fixed function of ``label``."""
    return hashlib.sha256(b"attest-vectors/nonce/" + label.encode()).digest()


@dataclass(frozen=True, slots=True)
class ChipSpec:
    """What a chip is made of: everything needed to fabricate it again, byte for byte."""

    name: str
    manufacturer: str
    hwmodel: str
    pod_class: int
    firmware: tuple[int, ...]


#: The chips of the world. Names say what each is for.
CHIPS: tuple[ChipSpec, ...] = (
    ChipSpec("hx100-a", "mfr-a", "HX100", 8, (1, 2, 0)),
    ChipSpec("hx100-b", "mfr-a", "HX100", 8, (1, 2, 0)),
    ChipSpec("hx800-a", "mfr-a", "HX800", 64, (2, 0, 0)),
    ChipSpec("cx10-a", "mfr-a", "CX10", 1, (1, 2, 0)),
    # honest chips with a firmware the default policy finds too old / does not know
    ChipSpec("hx100-oldfw", "mfr-a", "HX100", 8, (1, 0, 0)),
    ChipSpec("hx100-betafw", "mfr-a", "HX100", 8, (1, 3, 0)),
    # endorsed by a manufacturer whose certificate expires at NOW_S + 1
    ChipSpec("hx800-expiring", "mfr-expiring", "HX800", 64, (2, 0, 0)),
    # endorsed by a manufacturer certified by an impostor authority
    ChipSpec("hx100-rogue", "mfr-rogue", "HX100", 8, (1, 2, 0)),
)


@dataclass(frozen=True, slots=True)
class World:
    """Immutable roles of the world; chips are fabricated on demand (see module docstring)."""

    authority: Authority
    manufacturers: Mapping[str, Manufacturer]
    verifiers: Mapping[str, VerifierIdentity]
    chips: Mapping[str, ChipSpec]

    @property
    def anchors(self) -> TrustAnchors:
        return self.authority.anchors

    def device_key(self, chip: str) -> SigningKey:
        """The device key of ``chip``: what a physical attacker could extract."""
        return vector_key("chip/" + chip)

    def chain(self, chip: str) -> DeviceChain:
        """The endorsement chain of ``chip`` (identical to ``self.chip(chip).chain``)."""
        spec = self.chips[chip]
        mfr = self.manufacturers[spec.manufacturer]
        return DeviceChain(
            mfr.endorse(
                self.device_key(chip).public_key,
                ueid=vector_ueid(chip),
                hwmodel=spec.hwmodel,
                pod_class=spec.pod_class,
                now_s=CERTIFIED_S,
            ),
            mfr.cert,
        )

    def honest_chip(self, chip: str) -> Chip:
        """A freshly fabricated, honest chip, booted once at BOOT_S."""
        return self._fabricate(chip, Chip)

    def chip(self, chip: str) -> CompromisedChip:
        """A freshly fabricated chip that will also sign any claims (booted once at BOOT_S).

        Same key, UEID and chain as :meth:`honest_chip`; its honest answers are identical.
        """
        made = self._fabricate(chip, CompromisedChip)
        assert isinstance(made, CompromisedChip)
        return made

    def _fabricate(self, chip: str, chip_class: type[Chip]) -> Chip:
        spec = self.chips[chip]
        made = fabricate(
            self.manufacturers[spec.manufacturer],
            self.anchors,
            hwmodel=spec.hwmodel,
            pod_class=spec.pod_class,
            now_s=CERTIFIED_S,
            firmware_version=spec.firmware,
            ueid=vector_ueid(chip),
            device_key=self.device_key(chip),
            chip_class=chip_class,
        )
        made.boot(BOOT_S)
        return made

    def challenge(
        self, label: str, *, verifier: str = "kl-1", issued_at: int = ROUND1_S
    ) -> tuple[Challenge, bytes]:
        """A challenge from ``verifier`` with a nonce derived from ``label``, and its token."""
        v = self.verifiers[verifier]
        ch = Challenge(
            verifier_id=v.verifier_id,
            issued_at=issued_at,
            expires_at=issued_at + CHALLENGE_TTL_S,
            nonce=vector_nonce(label),
            region=v.region,
        )
        return ch, ch.sign(v.key)


def _manufacturer(
    authority: Authority, mid: str, *, issued_at: int, validity_s: int = 10 * YEAR_S
) -> Manufacturer:
    key = vector_key("manufacturer/" + mid)
    cert = authority.certify_manufacturer(
        mid, key.public_key, now_s=issued_at, validity_s=validity_s
    )
    return Manufacturer(mid, key, cert)


def _verifier(authority: Authority, vid: str, region: str) -> VerifierIdentity:
    key = vector_key("verifier/" + vid)
    cert = authority.certify_verifier(vid, region, key.public_key, now_s=CERTIFIED_S)
    return VerifierIdentity(vid, region, key, cert)


@cache
def build_world() -> World:
    """The world (built once per process; it is immutable)."""
    authority = Authority(AUTHORITY_ID, vector_key("authority"))
    # An impostor that claims the real authority's name but holds another key.
    impostor = Authority(AUTHORITY_ID, vector_key("impostor-authority"))
    manufacturers = {
        "mfr-a": _manufacturer(authority, "mfr-a", issued_at=CERTIFIED_S),
        "mfr-expiring": _manufacturer(
            authority, "mfr-expiring", issued_at=NOW_S + 1 - YEAR_S, validity_s=YEAR_S
        ),
        "mfr-rogue": _manufacturer(impostor, "mfr-rogue", issued_at=CERTIFIED_S),
    }
    verifiers = {
        "kl-1": _verifier(authority, "kl-1", "MY-KL"),
        "sg-1": _verifier(authority, "sg-1", "SG"),
    }
    return World(
        authority=authority,
        manufacturers=MappingProxyType(manufacturers),
        verifiers=MappingProxyType(verifiers),
        chips=MappingProxyType({c.name: c for c in CHIPS}),
    )
