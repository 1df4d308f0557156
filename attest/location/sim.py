"""Network simulation: chips at real coordinates behind links with the delay geography implies.

One-way delay over a link of geodesic length ``d``::

    d x stretch / fibre_speed  +  jitter (exponential, per trip)

and the chip adds its processing time before each answer. The defaults: light in fibre
200 km/ms (about 2c/3), paths 1.5 times the geodesic (cables follow coasts and roads), mean
jitter 50 us per trip, processing 50 us (the fastest the simulated hardware signs). Delay only
ever *adds* to the light-speed time, which is why the bounds stay sound whatever the model.

:class:`SlowStream` applies a link's delay to one end of a trio stream (memory streams for
tests on trio's MockClock, or a real TCP connection for the demo and the end-to-end tests: both
directions are delayed at the chip's end, which is what the landmark's clock sees).
:func:`relay` forwards bytes between two streams, for the attack where a box near a landmark
passes PINGs on to the far chip that holds the key: it can only add its own leg.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio
import trio.testing

from attest.location.geometry import Place, geodesic_m


@dataclass(frozen=True, slots=True)
class PathModel:
    """How the simulation turns distance into delay (see the module doc)."""

    fibre_km_per_ms: float = 200.0
    stretch: float = 1.5
    jitter_mean_ns: int = 50_000
    processing_ns: int = 50_000

    def one_way_ns(self, distance_m: float) -> int:
        """The deterministic part of one trip over ``distance_m`` (geodesic)."""
        return round(distance_m * self.stretch * 1000 / self.fibre_km_per_ms)  # km/ms = m/us

    def jitter_ns(self, rng: random.Random) -> int:
        return round(rng.expovariate(1 / self.jitter_mean_ns)) if self.jitter_mean_ns else 0

    def rtt_ns(self, a: Place, b: Place, rng: random.Random | None = None) -> int:
        """One round trip between ``a`` and ``b`` including the chip's processing."""
        jitter = 0 if rng is None else self.jitter_ns(rng) + self.jitter_ns(rng)
        return 2 * self.one_way_ns(geodesic_m(a, b)) + self.processing_ns + jitter


#: below this a real-time wait spins instead of sleeping (the kernel's timers are coarser)
_SPIN_S = 0.002


async def wait(seconds: float) -> None:
    """Wait ``seconds``: exactly on trio's MockClock; on the real clock, sleep for the bulk and
    spin (yielding to other tasks) for the last two milliseconds, since a kernel timer may
    overshoot a sub-millisecond wait by a millisecond (150 km of light)."""
    if seconds <= 0:
        return
    if isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        await trio.sleep(seconds)
        return
    deadline = time.perf_counter() + seconds
    if seconds > _SPIN_S:
        await trio.sleep(seconds - _SPIN_S)
    while time.perf_counter() < deadline:
        await trio.lowlevel.checkpoint()


class SlowStream(trio.abc.Stream):
    """A stream whose every send and every receive waits one simulated trip first.

    Wraps the chip's end: a frame from the landmark reaches the chip one trip after the
    landmark wrote it, and the chip's answer reaches the landmark one trip after the chip wrote
    it. ``processing_ns`` is added before each send (the chip's work, as the model has it).
    """

    def __init__(
        self,
        inner: trio.abc.Stream,
        trip_ns: Callable[[], int],
        *,
        processing_ns: int = 0,
    ) -> None:
        self.inner = inner
        self.trip_ns = trip_ns
        self.processing_ns = processing_ns

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await wait((self.processing_ns + self.trip_ns()) / 1e9)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        if data:
            await wait(self.trip_ns() / 1e9)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


def link(
    inner: trio.abc.Stream,
    a: Place,
    b: Place,
    model: PathModel,
    rng: random.Random,
    *,
    chip_end: bool = True,
) -> SlowStream:
    """The simulated link between ``a`` and ``b`` on ``inner`` (the chip's end if
    ``chip_end``: its answers also take the model's processing time)."""
    base = model.one_way_ns(geodesic_m(a, b))
    return SlowStream(
        inner,
        lambda: base + model.jitter_ns(rng),
        processing_ns=model.processing_ns if chip_end else 0,
    )


async def relay(a: trio.abc.Stream, b: trio.abc.Stream) -> None:
    """Forward bytes both ways between ``a`` and ``b`` until either side closes."""

    async def pump(src: trio.abc.Stream, dst: trio.abc.Stream) -> None:
        try:
            while data := await src.receive_some(65536):
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            with trio.CancelScope(shield=True):
                await dst.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump, a, b)
        nursery.start_soon(pump, b, a)
