"""The simulated chip: the Attester of RFC 9334.

A :class:`Chip` holds its device key (generated inside it, or held by an external
:class:`~attest.keys.Signer` such as an HSM; no accessor returns it), the authority key fused at
fabrication, its endorsement chain, monotonic counters (boot count,
attestation counter), cumulative usage meters, its monotonic operating time and its firmware
identity. It is sans-I/O apart from its own state directory: drivers pass in messages and the
time, and get bytes back.

Mechanisms live inside the chip as *parts* (:class:`~attest.mechanism.ChipPart`, one per
registered mechanism that the chip has): each adds its claims to every Evidence, may limit the
chip's work, takes the grants addressed to it, and saves its state with the chip's.
``chip.part(LicensingChip)`` is how a caller reaches one.

Fabrication is three steps, as on a real fab line (SPEC §3.1): :meth:`Chip.create` makes the
chip and its key and hands out only the public half; the manufacturer endorses that public key
(``attest manufacturer endorse``, :meth:`attest.identity.Manufacturer.endorse`); the chip
installs the device certificate (:meth:`Chip.install_endorsement`), checking that it names its
own key and UEID. :func:`fabricate` runs the three in one process for simulations.

Anti-rollback: every change to a counter or meter is written to the state directory
(write, fsync, rename) *before* anything that depends on it leaves the chip, so a crash or
restart can never make the chip sign a counter value twice or report a lower meter.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from attest.chip.signers import CommandSigner
from attest.codec.cbor import decode, encode
from attest.durable import atomic_write
from attest.errors import AttestError, ChipRefusal, DecodeError
from attest.federation.committee import Committee
from attest.hardware import DEFAULT_MODELS, ChipModel, simulated_firmware_measurement
from attest.identity import Manufacturer, new_ueid
from attest.keys import PublicKey, Signer, SigningKey, read_secret_key, write_secret_key
from attest.mechanism import (
    ChipPart,
    DeviceSigner,
    Grant,
    PartnerLicensor,
    PingResponder,
    VerifierRecognizer,
)
from attest.messages.attestation import (
    NO_CHIP_UEID,
    AttestationResult,
    Challenge,
    Evidence,
    Firmware,
    Meters,
)
from attest.messages.certs import VerifierCert
from attest.messages.claims import DBGSTAT_DISABLED_PERMANENTLY
from attest.messages.schema import Extensions, SignedMessage
from attest.registry import MECHANISMS
from attest.verify.chain import (
    DeviceChain,
    TrustAnchors,
    verify_device_chain,
    verify_verifier_cert,
)
from attest.verify.reasons import Tier

_STATE_FILE = "state.cbor"
_KEY_FILE = "device.key"
#: 2: mechanism parts under "parts" (version 1 kept the licensing state under "license")
_STATE_VERSION = 2

Endorser = Callable[[PublicKey], tuple[bytes, bytes]]
#: builds a mechanism's part of a chip (see attest.mechanism.Mechanism.chip)
PartFactory = Callable[[Any, Any, DeviceSigner], ChipPart | None]
P = TypeVar("P")


class ChipCheck(enum.StrEnum):
    """Why a chip refused a verifier's message (its own checks, SPEC §7.10 and §7.12)."""

    VERIFIER_CERT_INVALID = "VERIFIER_CERT_INVALID"
    VERIFIER_CERT_EXPIRED = "VERIFIER_CERT_EXPIRED"
    CHALLENGE_INVALID = "CHALLENGE_INVALID"
    CHALLENGE_EXPIRED = "CHALLENGE_EXPIRED"
    RESULT_INVALID = "RESULT_INVALID"
    #: a grant (a licence ...) for a mechanism this chip does not have
    GRANT_UNSUPPORTED = "GRANT_UNSUPPORTED"
    #: an operation of a mechanism this chip does not have (e.g. a licence request)
    MECHANISM_ABSENT = "MECHANISM_ABSENT"
    #: a device certificate that does not chain to the authority or is not this chip's
    ENDORSEMENT_INVALID = "ENDORSEMENT_INVALID"


