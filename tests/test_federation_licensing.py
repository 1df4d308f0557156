"""The issuing node's side of roaming licences (SPEC B.5): a partner's chip is licensed only
if the agreement lets this node's authority license that partner's chips, and the partner
quota is charged durably in the ledger's transaction, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from attest.licensing.checks import LedgerView
from attest.licensing.issuer import LicenseIssuer, LicensingPolicy, RenewalOutcome
from attest.licensing.ledger import LedgerRecord, LicenseLedger, QuotaExceeded
from attest.licensing.messages import Budgets, Delegation, LicenseState
from attest.store import open_store
from attest.store.base import Store
from attest.testvectors.federation_world import SG
from attest.testvectors.world import NOW_S, build_world
from attest.verify.reasons import Tier

W = build_world()
FLOPS = 2 * 10**14
QUOTA = 3 * 10**14


@pytest.fixture(params=["sqlite", "postgresql"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the node's store again on one location of one backend."""
    location = str(tmp_path / "v.db")
    if request.param == "postgresql":
        location = request.getfixturevalue("pg_url")
    opened: list[Store] = []

    def make() -> Store:
        store = open_store(location, verifier_id="kl-1")
        opened.append(store)
        return store

    yield make
    for s in opened:
        s.close()


def _delegation() -> tuple[bytes, Delegation]:
    node = W.verifiers["kl-1"]
    d = Delegation(W.anchors.authority_id, "kl-1", NOW_S - 60, NOW_S + 10**6,
                   node.key.public_key, "MY", 1, Budgets(10**18))  # fmt: skip
    return d.sign(W.authority.key), d


def _record(ueid: bytes, serial: int, partner: tuple[str, int] | None) -> LedgerRecord:
    return LedgerRecord(ueid=ueid, serial=serial, issuer="kl-1", delegation_id=1, region="MY",
                        budgets=Budgets(FLOPS), expiry_s=10**6, issued_at_ms=NOW_S * 1000,
                        token=b"licence %d" % serial, partner=partner)  # fmt: skip


def test_the_partner_quota_is_charged_durably_in_the_ledger(reopen: Callable[[], Store]) -> None:
    store = reopen()
    ledger = LicenseLedger(store.db, audit=store)
    ledger.register_delegation(*_delegation())
    a, b = b"\x01" + bytes(15) + b"\x0a", b"\x01" + bytes(15) + b"\x0b"
    ledger.issue_license(_record(a, 1, (SG, QUOTA)), expected_latest=0, now_s=NOW_S)
    with pytest.raises(QuotaExceeded) as refused:  # another chip of SG: 2e14 + 2e14 > 3e14
        ledger.issue_license(_record(b, 1, (SG, QUOTA)), expected_latest=0, now_s=NOW_S)
    assert refused.value.scope == "partner"
    assert ledger.partner_status(SG) == (FLOPS, 1)
    # nothing of the refused licence stayed: not in the ledger, not charged to the delegation
    assert ledger.license_records(b) == []
    assert ledger.delegation_status(1).issued[0] == FLOPS  # type: ignore[union-attr]
    # a home chip is not charged to any partner
    ledger.issue_license(_record(b, 1, None), expected_latest=0, now_s=NOW_S)
    store.close()
    again = LicenseLedger(reopen().db)
    assert again.partner_status(SG) == (FLOPS, 1) and again.partner_status("authority.th") == (0, 0)
    with pytest.raises(QuotaExceeded):  # after a restart the quota still holds
        again.issue_license(_record(a, 2, (SG, QUOTA)), expected_latest=1, now_s=NOW_S)
    assert again.issue_license(_record(a, 2, (SG, 2 * QUOTA)), expected_latest=1, now_s=NOW_S)


def test_the_issuer_does_not_license_chips_the_agreement_does_not_let_it(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "v.db"), verifier_id="kl-1")
    token, _ = _delegation()
    issuer = LicenseIssuer(identity=W.verifiers["kl-1"], anchors=W.anchors,
                           delegation_token=token, ledger=LicenseLedger(store.db, audit=store),
                           policy=LicensingPolicy(budgets=Budgets(FLOPS)))  # fmt: skip
    state = LicenseState(serial=0, remaining_flops=0, chip_time_s=100)

    def renew(ueid: bytes, **view: Any) -> RenewalOutcome:
        seen = LedgerView(**view)
        return issuer.renew(ueid=ueid, tier=Tier.AFFIRMING, state=state, view=seen,
                            now_ms=NOW_S * 1000).outcome  # fmt: skip

    chips = [b"\x01" + bytes(15) + bytes([i]) for i in range(3)]
    assert renew(chips[0], partner=SG, partner_quota=0) is RenewalOutcome.PARTNER_NOT_LICENSABLE
    assert renew(chips[0], partner=SG, partner_quota=QUOTA) is RenewalOutcome.ISSUED
    assert renew(chips[1], partner=SG, partner_quota=QUOTA) is RenewalOutcome.PARTNER_QUOTA_EXCEEDED
    assert renew(chips[2]) is RenewalOutcome.ISSUED  # a home chip
    assert issuer.ledger.partner_status(SG) == (FLOPS, 1)
    store.close()
