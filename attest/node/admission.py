"""Which connections a verifier node serves: the defence against connection-slot exhaustion.

A stranger needs no key to open a TCP connection, so the slots a node serves (``max_connections``)
are what an unauthenticated flood goes after. Three rules keep them for chips:

* **Per-address cap** (``max_connections_per_address``): an address may hold at most that many
  connections that have not *authenticated* yet; more are refused at once (ERROR OVERLOADED).
  A connection authenticates when one of its rounds concludes with Evidence whose signature
  verified under a certified device key; from then on it no longer counts against its address,
  so many genuine chips behind one NAT keep their keep-alive connections. IPv6 addresses are
  grouped by /64 (one subscriber's prefix), IPv4 addresses are taken whole.
* **HELLO deadline** (``hello_timeout_s``, much shorter than the session deadline): a chip
  speaks first, at once; a connection that has said nothing by then is closed.
* **Eviction**: when every slot is taken, a new connection evicts the *oldest* connection that
  has not sent HELLO yet (it gets ERROR OVERLOADED); only when no such connection exists is the
  newcomer refused. A flood of silent connections therefore cannot keep a chip out for longer
  than it takes the chip to send its HELLO.
* **Refusals that slow a flood down** (the server's part, attest/node/accept.py): refused
  connections are decided on in the accept loop, which takes many connections per wake-up, and
  are then kept open, unanswered, for about ``hello_timeout_s`` before they get OVERLOADED
  (while descriptors allow, see :func:`fit_to_fd_limit`). A flood that reopens every
  connection the node closes therefore neither keeps the kernel's accept queue full (a chip's
  connection would wait behind thousands) nor cycles as fast as the node can refuse.

:class:`Admission` is plain bookkeeping (no I/O, no clock), driven by the server one connection
event at a time on the trio thread. :func:`fit_to_fd_limit` checks ``max_connections`` against
the process's descriptor limit at start.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass, field

from attest.errors import ConfigError

log = logging.getLogger("attest.node")

#: descriptors a node needs besides its attestation connections: the ops endpoint's
#: connections (attest.node.http.MAX_CONNECTIONS), listeners, the store's files, logs, trio's
#: own, and connections accepted only to be refused
FD_RESERVE = 192
#: below this many attestation connections a node is not worth running: refuse to start
MIN_CONNECTIONS = 16
#: refused connections kept open at most, as a multiple of max_connections (accept.RefusalLot)
KEEP_FACTOR = 3


class Phase(enum.Enum):
    """Where a connection is on its way to being trusted with a slot."""

    #: accepted, no HELLO yet: evictable, counts against its address
    WAITING_HELLO = "waiting_hello"
    #: HELLO received, no authentic Evidence yet: counts against its address
    UNAUTHENTICATED = "unauthenticated"
    #: a round concluded with authentic Evidence: counts only against the global cap
    AUTHENTICATED = "authenticated"


@dataclass(eq=False)
class Slot:
    """One admitted connection."""

    address: str
    phase: Phase = Phase.WAITING_HELLO
    #: set when the slot was taken from this connection by a newer one
    evicted: bool = False
    #: the server's handle to end the connection (its cancel scope); opaque here
    handle: object = field(default=None, repr=False)


class Refusal(enum.Enum):
    FULL = "full"
    ADDRESS_CAP = "address_cap"


def address_key(host: str) -> str:
    """The unit a per-address cap applies to: an IPv4 address, or an IPv6 address's /64."""
    if ":" not in host:
        return host  # IPv4 as getpeername gives it (dotted quad): the address itself
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Admission:
    """Slot bookkeeping: the global cap, the per-address cap and eviction (module docstring)."""

    def __init__(self, max_connections: int, max_per_address: int) -> None:
        if max_connections < 1 or max_per_address < 1:
            raise ValueError("connection limits must be >= 1")
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self._slots: set[Slot] = set()
        #: connections still waiting for HELLO, oldest first
        self._waiting: OrderedDict[Slot, None] = OrderedDict()
        #: connections per address that have not authenticated
        self._unauthenticated: dict[str, int] = {}
        self.evictions = 0

    @property
    def open(self) -> int:
        return len(self._slots)

    @property
    def waiting_hello(self) -> int:
        return len(self._waiting)

    def unauthenticated(self, address: str) -> int:
        return self._unauthenticated.get(address, 0)

    def admit(self, address: str) -> tuple[Slot | None, Slot | None, Refusal | None]:
        """(slot, evicted, refusal) for a new connection from ``address`` (an address_key).

        Exactly one of ``slot`` and ``refusal`` is set. ``evicted`` is a slot the caller must
        end now (it has already been released here).
        """
        if self._unauthenticated.get(address, 0) >= self.max_per_address:
            return None, None, Refusal.ADDRESS_CAP
        evicted = None
        if len(self._slots) >= self.max_connections:
            if not self._waiting:
                return None, None, Refusal.FULL
            evicted, _ = self._waiting.popitem(last=False)
            evicted.evicted = True
            self.release(evicted)
            self.evictions += 1
        slot = Slot(address)
        self._slots.add(slot)
        self._waiting[slot] = None
        self._unauthenticated[address] = self._unauthenticated.get(address, 0) + 1
        return slot, evicted, None

    def hello(self, slot: Slot) -> None:
        """The connection sent HELLO: it can no longer be evicted."""
        if slot in self._slots and slot.phase is Phase.WAITING_HELLO:
            del self._waiting[slot]
            slot.phase = Phase.UNAUTHENTICATED

    def authenticated(self, slot: Slot) -> None:
        """A round concluded with authentic Evidence: stop counting against the address."""
        if slot not in self._slots or slot.phase is Phase.AUTHENTICATED:
            return
        if slot.phase is Phase.WAITING_HELLO:
            del self._waiting[slot]
        slot.phase = Phase.AUTHENTICATED
        self._uncount(slot.address)

    def release(self, slot: Slot) -> None:
        """The connection ended (idempotent)."""
        if slot not in self._slots:
            return
        self._slots.discard(slot)
        if slot.phase is not Phase.AUTHENTICATED:
            self._waiting.pop(slot, None)
            self._uncount(slot.address)

    def _uncount(self, address: str) -> None:
        n = self._unauthenticated[address] - 1
        if n:
            self._unauthenticated[address] = n
        else:
            del self._unauthenticated[address]