class Chip:
    """One simulated accelerator. See the module docstring."""

    #: mechanism name -> a replacement part factory (tampered firmware, attest.chip.adversary)
    PART_OVERRIDES: ClassVar[Mapping[str, PartFactory]] = {}

    def __init__(
        self,
        *,
        key: Signer,
        anchors: TrustAnchors,
        ueid: bytes,
        hwmodel: str,
        chain: DeviceChain | None,
        firmware_version: tuple[int, ...],
        bootcount: int = 0,
        attest_counter: int = 0,
        meters: Meters | None = None,
        state_dir: Path | None = None,
        chip_time_ms: int = 0,
        parts: Mapping[str, Any] | None = None,
        model: ChipModel | None = None,
        firmware_measurement: bytes | None = None,
    ) -> None:
        self.__key = key
        self._anchors = anchors
        self._ueid = ueid
        self.hwmodel = hwmodel
        if model is None:
            if hwmodel not in DEFAULT_MODELS:
                raise ValueError(f"unknown chip model {hwmodel!r} (give its ChipModel)")
            model = DEFAULT_MODELS[hwmodel]
        if model.name != hwmodel:
            raise ValueError(f"model {model.name!r} is not {hwmodel!r}")
        self._model = model
        self._chain = chain
        self.firmware_version = firmware_version
        self._firmware_measurement = firmware_measurement
        self.bootcount = bootcount
        self.attest_counter = attest_counter
        self.meters = meters or Meters()
        self._state_dir = state_dir
        self.booted_at_s = 0.0
        # fractional FLOPs/energy/bytes carried between workload steps
        self._carry = (0.0, 0.0, 0.0)
        #: monotonic operating time (persisted); licence expiries are measured in it
        self.chip_time_ms = chip_time_ms
        self._time_carry = 0.0
        saved = parts or {}
        self._parts: dict[str, ChipPart] = {}
        for m in MECHANISMS:
            factory = self.PART_OVERRIDES.get(m.name, m.chip)
            if factory is None:
                continue
            part = factory(self, saved.get(m.name), self._sign_message)
            if part is not None:
                self._parts[m.name] = part

    # -- what the chip's parts see (attest.mechanism.ChipHost) ---------------------------------
    @property
    def ueid(self) -> bytes:
        return self._ueid

    @property
    def anchors(self) -> TrustAnchors:
        return self._anchors

    @property
    def model(self) -> ChipModel:
        return self._model

    @property
    def state_dir(self) -> Path | None:
        return self._state_dir

    @property
    def public_key(self) -> PublicKey:
        return self.__key.public_key

    @property
    def chip_time_s(self) -> int:
        """Whole seconds of monotonic operating time (license expiries are measured in it)."""
        return self.chip_time_ms // 1000

    def persist(self) -> None:
        """Write the chip's state durably (write, fsync, rename); a no-op in memory."""
        self._persist()

    def _sign_message(self, message: SignedMessage) -> bytes:
        """The device key's signature, for the chip's own parts (link proofs)."""
        return message.sign(self.__key)

    @property
    def chain(self) -> DeviceChain:
        """The endorsement chain (AttestError before :meth:`install_endorsement`)."""
        if self._chain is None:
            raise AttestError(f"chip {self._ueid.hex()} has no device certificate yet")
        return self._chain

    @property
    def endorsed(self) -> bool:
        return self._chain is not None

    @property
    def firmware_measurement(self) -> bytes:
        """The digest of the running firmware image that Evidence reports (by default the
        simulated image's, :func:`attest.hardware.simulated_firmware_measurement`)."""
        if self._firmware_measurement is not None:
            return self._firmware_measurement
        return simulated_firmware_measurement(self.firmware_version)

    def install_firmware(self, version: tuple[int, ...], measurement: bytes | None = None) -> None:
        """Replace the firmware (durably); it runs from the next :meth:`boot`."""
        if measurement is not None and len(measurement) != 32:
            raise ValueError("a firmware measurement is a 32-byte SHA-256 digest")
        self.firmware_version = version
        self._firmware_measurement = measurement
        self._persist()

    # -- parts -----------------------------------------------------------------------------
    def part(self, kind: type[P]) -> P:
        """The chip's part of type ``kind`` (ChipRefusal MECHANISM_ABSENT if it has none)."""
        for part in self._parts.values():
            if isinstance(part, kind):
                return part
        raise ChipRefusal(ChipCheck.MECHANISM_ABSENT, f"this chip has no {kind.__name__}")

    def has(self, kind: type[Any]) -> bool:
        """Whether the chip has a part of type ``kind``."""
        return any(isinstance(p, kind) for p in self._parts.values())

    @property
    def parts(self) -> Iterator[ChipPart]:
        return iter(self._parts.values())

    # -- construction and persistence --------------------------------------------------------------
    @classmethod
    def create(
        cls,
        *,
        anchors: TrustAnchors,
        ueid: bytes,
        hwmodel: str,
        firmware_version: tuple[int, ...],
        state_dir: Path | None = None,
        signer: Signer | None = None,
        model: ChipModel | None = None,
        parts: Mapping[str, Any] | None = None,
        firmware_measurement: bytes | None = None,
    ) -> Chip:
        """A new chip, not yet endorsed: it makes its own device key (or uses ``signer``).

        Only ``chip.public_key`` leaves it; the manufacturer endorses that, and the chip then
        takes the certificate with :meth:`install_endorsement`. ``parts`` gives mechanisms their
        initial state by name (``{"licensing": ChipLicensing()}`` fits Offline Licensing: the
        chip then ships throttled); a mechanism left out is fitted as its package decides.
        """
        key: Signer = signer if signer is not None else SigningKey.generate()
        chip = cls(
            key=key,
            anchors=anchors,
            ueid=ueid,
            hwmodel=hwmodel,
            chain=None,
            firmware_version=firmware_version,
            state_dir=state_dir,
            parts=parts,
            model=model,
            firmware_measurement=firmware_measurement,
        )
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            if isinstance(key, SigningKey):
                write_secret_key(state_dir / _KEY_FILE, key)
            chip._persist()
        return chip

    def install_endorsement(self, device_cert: bytes, manufacturer_cert: bytes) -> None:
        """Take the manufacturer's certificate of this chip's key (at the fab, once).

        Raises ChipRefusal (ENDORSEMENT_INVALID) unless the chain verifies to the fused
        authority key and the device certificate names this chip's own UEID, key and model.
        """
        chain = DeviceChain(device_cert, manufacturer_cert)
        certs = verify_device_chain(chain, self._anchors)
        if certs is None:
            raise ChipRefusal(ChipCheck.ENDORSEMENT_INVALID, "chain does not verify")
        device = certs[0]
        if (device.ueid, device.public_key, device.hwmodel) != (
            self._ueid,
            self.public_key,
            self.hwmodel,
        ):
            raise ChipRefusal(
                ChipCheck.ENDORSEMENT_INVALID, "certificate is for another UEID, key or model"
            )
        self._install(chain)

    def _install(self, chain: DeviceChain) -> None:
        self._chain = chain
        self._persist()

    @classmethod
    def fabricate(
        cls,
        *,
        anchors: TrustAnchors,
        ueid: bytes,
        hwmodel: str,
        firmware_version: tuple[int, ...],
        endorse: Endorser,
        state_dir: Path | None = None,
        device_key: SigningKey | None = None,
        parts: Mapping[str, Any] | None = None,
        model: ChipModel | None = None,
    ) -> Chip:
        """:meth:`create`, then ``endorse`` (the manufacturer's step: public key in,
        certificates out), then :meth:`install_endorsement`."""
        chip = cls.create(
            anchors=anchors,
            ueid=ueid,
            hwmodel=hwmodel,
            firmware_version=firmware_version,
            state_dir=state_dir,
            signer=device_key,
            model=model,
            parts=parts,
        )
        chip.install_endorsement(*endorse(chip.public_key))
        return chip

    @classmethod
    def load(cls, state_dir: str | os.PathLike[str]) -> Chip:
        """Restore a chip from its state directory (its counters continue where they were)."""
        state_dir = Path(state_dir)
        try:
            raw = decode((state_dir / _STATE_FILE).read_bytes())
            version = raw.get("v")
            if version == 1:  # the licensing state sat at the top level
                raw["parts"] = {"licensing": raw.get("license")}
            elif version != _STATE_VERSION:
                raise DecodeError("unsupported chip state version")
            signer: Signer
            if raw.get("signer") is not None:
                signer = CommandSigner.from_state(raw["signer"])
            else:
                signer = read_secret_key(state_dir / _KEY_FILE)
            endorsed = raw["device_cert"] is not None
            model = raw.get("model")
            chip = cls(
                key=signer,
                anchors=_fused_anchors(raw),
                ueid=raw["ueid"],
                hwmodel=raw["hwmodel"],
                model=None if model is None else ChipModel(*model),
                chain=DeviceChain(raw["device_cert"], raw["manufacturer_cert"])
                if endorsed
                else None,
                firmware_version=tuple(raw["firmware"]),
                firmware_measurement=raw.get("firmware_measurement"),
                bootcount=raw["bootcount"],
                attest_counter=raw["attest_counter"],
                meters=Meters(*raw["meters"]),
                state_dir=state_dir,
                chip_time_ms=raw.get("chip_time_ms", 0),
                parts=raw["parts"],
            )
        except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AttestError(f"{state_dir}: cannot load chip state: {exc}") from None
        for part in chip.parts:
            part.loaded()
        return chip

    def _persist(self) -> None:
        if self._state_dir is None:
            return
        saved = {name: part.save() for name, part in self._parts.items()}
        m = self._model
        state = {
            "v": _STATE_VERSION,
            "authority_id": self._anchors.authority_id,
            "authority_key": self._anchors.authority_key.raw,
            "ueid": self._ueid,
            "hwmodel": self.hwmodel,
            "model": [
                m.name,
                m.peak_flops_per_s,
                m.peak_power_mw,
                m.peak_interconnect_bytes_per_s,
                m.max_pod_size,
            ],
            "signer": self.__key.to_state() if isinstance(self.__key, CommandSigner) else None,
            "device_cert": None if self._chain is None else self._chain.device_cert,
            "manufacturer_cert": None if self._chain is None else self._chain.manufacturer_cert,
            "firmware": list(self.firmware_version),
            "firmware_measurement": self._firmware_measurement,
            "bootcount": self.bootcount,
            "attest_counter": self.attest_counter,
            "meters": list(self.meters.as_tuple()),
            "chip_time_ms": self.chip_time_ms,
            **_fused_committee(self._anchors),
            "parts": {name: state for name, state in saved.items() if state is not None},
        }
        atomic_write(self._state_dir / _STATE_FILE, encode(state))

    def __repr__(self) -> str:
        return (
            f"Chip(ueid={self._ueid.hex()}, hwmodel={self.hwmodel}, counter={self.attest_counter})"
        )

    # -- life cycle ----------------------------------------------------------------------------
    def boot(self, now_s: float) -> None:
        """Power on: the boot count rises (durably) and uptime restarts."""
        self.bootcount += 1
        self.booted_at_s = now_s
        self._persist()

    def run_workload(self, seconds: float, share: float) -> None:
        """Advance the meters as if the chip ran ``seconds`` at ``share`` of its peak
        (as far as its parts allow: a licensing chip throttles without a licence)."""
        if seconds < 0 or not 0.0 <= share <= 1.0:
            raise ValueError("seconds must be >= 0 and share in [0, 1]")
        peaks = self._model.peaks()
        usage: tuple[float, ...] = tuple(p * share * seconds for p in peaks)
        limited = False
        for part in self._parts.values():
            used = part.usage(seconds, share, peaks, self.chip_time_ms)
            if used is not None:
                usage, limited = used, True
        totals = [c + u for c, u in zip(self._carry, usage, strict=True)]
        whole = [int(t) for t in totals]
        self._carry = (totals[0] - whole[0], totals[1] - whole[1], totals[2] - whole[2])
        f, e, i = self.meters.as_tuple()
        self.meters = Meters(f + whole[0], e + whole[1], i + whole[2])
        elapsed_ms = self._time_carry + seconds * 1000
        self.chip_time_ms += int(elapsed_ms)
        self._time_carry = elapsed_ms - int(elapsed_ms)
        if limited:
            # budget spent must be durable, or a crash would hand it back
            self._persist()

    # -- attestation ---------------------------------------------------------------------------
    def accept_challenge(self, verifier_cert: bytes, challenge: bytes, now_s: int) -> Challenge:
        """Check that a challenge comes from a certified, unexpired verifier; return it parsed."""
        anchors = self._verifier_anchors(verifier_cert, now_s)
        return check_challenge(verifier_cert, challenge, anchors, now_s)

    def _verifier_anchors(self, verifier_cert: bytes, now_s: int) -> TrustAnchors:
        """The fused anchors, or a partner authority's that a part recognises (federation)."""
        for part in self._parts.values():
            if isinstance(part, VerifierRecognizer):
                anchors = part.verifier_anchors(verifier_cert, now_s=now_s)
                if anchors is not None:
                    return anchors
        return self._anchors

    def partner_licensor(self, delegation: bytes, *, now_s: int) -> PartnerLicensor | None:
        """A part's judge of another authority's Delegation (federation's roaming licences)."""
        for part in self._parts.values():
            if isinstance(part, VerifierRecognizer):
                found = part.licensor(delegation, now_s=now_s)
                if found is not None:
                    return found
        return None

    def answer(self, challenge: Challenge, now_s: float) -> bytes:
        """Sign Evidence for ``challenge``. The counter advance is durable before signing."""
        self.attest_counter += 1
        self._persist()
        return self._sign_evidence(self.current_evidence(challenge, now_s))

    def current_evidence(self, challenge: Challenge, now_s: float) -> Evidence:
        """The claims an honest chip makes right now (unsigned)."""
        claims: dict[str, Any] = {}
        for part in self._parts.values():
            claims.update(part.evidence_claims(now_s))
        return Evidence(
            verifier_id=challenge.verifier_id,
            nonce=challenge.nonce,
            ueid=self._ueid,
            uptime_s=max(0, int(now_s - self.booted_at_s)),
            dbgstat=DBGSTAT_DISABLED_PERMANENTLY,
            bootcount=self.bootcount,
            firmware=Firmware(self.firmware_version, self.firmware_measurement),
            attest_counter=self.attest_counter,
            meters=self.meters,
            extensions=Extensions(claims),
        )

    def _sign_evidence(self, evidence: Evidence) -> bytes:
        return evidence.sign(self.__key)

    def check_result(
        self, verifier_cert: bytes, result: bytes, challenge: Challenge
    ) -> AttestationResult:
        """Verify a signed attestation result that answers ``challenge`` for this chip."""
        return check_result(
            verifier_cert,
            result,
            self._verifier_anchors(verifier_cert, challenge.issued_at),
            ueid=self._ueid,
            nonce=challenge.nonce,
            verifier_id=challenge.verifier_id,
        )

    def answer_ping(self, nonce: bytes, landmark_id: str) -> bytes:
        """The signed answer to a PING of this round (a part that answers pings signs it).

        ``landmark_id`` is the certified verifier of this round's CHALLENGE. Raises ChipRefusal
        MECHANISM_ABSENT if no part of the chip answers pings.
        """
        for part in self._parts.values():
            if isinstance(part, PingResponder):
                return part.answer_ping(nonce, landmark_id)
        raise ChipRefusal(ChipCheck.MECHANISM_ABSENT, "no part of this chip answers pings")

    def accept_grant(self, grant: Grant, *, session_nonce: bytes, now_s: float) -> str:
        """Hand a grant from a RESULT to the part it is for; its account of what it did.

        Raises ChipRefusal if the part refused it, or if no part of this chip takes grants.
        """
        for part in self._parts.values():
            taken = part.accept_grant(grant, session_nonce=session_nonce, now_s=now_s)
            if taken is not None:
                return taken
        raise ChipRefusal(ChipCheck.GRANT_UNSUPPORTED, "no part of this chip takes grants")

    def apply_revocations(self, token: bytes) -> int:
        """Give every part that keeps a revocation list the authority's newer list.

        Returns its number. Raises the first part's ChipRefusal if no part adopted it (a
        forged or stale list); a part that refused while another adopted keeps its own list.
        """
        adopted: int | None = None
        refusal: ChipRefusal | None = None
        for part in self._parts.values():
            try:
                number = part.apply_revocations(token)
            except ChipRefusal as exc:
                refusal = refusal or exc
                continue
            if number is not None:
                adopted = number
        if adopted is None:
            raise refusal or ChipRefusal(ChipCheck.MECHANISM_ABSENT, "no part keeps revocations")
        return adopted


