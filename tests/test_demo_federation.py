"""The demo's federation section: four 3-of-5 committees, a 3-of-4 agreement, a Singapore chip
affirmed in Johor by the Malaysian node, a Thai relying party, a roaming licence, and every
federation attack caught with its reason (SPEC Appendix B)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from attest.demo.federation import SECTION
from attest.demo.sections import SECTION_MODULES
from attest.demo.world import create_world


@pytest.fixture(scope="module")
def section(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = create_world()
    world.workdir = tmp_path_factory.mktemp("demo-federation")
    result = trio.run(SECTION.run, world, [])
    return {"summary": result.summary, "attacks": result.attacks, "ok": result.ok,
            "errors": result.errors, "verdicts": result.verdicts}  # fmt: skip


def test_every_federation_attack_is_caught_with_its_reason(section: dict[str, Any]) -> None:
    assert "attest.demo.federation" in SECTION_MODULES
    assert section["ok"] and not section["errors"], section["errors"]
    caught = {a["name"]: a for a in section["attacks"]}
    assert {name: a["expected_reason"] for name, a in caught.items()} == {
        "federation-licence-2-of-5": "ACT_TOO_FEW_SIGNATURES",
        "federation-agreement-2-of-4": "ACT_TOO_FEW_SIGNATURES",
        "federation-agreement-rollback": "AGREEMENT_STALE",
        "federation-rotated-out-officer": "ACT_UNKNOWN_OFFICER",
        "federation-non-member": "AUTHORITY_NOT_RECOGNISED",
        "federation-partner-quota-overrun": "LICENSE_PARTNER_QUOTA_EXCEEDED",
    }
    for a in caught.values():
        assert a["detected"] and a["expected_reason"] in a["reasons"], a
    # the chip and the restarted node both refuse the rollback and keep agreement #2
    assert caught["federation-agreement-rollback"]["reasons"] == ["AGREEMENT_STALE"] * 2
    # the issuing node renews no more (its ledger), and the chip refuses a pushed licence
    assert caught["federation-partner-quota-overrun"]["reasons"] == [
        "node: partner_quota_exceeded",
        "LICENSE_PARTNER_QUOTA_EXCEEDED",
    ]
    for name in ("federation-rotated-out-officer", "federation-non-member"):
        assert caught[name]["verdict"] == "contraindicated"
        assert "CERT_CHAIN_INVALID" in caught[name]["reasons"]


def test_the_honest_story(section: dict[str, Any]) -> None:
    rows = {r["scene"]: r for r in section["summary"]["table"]}
    assert rows["SG chip attests in Johor"]["outcome"] == "affirming"
    assert rows["Thai relying party"]["outcome"] == "accepted (affirming)"
    assert rows["Indonesian relying party"]["outcome"] == "refused"
    assert rows["Indonesian relying party"]["note"] == "AUTHORITY_NOT_RECOGNISED"
    assert rows["roaming licence"]["outcome"] == "issued and applied serial 1"
    assert rows["roaming licence"]["note"].startswith("2e+14 of partner quota 3e+14")
    assert rows["agreement on the chip"]["outcome"] == "agreement #2 in force"
    assert section["verdicts"] == {"affirming": 2, "contraindicated": 2}
    assert [a["country"] for a in section["summary"]["authorities"]] == ["MY", "SG", "TH", "ID"]


def test_the_section_is_small(section: dict[str, Any], tmp_path: Path) -> None:
    del tmp_path
    assert section["summary"]["seconds"] < 60  # a bound against hangs, not a speed claim