def fit_to_fd_limit(max_connections: int, reserve: int = FD_RESERVE) -> tuple[int, int]:
    """(connections the process can serve, descriptors left for refused connections kept open).

    A node that accepts more connections than it has file descriptors fails in ``accept``
    (EMFILE) with every slot "free": so ``max_connections + reserve`` is checked against
    RLIMIT_NOFILE at start. The soft limit is raised towards the hard limit, up to room for
    :data:`KEEP_FACTOR` times ``max_connections`` refused connections besides; if even
    ``max_connections + reserve`` does not fit, ``max_connections`` is clamped to what fits,
    with a warning naming both numbers; if not even :data:`MIN_CONNECTIONS` fit, the node
    refuses to start (ConfigError).
    """
    needed = max_connections + reserve
    keep = KEEP_FACTOR * max_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed + keep:
        target = needed + keep if hard == resource.RLIM_INFINITY else min(hard, needed + keep)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
    if soft == resource.RLIM_INFINITY:
        return max_connections, keep
    if soft >= needed:
        return max_connections, min(soft - needed, keep)
    fits = soft - reserve
    if fits < MIN_CONNECTIONS:
        raise ConfigError(
            f"limits.max_connections: the open-file limit (RLIMIT_NOFILE {soft}, hard {hard}) "
            f"leaves room for {max(fits, 0)} connections; raise it (ulimit -n, LimitNOFILE=)"
        )
    log.warning(
        "max_connections clamped to the open-file limit",
        extra={
            "fields": {
                "event": "fd_limit",
                "max_connections": max_connections,
                "serving": fits,
                "rlimit_nofile": soft,
                "rlimit_nofile_hard": hard,
                "hint": "raise the limit (ulimit -n, systemd LimitNOFILE=) or lower "
                "limits.max_connections",
            }
        },
    )
    return fits, 0
