"""A chip's link table: which peers get full bandwidth, which are capped, and what it refused.

The table is the chip's local enforcement point. A link runs at the model's peak interconnect
bandwidth only after a handshake round ended FULL, and only until its re-verification is
overdue: :meth:`LinkTable.due` lists full links to re-verify, and :meth:`LinkTable.expire` drops
those whose last successful verification is older than ``reverify_s + grace_s`` to the cap
(so a peer that stops answering, or whose re-verification fails, loses full bandwidth). Every
other peer gets ``cap_bps`` (default 1 GB/s against ~900 GB/s peak).

Refusals are kept in a bounded log; those backed by the peer's signed acceptance of a link
across certificates are what :meth:`LinkTable.report` hands to Evidence, so that the chip's
honest refusals become a detection signal at the verifier. The table reads no clock: every
method takes the chip's time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from attest.pods.link import LinkOutcome
from attest.pods.messages import MAX_LINK_REFUSALS, MAX_LINKS
from attest.pods.names import Refusal

#: bandwidth of a link to anyone but a verified pod member: 1 GB/s (DESIGN.md §6)
DEFAULT_CAP_BPS = 10**9
#: how often a full link is re-verified, and how late a re-verification may be before it drops
DEFAULT_REVERIFY_S = 60.0
DEFAULT_GRACE_S = 30.0
#: how long a refusal stays in the reported window
DEFAULT_REFUSAL_WINDOW_S = 3600.0
#: refusals kept in the local log
REFUSAL_LOG = 256


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """The state of one link (one cable, one port) and the peer at its other end."""

    port: int
    peer: bytes | None
    full: bool
    #: bytes per second this link may carry now
    bandwidth_bps: int
    #: chip time the current state began
    since_s: float
    #: chip time of the last successful (FULL) handshake round, None if never
    verified_s: float | None
    #: why it is capped (a refusal name), None while full
    reason: str | None = None
    session_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class RefusalRecord:
    """One refused handshake round."""

    #: the peer's claimed UEID (authenticated only if ``authenticated``)
    peer: bytes | None
    reason: str
    at_s: float
    by_peer: bool
    authenticated: bool
    #: the peer's signed acceptance of a cross-certificate link (reported to the verifier)
    evidence: bytes | None = None


class LinkTable:
    """Full versus capped links of one chip, with re-verification deadlines and a refusal log.

    Links are keyed by *port* (one per stream, from :meth:`open_port`), not by the peer's
    claimed UEID: a stranger claiming a member's UEID on another cable can fail its own
    handshake, but never downgrade the member's genuine link.
    """

    def __init__(
        self,
        *,
        peak_bps: int,
        cap_bps: int = DEFAULT_CAP_BPS,
        reverify_s: float = DEFAULT_REVERIFY_S,
        grace_s: float = DEFAULT_GRACE_S,
        refusal_window_s: float = DEFAULT_REFUSAL_WINDOW_S,
    ) -> None:
        if cap_bps < 0 or peak_bps < 0 or reverify_s <= 0 or grace_s < 0:
            raise ValueError("bandwidths must be >= 0, reverify_s > 0 and grace_s >= 0")
        self.peak_bps = peak_bps
        self.cap_bps = cap_bps
        self.reverify_s = reverify_s
        self.grace_s = grace_s
        self.refusal_window_s = refusal_window_s
        self._links: dict[int, LinkRecord] = {}
        self._next_port = 1
        self.refusals: deque[RefusalRecord] = deque(maxlen=REFUSAL_LOG)

    # -- reading ---------------------------------------------------------------------------
    @property
    def capped_bps(self) -> int:
        """Bandwidth of a capped link (never more than the silicon can do)."""
        return min(self.cap_bps, self.peak_bps)

    def open_port(self) -> int:
        """A fresh port number for a new stream (a cable); it starts capped."""
        port, self._next_port = self._next_port, self._next_port + 1
        return port

    def get(self, port: int) -> LinkRecord | None:
        return self._links.get(port)

    def records(self) -> list[LinkRecord]:
        return [self._links[p] for p in sorted(self._links)]

    def full_peers(self) -> tuple[bytes, ...]:
        """Peers with a live full-bandwidth link, sorted and distinct (what Evidence reports)."""
        return tuple(sorted({r.peer for r in self._links.values() if r.full and r.peer}))

    def bandwidth(self, port: int) -> int:
        """Bytes per second the link on ``port`` may carry (the cap for unknown ports)."""
        rec = self._links.get(port)
        return rec.bandwidth_bps if rec is not None else self.capped_bps

    def peer_bandwidth(self, peer: bytes) -> int:
        """The best bandwidth any link to ``peer`` may carry now."""
        rates = [r.bandwidth_bps for r in self._links.values() if r.peer == peer]
        return max(rates, default=self.capped_bps)

    def due(self, now_s: float) -> list[int]:
        """Ports of full links whose periodic re-verification is due."""
        return sorted(
            p
            for p, rec in self._links.items()
            if rec.full and (rec.verified_s is None or now_s - rec.verified_s >= self.reverify_s)
        )

    # -- changing --------------------------------------------------------------------------
    def apply(self, outcome: LinkOutcome, now_s: float, *, port: int) -> LinkRecord:
        """Record how a handshake round on ``port`` ended; returns the port's new record."""
        if not outcome.full:
            self.refusals.append(
                RefusalRecord(
                    outcome.peer,
                    str(outcome.refusal or Refusal.LINK_PROTOCOL_ERROR),
                    now_s,
                    outcome.refusal is Refusal.LINK_PEER_REFUSED,
                    outcome.authenticated,
                    outcome.evidence,
                )
            )
        old = self._links.get(port)
        if outcome.full:
            since = old.since_s if old is not None and old.full else now_s
            rec = LinkRecord(
                port, outcome.peer, True, self.peak_bps, since, now_s, None, outcome.session_key
            )
        else:
            rec = self._capped(port, outcome.peer, str(outcome.refusal), now_s)
        self._links[port] = rec
        return rec

    def _capped(self, port: int, peer: bytes | None, reason: str, now_s: float) -> LinkRecord:
        old = self._links.get(port)
        since = old.since_s if old is not None and not old.full else now_s
        verified = old.verified_s if old is not None else None
        return LinkRecord(port, peer, False, self.capped_bps, since, verified, reason)

    def drop(self, port: int, reason: str, now_s: float) -> None:
        """Cap the link on ``port`` (e.g. its stream broke)."""
        rec = self._links.get(port)
        if rec is not None and rec.full:
            self._links[port] = self._capped(port, rec.peer, reason, now_s)

    def drop_all(self, reason: str, now_s: float) -> None:
        """Cap every full link (the chip's pod certificate changed)."""
        for port in list(self._links):
            self.drop(port, reason, now_s)

    def close_port(self, port: int) -> None:
        """Forget a port whose stream (cable) is gone."""
        self._links.pop(port, None)

    def expire(self, now_s: float) -> list[int]:
        """Cap full links whose re-verification is overdue; return their ports."""
        late = [
            p
            for p, rec in self._links.items()
            if rec.full
            and (rec.verified_s is None or now_s - rec.verified_s > self.reverify_s + self.grace_s)
        ]
        for port in late:
            self.drop(port, str(Refusal.LINK_EXPIRED), now_s)
        return sorted(late)

    # -- reporting -------------------------------------------------------------------------
    def report(self, now_s: float) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """(live full links, refusal evidence tokens) for the chip's next Evidence.

        Evidence holds the newest distinct refusal proofs from the reporting window, at most
        MAX_LINK_REFUSALS of them; links beyond MAX_LINKS are not reported (a chip never has
        that many cables).
        """
        links = self.full_peers()[:MAX_LINKS]
        proofs: list[bytes] = []
        for rec in reversed(self.refusals):
            if now_s - rec.at_s > self.refusal_window_s:
                break
            if rec.evidence is not None and rec.evidence not in proofs:
                proofs.append(rec.evidence)
                if len(proofs) == MAX_LINK_REFUSALS:
                    break
        return links, tuple(reversed(proofs))
