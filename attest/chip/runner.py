"""Trio driver for simulated chips: connect to a verifier and attest, one or many rounds.

The chip's workload meters advance with real elapsed time (at ``share`` of the model's peak)
between rounds, so the verifier's rate check sees realistic growth.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from attest.chip.device import Chip
from attest.errors import AttestError, ChipRefusal
from attest.mechanism import Grant
from attest.messages.attestation import AttestationResult, Challenge
from attest.net import receive_event, send_event
from attest.protocol.connection import Connection
from attest.protocol.events import (
    PROTOCOL_VERSION,
    Bye,
    ChallengeFrame,
    Error,
    ErrorCode,
    EvidenceFrame,
    Hello,
    Next,
    Ping,
    Pong,
    ResultFrame,
)
from attest.protocol.machine import Role


class VerifierRefused(AttestError):
    """The verifier ended the session with an ERROR frame (overload, shutdown, timeout ...)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"verifier sent ERROR {code}: {text}")
        self.code = code


log = logging.getLogger("attest.chip")
#: how long a refusing chip tries to deliver its ERROR before it closes anyway
_REFUSAL_SEND_S = 2.0

#: (chip, verified challenge, now in seconds) → evidence token
EvidenceMaker = Callable[[Chip, Challenge, float], bytes]
#: (chip, PING nonce, landmark id) → PingResponse token
PingAnswerer = Callable[[Chip, bytes, str], bytes]


@dataclass(frozen=True, slots=True)
class GrantOutcome:
    """What became of a grant a RESULT carried (a renewed licence ...)."""

    grant: Grant
    #: the chip's refusal name, or None if a part took it
    refusal: str | None
    #: the taking part's one-line account (e.g. "licence serial 3 applied"), if taken
    taken: str | None = None


#: sees each grant a RESULT carried, and what the chip did with it
GrantCallback = Callable[[GrantOutcome], None]
#: sees each verified result with its token as received and the round's verifier certificate
TokenCallback = Callable[[AttestationResult, bytes, bytes], None]


@dataclass
class Workload:
    """Drives a chip's meters from wall time: ``share`` of peak since the last step."""

    share: float = 0.5
    last_s: float | None = None

    def step(self, chip: Chip, now_s: float) -> None:
        if self.last_s is not None:
            chip.run_workload(max(0.0, now_s - self.last_s), self.share)
        self.last_s = now_s


async def attest(
    chip: Chip,
    host: str,
    port: int,
    *,
    rounds: int = 1,
    interval_s: float = 0.0,
    workload: Workload | None = None,
    timeout_s: float = 30.0,
    make_evidence: EvidenceMaker | None = None,
    on_result: Callable[[AttestationResult], None] | None = None,
    on_grant: GrantCallback | None = None,
    on_token: TokenCallback | None = None,
    answer_ping: PingAnswerer | None = None,
    stream: trio.abc.Stream | None = None,
) -> list[AttestationResult]:
    """Open one connection and run ``rounds`` attestation exchanges on it (keep-alive).

    ``make_evidence`` replaces the honest ``chip.answer`` and ``answer_ping`` the honest
    ``chip.answer_ping`` (attack simulations and tests). PINGs between EVIDENCE and RESULT are
    answered at once, each with a PONG. ``stream`` replaces the TCP connection to
    ``host:port`` (the network simulation of attest.location.sim passes its own).
    ``on_result`` sees each verified result as it arrives, so a caller keeps the results of
    a session that later fails or is cancelled (the returned list is lost with the exception);
    ``on_token`` sees it too, with the signed token as received and the verifier certificate
    it verified under (what a relying party needs to check it again: ``attest chip run --out``).
    A grant in a RESULT (a renewed licence) goes to the chip after the result checks out; a
    refused grant is logged and reported to ``on_grant``, never raised.
    """
    answer = make_evidence or Chip.answer
    respond = answer_ping or Chip.answer_ping
    workload = workload or Workload()
    results: list[AttestationResult] = []
    with trio.fail_after(timeout_s + rounds * interval_s):
        if stream is None:
            stream = await trio.open_tcp_stream(host, port)  # trio sets TCP_NODELAY
        async with stream:
            conn = Connection(Role.CHIP)
            await send_event(
                stream,
                conn,
                Hello((PROTOCOL_VERSION,), chip.chain.device_cert, chip.chain.manufacturer_cert),
            )
            for i in range(rounds):
                frame = await _expect(stream, conn, ChallengeFrame)
                now = time.time()
                try:
                    challenge = chip.accept_challenge(
                        frame.verifier_cert, frame.challenge, int(now)
                    )
                except ChipRefusal as exc:  # tell the verifier which check failed (§7.10)
                    with trio.move_on_after(_REFUSAL_SEND_S):
                        await send_event(stream, conn, Error(ErrorCode.REFUSED, str(exc)[:256]))
                    raise
                workload.step(chip, now)
                await send_event(stream, conn, EvidenceFrame(answer(chip, challenge, now)))
                reply = await _result(stream, conn, chip, challenge, respond)
                results.append(chip.check_result(frame.verifier_cert, reply.result, challenge))
                if on_result is not None:
                    on_result(results[-1])
                if on_token is not None:
                    on_token(results[-1], reply.result, frame.verifier_cert)
                # a diagnostic result (it names no chip, §7.12) carries nothing for the chip
                if reply.grant is not None and results[-1].ueid == chip.ueid:
                    outcome = apply_grant(chip, Grant(*reply.grant), challenge)
                    if on_grant is not None:
                        on_grant(outcome)
                if i + 1 < rounds:
                    if interval_s:
                        await trio.sleep(interval_s)
                    await send_event(stream, conn, Next())
            await send_event(stream, conn, Bye())
    return results


def apply_grant(chip: Chip, grant: Grant, challenge: Challenge) -> GrantOutcome:
    """Let the chip judge a grant from this round (refusals are logged, never raised)."""
    try:
        taken = chip.accept_grant(grant, session_nonce=challenge.nonce, now_s=time.time())
    except ChipRefusal as exc:
        log.warning("grant refused: %s", exc, extra={"fields": {"ueid": chip.ueid.hex()}})
        return GrantOutcome(grant, exc.reason)
    return GrantOutcome(grant, None, taken)


async def _result(
    stream: trio.abc.Stream,
    conn: Connection,
    chip: Chip,
    challenge: Challenge,
    respond: PingAnswerer,
) -> ResultFrame:
    """Wait for this round's RESULT, answering each PING before it at once (SPEC §7.6)."""
    while True:
        event = await _expect(stream, conn, (ResultFrame, Ping))
        if isinstance(event, ResultFrame):
            return event
        await send_event(stream, conn, Pong(respond(chip, event.nonce, challenge.verifier_id)))


async def _expect(stream: trio.abc.Stream, conn: Connection, kind: type | tuple[type, ...]):  # type: ignore[no-untyped-def]
    event = await receive_event(stream, conn)
    if isinstance(event, Error):
        raise VerifierRefused(event.code, event.text)
    if not isinstance(event, kind):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise AttestError(f"verifier closed the session (expected {names})")
    return event