def _certified_verifier(verifier_cert: bytes, anchors: TrustAnchors) -> VerifierCert:
    """The verifier certificate if it chains to the fused authority key, else a refusal."""
    cert = verify_verifier_cert(verifier_cert, anchors)
    if cert is None:
        raise ChipRefusal(ChipCheck.VERIFIER_CERT_INVALID)
    return cert


def check_challenge(
    verifier_cert: bytes, challenge: bytes, anchors: TrustAnchors, now_s: int
) -> Challenge:
    """SPEC §7.10: the challenge, parsed, if a certified, unexpired verifier issued it.

    Pure (the chip's clock is ``now_s``), so the published vectors run exactly this; raises
    ChipRefusal with the first failed check's name.
    """
    cert = _certified_verifier(verifier_cert, anchors)
    if now_s >= cert.expires_at:
        raise ChipRefusal(ChipCheck.VERIFIER_CERT_EXPIRED)
    try:
        parsed = Challenge.verify(challenge, cert.public_key)
    except AttestError as exc:
        raise ChipRefusal(ChipCheck.CHALLENGE_INVALID, str(exc)) from None
    if parsed.verifier_id != cert.verifier_id:
        raise ChipRefusal(
            ChipCheck.CHALLENGE_INVALID, "challenge issuer is not the certified verifier"
        )
    if now_s >= parsed.expires_at:
        raise ChipRefusal(ChipCheck.CHALLENGE_EXPIRED)
    return parsed


