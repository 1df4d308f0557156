"""Licensing guard rails for operators: importing the authority's offline licences, the start-up
count of chips whose serials the ledger does not know, and a budget larger than the quota.

The whole story runs as an operator would run it: real daemons, real chip processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Cli, World, make_world, serve

from attest.errors import ConfigError
from attest.licensing.messages import Budgets
from attest.licensing.verifier import LicensingSection, check_budgets

LICENSING = {"ATTEST_LICENSING_ENABLED": "true", "ATTEST_LICENSING_BUDGET_FLOPS": "10000000000000"}


def _licensed_chip(cli: Cli, world: World, tmp_path: Path, folder: Path) -> Path:
    """A chip holding a licence the authority issued offline, its file kept in ``folder``."""
    chip = tmp_path / "chip"
    cli.ok("chip", "fabricate", "--manufacturer", world.manufacturer, "--model", "HX100",
           "--state", chip)  # fmt: skip
    cli.ok("chip", "license-request", "--state", chip, "--out", tmp_path / "req.json")
    folder.mkdir()
    lic = folder / "chip-1.cose"
    cli.ok("license", "issue", "--authority", world.authority, "--request", tmp_path / "req.json",
           "--flops", "1e15", "--out", lic)  # fmt: skip
    cli.ok("chip", "apply-license", "--state", chip, lic)
    return chip


def _attest(cli: Cli, port: int, chip: Path) -> tuple[int, str]:
    run = cli.run("chip", "run", "--verifier", f"127.0.0.1:{port}", "--state", chip,
                  "--rounds", "1", "--interval", "0")  # fmt: skip
    return run.returncode, run.stdout


def _start_lines(log: Path) -> list[dict[str, object]]:
    return [
        doc
        for doc in map(json.loads, log.read_text().splitlines())
        if doc.get("event") == "licensing"
    ]


def test_import_records_offline_licences_and_start_up_counts_the_unknown(
    cli: Cli, tmp_path: Path
) -> None:
    world = make_world(cli, tmp_path)
    cli.ok("authority", "delegate", "--dir", world.authority, "--verifier", world.verifier,
           "--region", "MY-KL", "--quota-flops", "1e15")  # fmt: skip
    licences = tmp_path / "licences"
    chip = _licensed_chip(cli, world, tmp_path, licences)

    # licensing enabled before the licences are imported: the honest chip is contraindicated
    with serve(world, env=LICENSING, name="before") as daemon:
        (line,) = _start_lines(daemon.log)
        assert line["level"] == "INFO" and line["chips_serial_unknown"] == 0
        code, out = _attest(cli, daemon.port, chip)
        assert code == 1 and "LICENSE_SERIAL_UNKNOWN" in out
        assert daemon.stop() == 0
    # the next start says how many chips report serials the ledger does not know
    with serve(world, env=LICENSING, name="again") as daemon:
        (line,) = _start_lines(daemon.log)
        assert line["level"] == "WARNING" and line["chips_serial_unknown"] == 1
        assert "attest license import DIR" in str(line["msg"])
        assert daemon.stop() == 0

    # a folder as the authority hands it over: licences, and other files that are skipped
    (licences / "README.txt").write_text("licences for site 3\n")
    out = cli.ok("license", "import", "--config", world.config, licences)
    assert out.endswith("imported 1 license(s) from " + str(licences) + "; 0 already recorded, "
                        "0 refused, 1 other file(s) skipped\n")  # fmt: skip
    again = cli.ok("license", "import", "--config", world.config, licences)  # idempotent
    assert "imported 0 license(s)" in again and "1 already recorded" in again

    with serve(world, env=LICENSING, name="after") as daemon:
        code, out = _attest(cli, daemon.port, chip)
        assert code == 0 and "LICENSE_SERIAL_UNKNOWN" not in out
        assert daemon.stop() == 0
    status = json.loads(cli.ok("license", "status", "--config", world.config, "--json"))
    assert status["ledgerEntries"] >= 1


def test_import_verifies_each_licence_first(cli: Cli, tmp_path: Path) -> None:
    world = make_world(cli, tmp_path)
    other = tmp_path / "other-authority"
    cli.ok("authority", "init", "--dir", other, "--id", "authority.test")  # same name, other key
    folder = tmp_path / "licences"
    cli.ok("license", "issue", "--authority", other, "--ueid", "01" + "ab" * 16,
           "--chip-time-s", "0", "--flops", "1000", "--out", folder / "forged.cose")  # fmt: skip
    proc = cli.run("license", "import", "--config", world.config, folder)
    assert proc.returncode == 1
    assert "forged.cose: NOT recorded" in proc.stderr
    assert "0 license(s)" in proc.stdout and "1 refused" in proc.stdout
    status = json.loads(cli.ok("license", "status", "--config", world.config, "--json"))
    assert status["ledgerEntries"] == 0


def test_a_budget_above_the_delegated_quota_is_refused_at_start(cli: Cli, tmp_path: Path) -> None:
    world = make_world(cli, tmp_path)
    cli.ok("authority", "delegate", "--dir", world.authority, "--verifier", world.verifier,
           "--region", "MY-KL", "--quota-flops", "1e16")  # fmt: skip
    # the default budget_flops (10^18) with a 10^16 quota: no renewal could ever succeed
    proc = cli.run(
        "verifier", "serve", "--config", world.config, env={"ATTEST_LICENSING_ENABLED": "1"}
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "licensing.budget_flops = 1000000000000000000 exceeds the quota" in proc.stderr
    assert "(10000000000000000)" in proc.stderr


@pytest.mark.parametrize(
    ("section", "quota", "refused"),
    [
        (LicensingSection(budget_flops=10), Budgets(10), None),
        (LicensingSection(budget_flops=11), Budgets(10), "budget_flops"),
        (LicensingSection(budget_flops=1, budget_energy_mj=5), Budgets(10, 4), "budget_energy_mj"),
        (LicensingSection(budget_flops=1, budget_energy_mj=5), Budgets(10), None),  # unmetered
        (LicensingSection(budget_flops=1, budget_interconnect_bytes=9), Budgets(10, None, 8),
         "budget_interconnect_bytes"),
    ],
)  # fmt: skip
def test_check_budgets(section: LicensingSection, quota: Budgets, refused: str | None) -> None:
    if refused is None:
        check_budgets(section, quota, Path("d.cose"))
    else:
        with pytest.raises(ConfigError, match=f"licensing.{refused} = "):
            check_budgets(section, quota, Path("d.cose"))


@pytest.fixture
def cli() -> Cli:
    return Cli()
