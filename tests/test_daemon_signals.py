"""SIGTERM on a real ``attest verifier serve`` process while a fleet of chips is attesting.

The daemon must drain and exit 0; every client must end with its results, a clean ERROR
SHUTTING_DOWN or a closed connection (never a hang); and the audit log must verify and hold
exactly the results the clients received (none lost, none invented).
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import trio
from cli_support import HANG_TIMEOUT_S, Cli, make_world, serve

from attest import files
from attest.chip.device import Chip, fabricate
from attest.chip.runner import VerifierRefused, attest
from attest.errors import AttestError, ChipRefusal
from attest.messages.attestation import AttestationResult
from attest.protocol.events import ErrorCode
from attest.verify.reasons import Tier

CHIPS = 50
#: half the fleet pauses between rounds (so it is idle at the signal), half never pauses (so
#: some of it is mid-exchange); neither could finish its rounds before the signal
ROUNDS = 10_000
INTERVAL_S = (0.05, 0.0)
DRAIN_TIMEOUT_S = 5.0


async def _client(
    chip: Chip,
    port: int,
    interval_s: float,
    received: list[AttestationResult],
    outcomes: Counter[str],
) -> None:
    try:
        await attest(
            chip,
            "127.0.0.1",
            port,
            rounds=ROUNDS,
            interval_s=interval_s,
            timeout_s=HANG_TIMEOUT_S,
            on_result=received.append,
        )
        outcomes["completed"] += 1
    except VerifierRefused as exc:
        assert exc.code == ErrorCode.SHUTTING_DOWN, exc
        outcomes["shutting_down"] += 1
    except ChipRefusal:
        raise  # a bad challenge or result is a real failure
    except AttestError as exc:
        assert "closed the session" in str(exc), exc
        outcomes["closed"] += 1
    except (trio.BrokenResourceError, ConnectionError) as exc:
        outcomes[f"reset:{type(exc).__name__}"] += 1


async def test_sigterm_drains_under_load(tmp_path: Path) -> None:
    cli = Cli()
    world = make_world(cli, tmp_path)
    manufacturer, anchors = files.load_manufacturer(world.manufacturer)
    now = int(time.time())
    chips = [
        fabricate(manufacturer, anchors, hwmodel="HX100", pod_class=8, now_s=now)
        for _ in range(CHIPS)
    ]
    for chip in chips:
        chip.boot(time.time())

    env = {"ATTEST_LIMITS_DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S), "ATTEST_LOG_FORMAT": "json"}
    received: list[AttestationResult] = []
    outcomes: Counter[str] = Counter()
    with serve(world, env) as daemon:
        with trio.fail_after(HANG_TIMEOUT_S):
            async with trio.open_nursery() as nursery:
                for i, chip in enumerate(chips):
                    interval = INTERVAL_S[i % 2]
                    nursery.start_soon(_client, chip, daemon.port, interval, received, outcomes)
                # Signal once every chip is mid-session (some in an exchange, some idle).
                while len(received) < 2 * CHIPS:
                    await trio.sleep(0.01)
                daemon.proc.send_signal(signal.SIGTERM)
        code = await trio.to_thread.run_sync(daemon.proc.wait, DRAIN_TIMEOUT_S + HANG_TIMEOUT_S)
    assert code == 0, daemon.log.read_text()

    assert sum(outcomes.values()) == CHIPS, outcomes
    assert outcomes["completed"] == 0, outcomes
    assert all(r.status == Tier.AFFIRMING for r in received)
    events = [json.loads(line) for line in daemon.log.read_text().splitlines()]
    drained = [e for e in events if e.get("event") == "drained"]
    assert drained == [drained[0]] and drained[0]["cancelled_sessions"] == 0, drained

    cert = world.verifier / "verifier.cert"
    out = cli.ok("audit", "verify", "--db", world.db, "--json", "--verifier-cert", cert)
    report = json.loads(out)
    assert report["ok"], report["problems"]
    assert report["checkpoints_verified"] >= 1
    # Honest chips are never rejected, so the log is exactly the results clients received.
    assert report["entries"] == len(received)
    shown = cli.ok("audit", "show", "--db", world.db, "--json").splitlines()
    audited = Counter(json.loads(line)["nonce"] for line in shown)
    assert audited == Counter(r.nonce.hex() for r in received)
