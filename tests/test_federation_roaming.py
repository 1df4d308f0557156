"""Roaming licences (SPEC B.5): a chip takes a licence from a partner authority's delegated
node only if its own authority signed an agreement in force that lets that partner license its
chips, and only within the partner quota; each refusal with its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from attest.chip.device import Chip, fabricate
from attest.errors import ChipRefusal
from attest.federation.agreement import Recognition
from attest.federation.chip import FederationChip
from attest.federation.sign import sign_multi
from attest.licensing.chip import ChipLicensing, LicensingChip
from attest.licensing.messages import Budgets, Delegation, License, LicenseGrant
from attest.testvectors.federation_world import (
    SG,
    TH,
    agreement,
    officers,
    partner_verifier,
    sign_agreement,
)
from attest.testvectors.world import AUTHORITY_ID, NOW_S, build_world

W = build_world()
NOW = NOW_S
QUOTA = 3 * 10**14
FLOPS = 2 * 10**14


def _chip(state: Path | None = None, quota: int = QUOTA, **kw: object) -> Chip:
    chip = fabricate(W.manufacturers["mfr-a"], W.anchors, hwmodel="HX100", pod_class=8,
                     now_s=NOW, parts={"licensing": ChipLicensing()}, state_dir=state)  # fmt: skip
    roaming = (
        Recognition(AUTHORITY_ID, SG, (), results=True, licence_quota=quota),
        Recognition(AUTHORITY_ID, TH, (), results=True),  # TH may not license home chips
    )
    a = agreement(W, recognitions=roaming, **kw)  # type: ignore[arg-type]
    _fed(chip).install(sign_agreement(W, a, {AUTHORITY_ID: 1, SG: 3, TH: 3}), now_s=NOW)
    return chip


def _fed(chip: Chip) -> FederationChip:
    return next(p for p in chip.parts if isinstance(p, FederationChip))


def _lic(chip: Chip) -> LicensingChip:
    return next(p for p in chip.parts if isinstance(p, LicensingChip))


def _grant(chip: Chip, serial: int, *, authority: str = SG, signers: int = 3) -> LicenseGrant:
    node = partner_verifier(authority, f"{authority}-node")
    d = Delegation(authority, node.verifier_id, NOW - 10, NOW + 10**6, node.key.public_key,
                   "MY", 7, Budgets(10**16))  # fmt: skip
    delegation = sign_multi(d.CONTENT_TYPE, d.payload(), officers(authority)[:signers])
    lic = License(issuer=node.verifier_id, issued_at=NOW, ueid=chip.ueid, min_firmware=(1, 1, 0),
                  serial=serial, budgets=Budgets(FLOPS), expiry_s=chip.chip_time_s + 3600,
                  delegation_id=7).sign(node.key)  # fmt: skip
    return LicenseGrant(lic, delegation)


def test_a_roaming_licence_within_the_partner_quota_then_the_overrun(tmp_path: Path) -> None:
    chip = _chip(tmp_path / "chip")
    assert _lic(chip).apply_license(_grant(chip, 1), NOW).serial == 1
    with pytest.raises(ChipRefusal, match="LICENSE_PARTNER_QUOTA_EXCEEDED"):
        _lic(chip).apply_license(_grant(chip, 2), NOW)
    # what the chip took from the partner survives a restart (it is its quota's memory)
    again = Chip.load(tmp_path / "chip")
    used = {d.authority: d.used[0] for d in _lic(again).state.delegations}
    assert used == {SG: FLOPS}
    with pytest.raises(ChipRefusal, match="LICENSE_PARTNER_QUOTA_EXCEEDED"):
        _lic(again).apply_license(_grant(again, 2), NOW)


def test_what_the_agreement_does_not_grant_the_roaming_chip_refuses() -> None:
    chip = _chip()
    with pytest.raises(ChipRefusal, match="LICENSE_PARTNER_NOT_RECOGNISED"):
        _lic(chip).apply_license(_grant(chip, 1, authority=TH), NOW)  # no licence quota
    expired = _chip(expires_at=NOW + 5)
    with pytest.raises(ChipRefusal, match="LICENSE_PARTNER_NOT_RECOGNISED"):
        _lic(expired).apply_license(_grant(expired, 1), NOW + 5)
    bare = fabricate(W.manufacturers["mfr-a"], W.anchors, hwmodel="HX100", pod_class=8,
                     now_s=NOW, parts={"licensing": ChipLicensing()})  # fmt: skip
    with pytest.raises(ChipRefusal, match="LICENSE_PARTNER_NOT_RECOGNISED"):
        _lic(bare).apply_license(_grant(bare, 1), NOW)  # no agreement at all
    with pytest.raises(ChipRefusal, match="LICENSE_DELEGATION_INVALID: ACT_TOO_FEW_SIGNATURES"):
        _lic(chip).apply_license(_grant(chip, 1, signers=2), NOW)  # 2 of SG's 5 officers
    assert _lic(chip).state.serial == 0  # nothing was taken
