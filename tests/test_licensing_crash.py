"""A chip process killed (SIGKILL) between accepting a license and adding its budget.

``attest chip apply-license`` makes the high-water serial durable, announces "accepted" and —
with the test hook ATTEST_TEST_PAUSE_AFTER_ACCEPT_S — sleeps before adding the budget; the test
kills it right there with a real signal. Whatever happens next (a reload, the same license
delivered again, a newer one), the budget is added exactly once and the high-water mark is
never lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from cli_support import CLI, HANG_TIMEOUT_S, clean_env

from attest.chip.device import Chip, fabricate
from attest.codec.cbor import decode
from attest.licensing.authority import sign_license
from attest.licensing.chip import ChipLicensing, LicensingChip
from attest.licensing.cli import PAUSE_AFTER_ACCEPT_ENV
from attest.licensing.messages import Budgets
from attest.testvectors.world import AUTHORITY_ID, BOOT_S, CERTIFIED_S, NOW_S, build_world
from attest.testvectors.world import vector_ueid as ueid_of

BUDGET = 10**15


@pytest.fixture
def chip_dir(tmp_path: Path) -> Path:
    w = build_world()
    spec = w.chips["hx100-a"]
    chip = fabricate(
        w.manufacturers[spec.manufacturer],
        w.anchors,
        hwmodel=spec.hwmodel,
        pod_class=spec.pod_class,
        now_s=CERTIFIED_S,
        firmware_version=spec.firmware,
        ueid=ueid_of("hx100-a"),
        device_key=w.device_key("hx100-a"),
        state_dir=tmp_path / "chip",
        parts={"licensing": ChipLicensing()},
    )
    chip.boot(BOOT_S)
    return tmp_path / "chip"


def license_file(tmp_path: Path, serial: int, budget: int = BUDGET) -> Path:
    w = build_world()
    token = sign_license(
        w.authority.key,
        issuer=AUTHORITY_ID,
        ueid=ueid_of("hx100-a"),
        serial=serial,
        budgets=Budgets(budget),
        expiry_s=10**6,
        now_s=NOW_S,
    )
    path = tmp_path / f"license-{serial}.cose"
    path.write_bytes(token)
    return path


def apply(chip_dir: Path, lic: Path, pause_s: float = 0) -> subprocess.CompletedProcess[str]:
    env = clean_env({PAUSE_AFTER_ACCEPT_ENV: str(pause_s)} if pause_s else None)
    return subprocess.run(
        [*CLI, "chip", "apply-license", "--state", str(chip_dir), str(lic)],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
    )


def kill_after_accept(chip_dir: Path, lic: Path) -> None:
    """Run apply-license, SIGKILL it once it says the acceptance is durable."""
    proc = subprocess.Popen(
        [*CLI, "chip", "apply-license", "--state", str(chip_dir), str(lic)],
        env=clean_env({PAUSE_AFTER_ACCEPT_ENV: str(HANG_TIMEOUT_S)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the chip announces the durable accept
        assert line.startswith("accepted serial"), line + proc.stderr.read()  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=HANG_TIMEOUT_S) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=HANG_TIMEOUT_S)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def raw_license_state(chip_dir: Path) -> dict[str, object]:
    # chip state version 2 keeps each mechanism's state under "parts"
    raw = decode((chip_dir / "state.cbor").read_bytes())
    return raw["parts"]["licensing"]  # type: ignore[no-any-return]


def test_killed_between_accept_and_apply(chip_dir: Path, tmp_path: Path) -> None:
    lic = license_file(tmp_path, 1)
    kill_after_accept(chip_dir, lic)

    # On disk: the high-water mark is durable, the budget is journalled but not yet added.
    raw = raw_license_state(chip_dir)
    assert raw["serial"] == 1 and raw["pending"] is not None
    assert raw["remaining"][0] == 0 and raw["applied"][0] == 0  # type: ignore[index]

    # The same license delivered again (new process): the restart rolls the pending budget
    # forward exactly once, and the license itself is refused as a replay.
    again = apply(chip_dir, lic)
    assert again.returncode == 1 and "LICENSE_REPLAYED" in again.stdout, again
    lic = Chip.load(chip_dir).part(LicensingChip).state
    assert lic.pending is None
    assert lic.serial == 1
    assert lic.applied[0] == lic.remaining.flops == BUDGET


def test_kill_then_newer_license_adds_both_once(chip_dir: Path, tmp_path: Path) -> None:
    first = apply(chip_dir, license_file(tmp_path, 1))
    assert first.returncode == 0, first.stderr
    kill_after_accept(chip_dir, license_file(tmp_path, 2, 3 * BUDGET))
    assert raw_license_state(chip_dir)["serial"] == 2
    third = apply(chip_dir, license_file(tmp_path, 3, 5 * BUDGET))
    assert third.returncode == 0, third.stdout + third.stderr
    lic = Chip.load(chip_dir).part(LicensingChip).state
    assert lic.applied[0] == lic.remaining.flops == 9 * BUDGET
    for serial in (1, 2, 3):  # every one of them is now stale, including the interrupted one
        assert apply(chip_dir, license_file(tmp_path, serial)).returncode == 1
    assert Chip.load(chip_dir).part(LicensingChip).state == lic


def test_repeated_kills_never_double_apply(chip_dir: Path, tmp_path: Path) -> None:
    """Every delivery is killed after its accept; each next process rolls the last one forward."""
    for serial in (1, 2, 3, 4):
        kill_after_accept(chip_dir, license_file(tmp_path, serial, serial * BUDGET))
        assert raw_license_state(chip_dir)["serial"] == serial  # never lost
    lic = Chip.load(chip_dir).part(LicensingChip).state
    assert lic.serial == 4
    assert lic.applied[0] == lic.remaining.flops == 10 * BUDGET
