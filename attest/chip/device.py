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
from dataclasses import replace
from pathlib import Path

from attest.chip import license as lic
from attest.codec.cbor import decode, encode
from attest.durable import atomic_write
from attest.errors import AttestError, ChipRefusal, DecodeError
from attest.hardware import DEFAULT_MODELS, simulated_firmware_measurement
from attest.keys import PublicKey, SigningKey, read_secret_key, write_secret_key
from attest.messages.attestation import (
    AttestationResult,
    Challenge,
    Evidence,
    LicenseState,
    Meters,
)
from attest.messages.certs import VerifierCert
from attest.messages.claims import DBGSTAT_DISABLED_PERMANENTLY
from attest.messages.license import License, LicenseGrant
from attest.pods import member as pods  # Fixed Set
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
        chip_time_ms: int = 0,
        licensing: lic.ChipLicensing | None = None,
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
        # -- Fixed Set: the pod slot (saved in pod.cbor) and the live link table
        self.pod = pods.PodState()
        self.links = pods.LinkTable(peak_bps=self.model.peak_interconnect_bytes_per_s)
        # -- Offline Licensing: monotonic operating time (persisted) and the license state;
        # ``licensing`` None is a chip without the mechanism (it reports no license state)
        self.chip_time_ms = chip_time_ms
        self._time_carry = 0.0
        self.licensing = licensing

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
        licensing: lic.ChipLicensing | None = None,
    ) -> Chip:
        """Create a chip with a fresh device key and have the manufacturer endorse it.

        ``licensing`` fits the Offline Licensing mechanism (the chip then ships throttled to
        its baseline); without it the chip is a version 1 part that reports no license state.
        """
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
            licensing=licensing,
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
                chip_time_ms=raw.get("chip_time_ms", 0),
                licensing=None
                if raw.get("license") is None
                else lic.ChipLicensing.from_cbor(raw["license"]),
            )
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise AttestError(f"{state_dir}: cannot load chip state: {exc}") from None
        chip.pod = pods.PodState.load(state_dir, chip.anchors)  # Fixed Set
        if chip.licensing is not None and chip.licensing.pending is not None:
            # a crash hit between accepting a license and adding its budget: roll forward
            chip._apply_pending()
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
            "chip_time_ms": self.chip_time_ms,
            "license": None if self.licensing is None else self.licensing.to_cbor(),
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
        if self.licensing is None:
            usage: tuple[float, ...] = tuple(p * share * seconds for p in peaks)
        else:
            self.licensing, usage = lic.run_workload(
                self.licensing,
                chip_time_ms=self.chip_time_ms,
                seconds=seconds,
                share=share,
                peaks=peaks,
            )
        totals = [c + u for c, u in zip(self._carry, usage, strict=True)]
        whole = [int(t) for t in totals]
        self._carry = tuple(t - w for t, w in zip(totals, whole, strict=True))  # type: ignore[assignment]
        f, e, i = self.meters.as_tuple()
        self.meters = Meters(f + whole[0], e + whole[1], i + whole[2])
        elapsed_ms = self._time_carry + seconds * 1000
        self.chip_time_ms += int(elapsed_ms)
        self._time_carry = elapsed_ms - int(elapsed_ms)
        if self.licensing is not None:
            # budget spent must be durable, or a crash would hand it back
            self._persist()

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
            license_state=self.license_state(),
            **self.pod_claims(now_s),
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

    # -- Offline Licensing -------------------------------------------------------------------------
    @property
    def chip_time_s(self) -> int:
        """Whole seconds of monotonic operating time (license expiries are measured in it)."""
        return self.chip_time_ms // 1000

    @property
    def throttled(self) -> bool:
        """True when a licensing chip runs at its baseline (no license, exhausted or expired)."""
        return self.licensing is not None and not self.licensing.active(self.chip_time_s)

    def license_state(self) -> LicenseState | None:
        """What Evidence reports: serial in force, FLOPs left, chip time (None: no mechanism)."""
        if self.licensing is None:
            return None
        t = self.chip_time_s
        return LicenseState(self.licensing.serial, self.licensing.remaining_flops(t), t)

    def _licensing(self) -> lic.ChipLicensing:
        if self.licensing is None:
            raise ChipRefusal("LICENSING_UNSUPPORTED", "this chip has no licensing mechanism")
        return self.licensing

    def apply_license(
        self,
        grant: LicenseGrant,
        now_s: float,
        *,
        session_nonce: bytes | None = None,
        after_accept: Callable[[], None] | None = None,
    ) -> License:
        """Check a license and add its budget (SPEC: license acceptance). Raises ChipRefusal.

        The high-water serial is made durable *before* the budget is added; ``after_accept``
        runs between the two writes (crash tests stop the process there).
        """
        state = self._licensing()
        parsed, delegation = lic.check_license(
            state,
            grant,
            anchors=self.anchors,
            ueid=self.ueid,
            firmware=self.firmware_version,
            chip_time_s=self.chip_time_s,
            now_s=int(now_s),
            session_nonce=session_nonce,
        )
        self.licensing = lic.accept(state, parsed, delegation, now_s=int(now_s))
        self._persist()
        if after_accept is not None:
            after_accept()
        self._apply_pending()
        return parsed

    def _apply_pending(self) -> None:
        self.licensing = lic.apply_pending(self._licensing(), self.chip_time_s)
        self._persist()

    def license_request(self) -> bytes:
        """A fresh nonce for an offline license request; a license bound to it is accepted once."""
        self.licensing = replace(self._licensing(), request_nonce=os.urandom(32))
        self._persist()
        assert self.licensing.request_nonce is not None
        return self.licensing.request_nonce

    def apply_revocations(self, token: bytes) -> int:
        """Adopt a newer authority revocation list (revoked delegations); returns its number."""
        self.licensing = lic.apply_revocations(self._licensing(), token, self.anchors)
        self._persist()
        return self.licensing.revocations_number

    # -- Fixed Set (attest/pods) -------------------------------------------------------------------
    #: False only in tampered firmware (attest.chip.adversary), which ignores the pod rule
    enforces_pod_rule: bool = True

    def install_pod_cert(self, token: bytes, issuer_cert: bytes = b"", *, now_s: int) -> None:
        """Adopt a pod certificate (at a trusted facility); raises ChipRefusal naming the rule.

        The certificate must verify, name an unrevoked pod within this model's size limit and
        list this chip with its own device key. Full links of a previous pod drop to the cap.
        """
        self.pod = self.pod.install(
            token,
            issuer_cert,
            anchors=self.anchors,
            ueid=self.ueid,
            device_key=self.public_key,
            max_pod_size=self.model.max_pod_size,
            now_s=now_s,
            enforce=self.enforces_pod_rule,
        )
        self.pod.save(self.state_dir)
        self.links.drop_all(pods.Refusal.POD_CHANGED, now_s)

    def apply_pod_revocations(self, token: bytes) -> int:
        """Adopt a newer authority revocation list for its revoked pods; returns its number.

        Links are not cut here: the next re-verification of each link refuses a revoked pod.
        """
        self.pod = self.pod.adopt_revocations(token, self.anchors)
        self.pod.save(self.state_dir)
        return self.pod.revocations_number

    def link_context(self) -> pods.LinkContext:
        """This chip's side of a link handshake round: pod state snapshot and its signer."""
        return pods.LinkContext(
            ueid=self.ueid,
            anchors=self.anchors,
            credential=self.pod.credential,
            revoked_pods=self.pod.revoked_pods,
            max_pod_size=self.model.max_pod_size,
            sign=lambda proof: proof.sign(self.__key),
            enforce=self.enforces_pod_rule,
        )

    def pod_claims(self, now_s: float) -> dict[str, object]:
        """The Fixed Set claims of Evidence: pod id, live full links, refusal proofs.

        A chip with no pod and no links reports none of them (its Evidence is unchanged).
        """
        links, refusals = self.links.report(now_s)
        claims: dict[str, object] = {}
        if self.pod.pod_id is not None or links:
            claims["pod_id"] = self.pod.pod_id
            claims["links"] = links
        if refusals:
            claims["link_refusals"] = refusals
        return claims