def check_result(
    verifier_cert: bytes,
    result: bytes,
    anchors: TrustAnchors,
    *,
    ueid: bytes,
    nonce: bytes,
    verifier_id: str,
) -> AttestationResult:
    """SPEC §7.12: the result, parsed, if it answers this round's challenge for chip ``ueid``
    (or is a diagnostic result naming no chip: then ``result.ueid`` is NO_CHIP_UEID).

    ``nonce`` and ``verifier_id`` are those of the round's Challenge; raises ChipRefusal.
    """
    cert = _certified_verifier(verifier_cert, anchors)
    try:
        parsed = AttestationResult.verify(result, cert.public_key)
    except AttestError as exc:
        raise ChipRefusal(ChipCheck.RESULT_INVALID, str(exc)) from None
    # A contraindicated result naming no chip is diagnostic: the verifier could not attribute
    # the Evidence (e.g. CERT_CHAIN_INVALID); the chip learns why, and takes nothing from it.
    diagnostic = parsed.ueid == NO_CHIP_UEID and parsed.status >= Tier.CONTRAINDICATED
    if parsed.ueid != ueid and not diagnostic:
        raise ChipRefusal(ChipCheck.RESULT_INVALID, "result is for another chip")
    if parsed.nonce != nonce or parsed.verifier_id != verifier_id:
        raise ChipRefusal(
            ChipCheck.RESULT_INVALID, "result does not answer this session's challenge"
        )
    return parsed


