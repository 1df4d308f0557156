"""Trio driver for chip-to-chip links: run link handshakes over real byte streams.

All decisions are in :mod:`attest.pods.link`; this module only moves bytes between a stream and
a :class:`~attest.pods.link.LinkEndpoint`, feeds it the chip's time, and records each round's
outcome in the chip's :class:`~attest.pods.links.LinkTable` under the stream's port.

* the side that opens the stream is the initiator: :func:`open_link` connects and runs the first
  round; :meth:`LinkSession.reverify` runs another on the same stream (periodic re-verification,
  see :func:`maintain_links`);
* the side that accepts is the responder: :func:`serve_link` answers every round on a stream
  until it closes; :func:`listen_links` accepts cables on a TCP port.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import trio

from attest.errors import AttestError, RemoteProtocolError
from attest.net import RECEIVE_BYTES
from attest.pods.chip import PodsChip
from attest.pods.link import LinkEndpoint, LinkOutcome, LinkRole, LinkState
from attest.pods.names import Refusal


class Chip(Protocol):
    """A chip with a Fixed Set part (attest.chip.device.Chip)."""

    def part(self, kind: type[PodsChip], /) -> PodsChip: ...


Clock = Callable[[], float]
Random = Callable[[int], bytes]
#: how long one handshake round may take before the initiator gives up (link stays capped)
ROUND_TIMEOUT_S = 10.0


class LinkClosed(AttestError):
    """The stream ended before the handshake round finished."""


async def _pump(
    stream: trio.abc.Stream, ep: LinkEndpoint, clock: Clock
) -> tuple[LinkOutcome | None, bool]:
    """Move bytes until a round ends or the stream closes: (outcome or None, stream open)."""
    while not ep.outcomes:
        try:
            data = bytes(await stream.receive_some(RECEIVE_BYTES))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        try:
            out = ep.receive_data(data, int(clock()))
        except RemoteProtocolError:
            return (ep.outcomes.pop(0) if ep.outcomes else None), False
        if out:
            try:
                await stream.send_all(out)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return (ep.outcomes.pop(0) if ep.outcomes else None), False
        if not data or ep.state is LinkState.CLOSED:
            return (ep.outcomes.pop(0) if ep.outcomes else None), False
    return ep.outcomes.pop(0), True


class LinkSession:
    """The initiator's end of one link (one stream): first round, then re-verifications."""

    def __init__(
        self, chip: Chip, stream: trio.abc.Stream, *, clock: Clock, random: Random
    ) -> None:
        self.chip = chip
        self.pods = chip.part(PodsChip)
        self.stream = stream
        self.clock = clock
        self.port = self.pods.links.open_port()
        self.endpoint = LinkEndpoint(LinkRole.INITIATOR, self.pods.link_context, random)
        self.open = True

    @property
    def full(self) -> bool:
        rec = self.pods.links.get(self.port)
        return rec is not None and rec.full

    async def handshake(self, timeout_s: float = ROUND_TIMEOUT_S) -> LinkOutcome:
        """Run one round (the first, a re-verification or a retry) and record its outcome."""
        if not self.open:
            raise LinkClosed("the link's stream is closed")
        outcome: LinkOutcome | None = None
        with trio.move_on_after(timeout_s):
            await self.stream.send_all(self.endpoint.initiate())
            outcome, self.open = await _pump(self.stream, self.endpoint, self.clock)
        if outcome is None:  # timed out or the stream ended mid-round: no full link
            outcome = LinkOutcome(None, False, Refusal.LINK_PROTOCOL_ERROR)
            self.open = False
        self.pods.links.apply(outcome, self.clock(), port=self.port)
        return outcome

    reverify = handshake

    async def aclose(self) -> None:
        """Say BYE if between rounds, close the stream, and forget the port."""
        if self.open:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                bye = self.endpoint.close()
                if bye:
                    await self.stream.send_all(bye)
        self.open = False
        await self.stream.aclose()
        self.pods.links.close_port(self.port)


async def open_link(
    chip: Chip,
    host: str,
    port: int,
    *,
    clock: Clock = time.time,
    random: Random = os.urandom,
    timeout_s: float = ROUND_TIMEOUT_S,
) -> LinkSession:
    """Connect ``chip`` to the link port of another chip and run the first handshake round.

    The session is returned whatever the outcome (a refused link stays up, capped); check
    ``session.full`` or the returned round outcome in ``chip.links``.
    """
    stream = await trio.open_tcp_stream(host, port)
    session = LinkSession(chip, stream, clock=clock, random=random)
    await session.handshake(timeout_s)
    return session


async def serve_link(
    chip: Chip,
    stream: trio.abc.Stream,
    *,
    clock: Clock = time.time,
    random: Random = os.urandom,
    on_outcome: Callable[[LinkOutcome], None] | None = None,
) -> None:
    """Answer every handshake round on ``stream`` as the responder, until it closes."""
    pods = chip.part(PodsChip)
    port = pods.links.open_port()
    ep = LinkEndpoint(LinkRole.RESPONDER, pods.link_context, random)
    try:
        is_open = True
        while is_open:
            outcome, is_open = await _pump(stream, ep, clock)
            if outcome is not None:
                pods.links.apply(outcome, clock(), port=port)
                if on_outcome is not None:
                    on_outcome(outcome)
    finally:
        pods.links.close_port(port)
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def listen_links(
    chip: Chip,
    *,
    host: str = "127.0.0.1",
    clock: Clock = time.time,
    random: Random = os.urandom,
    on_outcome: Callable[[LinkOutcome], None] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept link streams for ``chip`` on a TCP port (reported via ``task_status``)."""
    listeners = await trio.open_tcp_listeners(0, host=host)
    task_status.started(listeners[0].socket.getsockname()[1])

    async def handle(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await serve_link(chip, stream, clock=clock, random=random, on_outcome=on_outcome)

    await trio.serve_listeners(handle, listeners)


async def maintain_links(
    chip: Chip,
    sessions: Sequence[LinkSession],
    *,
    interval_s: float,
    clock: Clock = time.time,
) -> None:
    """Periodic re-verification: every ``interval_s`` re-run the rounds that are due on the
    streams this chip opened, then cap any full link (either side) whose verification is
    overdue. Runs until cancelled."""
    links = chip.part(PodsChip).links
    while True:
        await trio.sleep(interval_s)
        now = clock()
        due = set(links.due(now))
        for session in sessions:
            if session.open and session.port in due:
                await session.reverify()
        links.expire(clock())
