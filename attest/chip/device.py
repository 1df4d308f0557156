"""The simulated chip: the Attester of RFC 9334.

A :class:`Chip` holds its device key (generated inside it; no accessor returns it), the
authority key fused at fabrication, its endorsement chain, monotonic counters (boot count,
attestation counter), cumulative usage meters and its firmware identity. It is sans-I/O apart
from its own state directory: drivers pass in messages and the time, and get bytes back.

Anti-rollback: every change to a counter or meter is written to the state directory
(write, fsync, rename) *before* anything that depends on it leaves the chip, so a crash or
restart can never make the chip sign a counter value twice or report a lower meter.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from attest.codec.cbor import decode, encode
from attest.durable import atomic_write
from attest.errors import AttestError, ChipRefusal, DecodeError
from attest.hardware import DEFAULT_MODELS, simulated_firmware_measurement
from attest.keys import PublicKey, SigningKey, read_secret_key, write_secret_key
from attest.messages.attestation import AttestationResult, Challenge, Evidence, Meters
from attest.messages.certs import VerifierCert
from attest.messages.claims import DBGSTAT_DISABLED_PERMANENTLY
from attest.verify.chain import DeviceChain, TrustAnchors, verify_verifier_cert

_STATE_FILE = "state.cbor"
_KEY_FILE = "device.key"
_STATE_VERSION = 1

Endorser = Callable[[PublicKey], tuple[bytes, bytes]]


class Chip:
    """One simulated accelerator. See the module docstring."""

    def __init__(
        self,
        *,
        key: SigningKey,
        anchors: TrustAnchors,
        ueid: bytes,
        hwmodel: str,
        chain: DeviceChain,
        firmware_version: tuple[int, ...],
        bootcount: int = 0,
        attest_counter: int = 0,
        meters: Meters | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.__key = key
        self.anchors = anchors
        self.ueid = ueid
        self.hwmodel = hwmodel
        self.model = DEFAULT_MODELS[hwmodel]
        self.chain = chain
        self.firmware_version = firmware_version
        self.bootcount = bootcount
        self.attest_counter = attest_counter
        self.meters = meters or Meters()
        self.state_dir = state_dir
        self.booted_at_s = 0.0
        # fractional FLOPs/energy/bytes carried between workload steps
        self._carry = (0.0, 0.0, 0.0)

    # -- construction and persistence --------------------------------------------------------------
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
    ) -> Chip:
        """Create a chip with a fresh device key and have the manufacturer endorse it."""
        if hwmodel not in DEFAULT_MODELS:
            raise ValueError(f"unknown chip model {hwmodel!r}")
        key = device_key if device_key is not None else SigningKey.generate()
        device_cert, manufacturer_cert = endorse(key.public_key)
        chip = cls(
            key=key,
            anchors=anchors,
            ueid=ueid,
            hwmodel=hwmodel,
            chain=DeviceChain(device_cert, manufacturer_cert),
            firmware_version=firmware_version,
            state_dir=state_dir,
        )
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            write_secret_key(state_dir / _KEY_FILE, key)
            chip._persist()
        return chip

    @classmethod
    def load(cls, state_dir: str | os.PathLike[str]) -> Chip:
        """Restore a chip from its state directory (its counters continue where they were)."""
        state_dir = Path(state_dir)
        try:
            raw = decode((state_dir / _STATE_FILE).read_bytes())
            if raw.get("v") != _STATE_VERSION:
                raise DecodeError("unsupported chip state version")
            chip = cls(
                key=read_secret_key(state_dir / _KEY_FILE),
                anchors=TrustAnchors(raw["authority_id"], PublicKey(raw["authority_key"])),
                ueid=raw["ueid"],
                hwmodel=raw["hwmodel"],
                chain=DeviceChain(raw["device_cert"], raw["manufacturer_cert"]),
                firmware_version=tuple(raw["firmware"]),
                bootcount=raw["bootcount"],
                attest_counter=raw["attest_counter"],
                meters=Meters(*raw["meters"]),
                state_dir=state_dir,
            )
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise AttestError(f"{state_dir}: cannot load chip state: {exc}") from None
        return chip

    def _persist(self) -> None:
        if self.state_dir is None:
            return
        state = {
            "v": _STATE_VERSION,
            "authority_id": self.anchors.authority_id,
            "authority_key": self.anchors.authority_key.raw,
            "ueid": self.ueid,
            "hwmodel": self.hwmodel,
            "device_cert": self.chain.device_cert,
            "manufacturer_cert": self.chain.manufacturer_cert,
            "firmware": list(self.firmware_version),
            "bootcount": self.bootcount,
            "attest_counter": self.attest_counter,
            "meters": list(self.meters.as_tuple()),
        }
        atomic_write(self.state_dir / _STATE_FILE, encode(state))

    @property
    def public_key(self) -> PublicKey:
        return self.__key.public_key

    def __repr__(self) -> str:
        return (
            f"Chip(ueid={self.ueid.hex()}, hwmodel={self.hwmodel}, counter={self.attest_counter})"
        )

    # -- life cycle ----------------------------------------------------------------------------
    def boot(self, now_s: float) -> None:
        """Power on: the boot count rises (durably) and uptime restarts."""
        self.bootcount += 1
        self.booted_at_s = now_s
        self._persist()

    def run_workload(self, seconds: float, share: float) -> None:
        """Advance the meters as if the chip ran ``seconds`` at ``share`` of its peak."""
        if seconds < 0 or not 0.0 <= share <= 1.0:
            raise ValueError("seconds must be >= 0 and share in [0, 1]")
        peaks = self.model.peaks()
        totals = [c + p * share * seconds for c, p in zip(self._carry, peaks, strict=True)]
        whole = [int(t) for t in totals]
        self._carry = tuple(t - w for t, w in zip(totals, whole, strict=True))  # type: ignore[assignment]
        f, e, i = self.meters.as_tuple()
        self.meters = Meters(f + whole[0], e + whole[1], i + whole[2])

    # -- attestation ---------------------------------------------------------------------------
    def _certified_verifier(self, verifier_cert: bytes) -> VerifierCert:
        """The verifier certificate if it chains to the fused authority key, else a refusal."""
        cert = verify_verifier_cert(verifier_cert, self.anchors)
        if cert is None:
            raise ChipRefusal("VERIFIER_CERT_INVALID")
        return cert

    def accept_challenge(self, verifier_cert: bytes, challenge: bytes, now_s: int) -> Challenge:
        """Check that a challenge comes from a certified, unexpired verifier; return it parsed."""
        cert = self._certified_verifier(verifier_cert)
        if now_s >= cert.expires_at:
            raise ChipRefusal("VERIFIER_CERT_EXPIRED")
        try:
            parsed = Challenge.verify(challenge, cert.public_key)
        except AttestError as exc:
            raise ChipRefusal("CHALLENGE_INVALID", str(exc)) from None
        if parsed.verifier_id != cert.verifier_id:
            raise ChipRefusal("CHALLENGE_INVALID", "challenge issuer is not the certified verifier")
        if now_s >= parsed.expires_at:
            raise ChipRefusal("CHALLENGE_EXPIRED")
        return parsed

    def answer(self, challenge: Challenge, now_s: float) -> bytes:
        """Sign Evidence for ``challenge``. The counter advance is durable before signing."""
        self.attest_counter += 1
        self._persist()
        return self._sign_evidence(self.current_evidence(challenge, now_s))

    def current_evidence(self, challenge: Challenge, now_s: float) -> Evidence:
        """The claims an honest chip makes right now (unsigned)."""
        return Evidence(
            verifier_id=challenge.verifier_id,
            nonce=challenge.nonce,
            ueid=self.ueid,
            uptime_s=max(0, int(now_s - self.booted_at_s)),
            dbgstat=DBGSTAT_DISABLED_PERMANENTLY,
            bootcount=self.bootcount,
            firmware_version=self.firmware_version,
            attest_counter=self.attest_counter,
            meters=self.meters,
            firmware_measurement=simulated_firmware_measurement(self.firmware_version),
        )

    def _sign_evidence(self, evidence: Evidence) -> bytes:
        return evidence.sign(self.__key)

    def check_result(
        self, verifier_cert: bytes, result: bytes, challenge: Challenge
    ) -> AttestationResult:
        """Verify a signed attestation result that answers ``challenge`` for this chip."""
        cert = self._certified_verifier(verifier_cert)
        try:
            parsed = AttestationResult.verify(result, cert.public_key)
        except AttestError as exc:
            raise ChipRefusal("RESULT_INVALID", str(exc)) from None
        if parsed.ueid != self.ueid:
            raise ChipRefusal("RESULT_INVALID", "result is for another chip")
        if parsed.nonce != challenge.nonce or parsed.verifier_id != challenge.verifier_id:
            raise ChipRefusal("RESULT_INVALID", "result does not answer this session's challenge")
        return parsed