def _fused_committee(anchors: TrustAnchors) -> dict[str, bytes]:
    """State entries of a chip whose authority is a k-of-n committee (SPEC Appendix B): the
    committee's digest, its fused trust anchor, and the descriptor it names (none for a
    single-key authority, whose chips' state is as before)."""
    if not isinstance(anchors.committee, Committee):
        return {}
    c = anchors.committee
    return {"authority_digest": c.digest, "authority_committee": c.payload()}


def _fused_anchors(raw: Mapping[str, Any]) -> TrustAnchors:
    """The anchors a chip's state fuses: one key, or a committee whose digest it holds."""
    key = PublicKey(raw["authority_key"])
    if raw.get("authority_digest") is None:
        return TrustAnchors(raw["authority_id"], key)
    try:
        committee = Committee.from_claims(decode(raw["authority_committee"]))
    except AttestError as exc:
        raise ValueError(f"the fused committee: {exc}") from None
    if committee.digest != raw["authority_digest"] or committee.authority_id != raw["authority_id"]:
        raise ValueError("the committee is not the one the chip's fused digest names")
    return TrustAnchors(committee.authority_id, committee.officers[0], committee)


def fabricate(
    manufacturer: Manufacturer,
    anchors: TrustAnchors,
    *,
    hwmodel: str,
    pod_class: int,
    now_s: int,
    firmware_version: tuple[int, ...] = (1, 2, 0),
    ueid: bytes | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    device_key: SigningKey | None = None,
    chip_class: type[Chip] = Chip,
    parts: Mapping[str, Any] | None = None,
    model: ChipModel | None = None,
) -> Chip:
    """Make a chip at ``manufacturer``'s fab: it creates its own device key; the manufacturer
    endorses the public half.

    ``device_key`` and ``ueid`` may be given only to build deterministic test vectors;
    ``chip_class`` lets simulations fabricate a compromised chip (attest.chip.adversary);
    ``parts`` gives mechanisms their initial state (see :meth:`Chip.fabricate`).
    """
    ueid = ueid if ueid is not None else new_ueid()
    return chip_class.fabricate(
        anchors=anchors,
        ueid=ueid,
        hwmodel=hwmodel,
        firmware_version=firmware_version,
        endorse=lambda pk: (
            manufacturer.endorse(pk, ueid=ueid, hwmodel=hwmodel, pod_class=pod_class, now_s=now_s),
            manufacturer.cert,
        ),
        state_dir=Path(state_dir) if state_dir is not None else None,
        device_key=device_key,
        parts=parts,
        model=model,
    )
