"""Location verification end to end over real TCP: smuggling, cloning, concurrent sessions, a
relay, and TCP_NODELAY on the landmark's socket.

Landmarks are real verifier nodes on loopback (built by attest.node.app); chips are placed at
real coordinates by wrapping their TCP connection in the simulation's link delay
(attest.location.sim), so round trips are the simulated geography plus this machine's real
processing. Eight PINGs per measurement keep the real sleeps to tens of milliseconds; the
least of them rides over a busy machine's hiccups.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from attest.chip.device import Chip, fabricate
from attest.chip.runner import GrantOutcome, attest
from attest.licensing.authority import delegate
from attest.licensing.chip import ChipLicensing
from attest.licensing.messages import Budgets
from attest.licensing.verifier import LicensingSection
from attest.location.appraisal import disk_of
from attest.location.geometry import Place, geodesic_m
from attest.location.places import CITIES, sample_regions
from attest.location.reasons import LocationReason
from attest.location.sim import PathModel, link, relay
from attest.location.verifier import LocationSection, LocationVerifier
from attest.messages.attestation import AttestationResult
from attest.messages.revocation import Revocations
from attest.net import receive_event, send_event
from attest.node.app import assemble
from attest.node.server import NodeSettings, VerifierNode, ping_chip
from attest.protocol import (
    ChallengeFrame,
    Connection,
    EvidenceFrame,
    Hello,
    Ping,
    Pong,
    ResultFrame,
    Role,
)
from attest.store.sqlite import SqliteStore
from attest.testvectors.location_vectors import landmark, place_of
from attest.testvectors.world import BOOT_S, CERTIFIED_S, NOW_S, World, vector_ueid
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, Tier

MODEL = PathModel()
PINGS = 8


@dataclass
class Landmark:
    node: VerifierNode
    place: Place

    @property
    def port(self) -> int:
        assert self.node.address is not None
        return self.node.address.port

    @property
    def part(self) -> LocationVerifier:
        part = self.node.service.part(LocationVerifier)
        assert part is not None
        return part


@asynccontextmanager
async def landmarks(
    w: World,
    tmp: Path,
    names: list[str],
    *,
    shared: bool = True,
    licensing: dict[str, Path] | None = None,
    store_of: dict[str, Path] | None = None,
    later_ms: list[int] | None = None,
) -> AsyncIterator[dict[str, Landmark]]:
    """Start a landmark node per verifier id (sharing one location database if ``shared``);
    their clocks run ``later_ms[0]`` ahead of the wall clock (to let hours pass)."""
    skew = later_ms if later_ms is not None else [0]
    regions = tmp / "regions.json"
    regions.write_text(json.dumps(sample_regions()))
    out: dict[str, Landmark] = {}
    async with trio.open_nursery() as nursery:
        for name in names:
            identity = landmark(w, name.split("#")[0])
            path = (store_of or {}).get(name, tmp / f"{name}.db")
            store = SqliteStore(path, verifier_id=identity.verifier_id, group_sync=True)
            place = place_of(identity.verifier_id)
            sections: dict[str, Any] = {
                "location": LocationSection(
                    enabled=True,
                    position=f"{place.lat}, {place.lon}",
                    pings=PINGS,
                    allowance_ns=20_000,
                    regions_file=str(regions),
                    default_region="MY",
                    database=str(tmp / "shared.db") if shared else "",
                )
            }
            if licensing and name in licensing:
                sections["licensing"] = LicensingSection(
                    enabled=True, delegation_file=str(licensing[name]), budget_flops=10**14
                )
            built = assemble(
                identity=identity,
                anchors=w.anchors,
                store=store,
                policy=Policy(),
                revocations=Revocations(),
                sections=sections,
                clock_ms=lambda: time.time_ns() // 1_000_000 + skew[0],
            )
            node = VerifierNode(
                built.service, NodeSettings(http_port=-1, group_sync=True), built.metrics
            )
            await nursery.start(node.run)
            out[name] = Landmark(node, place)
        try:
            yield out
        finally:
            for lm in out.values():
                lm.node.shutdown()


async def session_from(
    chip: Chip, at: Place, lm: Landmark, *, seed: int = 1, **kwargs: Any
) -> AttestationResult:
    """One session of ``chip`` standing at ``at`` with landmark ``lm`` (simulated link delay)."""
    tcp = await trio.open_tcp_stream("127.0.0.1", lm.port)
    stream = link(tcp, at, lm.place, MODEL, random.Random(seed))
    with trio.fail_after(20):
        results = await attest(chip, "127.0.0.1", lm.port, stream=stream, **kwargs)
    return results[-1]


def newest(lm: Landmark, chip: Chip) -> Any:
    return max(lm.part.latest(chip.ueid), key=lambda s: s.record.issued_at).record


def licensed(w: World) -> Chip:
    spec = w.chips["hx100-a"]
    chip = fabricate(
        w.manufacturers[spec.manufacturer],
        w.anchors,
        hwmodel=spec.hwmodel,
        pod_class=spec.pod_class,
        now_s=CERTIFIED_S,
        firmware_version=spec.firmware,
        ueid=vector_ueid("hx100-a"),
        device_key=w.device_key("hx100-a"),
        parts={"licensing": ChipLicensing()},
    )
    chip.boot(BOOT_S)
    return chip


async def test_a_smuggled_chip_can_no_longer_prove_malaysia(world: World, tmp_path: Path) -> None:
    kl = landmark(world, "kl-1")
    delegation = tmp_path / "kl.delegation.cose"
    delegation.write_bytes(
        delegate(
            world.authority,
            delegation_id=7,
            verifier_id="kl-1",
            public_key=kl.key.public_key,
            region=kl.region,
            quota=Budgets(10**16),
            now_s=CERTIFIED_S,
            validity_s=NOW_S - CERTIFIED_S + 90 * 86400,
        )
    )
    chip = licensed(world)
    grants: list[GrantOutcome] = []
    later = [0]
    async with landmarks(
        world,
        tmp_path,
        ["kl-1", "jb-1", "sg-1", "bkk-1"],
        licensing={"kl-1": delegation},
        later_ms=later,
    ) as lms:
        # in a data centre beside the KL landmark: Malaysia proven (this machine's own
        # processing puts the bound at some tens of km), a licence issued
        home = CITIES["Kuala Lumpur"]
        first = await session_from(chip, home, lms["kl-1"], on_grant=grants.append)
        assert first.status == Tier.AFFIRMING and first.reasons == ()
        assert [g.refusal for g in grants] == [None]
        chip.run_workload(0.2, 1.0)  # the licence is used up: a renewal is due
        # Smuggled to Ho Chi Minh City, which takes hours (the appraisal knows hardware moves
        # at most ~1000 km/h: right after the KL record the chip must still be near KL).
        # Every landmark's bound still reaches Malaysia, none fits inside it: no renewal.
        later[0] = 10 * 3600 * 1000
        hcmc = CITIES["Ho Chi Minh City"]
        for name in ("kl-1", "jb-1", "sg-1", "bkk-1"):
            await trio.sleep(0.05)  # an honest chip's reconnection: the last node hears BYE
            result = await session_from(chip, hcmc, lms[name], on_grant=grants.append)
            assert result.status == Tier.WARNING, (name, result.reasons)
            assert tuple(result.reasons) == (LocationReason.LOCATION_UNVERIFIED,)
            record = newest(lms[name], chip)
            assert record.bound_m >= geodesic_m(lms[name].place, hcmc)  # sound, and far
        assert len(grants) == 1  # nothing renewed after the smuggling
        # the landmarks share their records: each saw all of them, and none accused a clone
        assert len(lms["bkk-1"].part.latest(chip.ueid)) == 4
        assert not any(lm.part.recent_alerts for lm in lms.values())


async def test_a_clone_answering_in_kuala_lumpur_and_manila_is_flagged(
    world: World, tmp_path: Path
) -> None:
    original, clone = world.honest_chip("hx100-b"), world.honest_chip("hx100-b")  # one key
    async with landmarks(world, tmp_path, ["kl-1", "mnl-1"]) as lms:
        kl = await session_from(original, CITIES["Kuala Lumpur"], lms["kl-1"])
        assert kl.status == Tier.AFFIRMING
        far = await session_from(clone, CITIES["Manila"], lms["mnl-1"])
        # the core cannot see it (two stores), the shared location records can
        assert Reason.CLONE_SUSPECTED in far.reasons
        assert LocationReason.LOCATION_OUTSIDE_REGION not in far.reasons  # disks disagree
        assert far.status == Tier.CONTRAINDICATED
        (alert,) = [a for a in lms["mnl-1"].part.recent_alerts if a.kind == "impossible-travel"]
        named = {r["landmark"] for r in alert.details["records"]}
        assert named == {"kl-1", "mnl-1"} and alert.details["apart_m"] > 2_000_000


async def test_two_open_sessions_at_two_nodes_of_one_store(world: World, tmp_path: Path) -> None:
    """Two nodes of verifier kl-1 on one store (worker processes do this): a copy of a chip
    opens a session at the second while the first copy's session is open at the first."""
    shared_store = tmp_path / "kl-1.db"
    one, two = world.honest_chip("cx10-a"), world.honest_chip("cx10-a")
    kl = CITIES["Kuala Lumpur"]
    async with landmarks(
        world,
        tmp_path,
        ["kl-1", "kl-1#2"],
        shared=False,
        store_of={"kl-1": shared_store, "kl-1#2": shared_store},
    ) as lms:
        first: list[AttestationResult] = []

        async def keep_open() -> None:
            await session_from(one, kl, lms["kl-1"], rounds=3, interval_s=0.3,
                               on_result=first.append)  # fmt: skip

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_open)
            while not first:
                await trio.sleep(0.01)
            second = await session_from(two, kl, lms["kl-1#2"], rounds=2, interval_s=0.3)
        assert Reason.CLONE_SUSPECTED in second.reasons
        alerts = [a for a in lms["kl-1#2"].part.recent_alerts if a.kind == "concurrent-sessions"]
        assert alerts and alerts[0].details["sessions"][1]["node"] == lms["kl-1"].part.node
        # the first copy's next round, while the second session is open, sees it too
        assert Reason.CLONE_SUSPECTED not in first[0].reasons
        assert any(Reason.CLONE_SUSPECTED in r.reasons for r in first[1:])
        # once both connections are closed (the node hears of it after the chip's BYE) their
        # rows are gone
        with trio.fail_after(5):
            while lms["kl-1"].part.tables.open_sessions(0):
                await trio.sleep(0.01)


async def test_a_relay_near_the_landmark_only_adds_delay(world: World, tmp_path: Path) -> None:
    kl_box = Place(3.148, 101.687)  # a box 1 km from the KL landmark, on real TCP
    hcmc = CITIES["Ho Chi Minh City"]
    chip = world.honest_chip("hx800-a")
    async with landmarks(world, tmp_path, ["kl-1"]) as lms:
        lm = lms["kl-1"]
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        box_port = listeners[0].socket.getsockname()[1]

        async def forward(inbound: trio.SocketStream) -> None:
            outbound = await trio.open_tcp_stream("127.0.0.1", lm.port)
            # the box's leg to the landmark (the chip's stream carries the long leg)
            near = link(outbound, kl_box, lm.place, MODEL, random.Random(3), chip_end=False)
            await relay(inbound, near)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, forward, listeners)
            tcp = await trio.open_tcp_stream("127.0.0.1", box_port)
            stream = link(tcp, hcmc, kl_box, MODEL, random.Random(4))
            with trio.fail_after(20):
                (result,) = await attest(chip, "127.0.0.1", box_port, stream=stream)
            nursery.cancel_scope.cancel()
        assert tuple(result.reasons) == (LocationReason.LOCATION_UNVERIFIED,)
        record = newest(lm, chip)
        disk = disk_of(record)
        assert disk is not None and disk.contains(hcmc)  # the true, far position
        assert record.bound_m > geodesic_m(lm.place, hcmc)  # it can only look farther


async def test_the_landmark_sets_tcp_nodelay_before_pinging() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, False)
    v, c = Connection(Role.VERIFIER), Connection(Role.CHIP)
    for sender, event in [
        (c, Hello((1,), b"d", b"m")),
        (v, ChallengeFrame(1, b"v", b"c")),
        (c, EvidenceFrame(b"e")),
    ]:
        (v if sender is c else c).receive_data(sender.send(event))
        (v if sender is c else c).next_event()

    async def chip() -> None:
        for _ in range(3):
            ping = await receive_event(client, c)
            assert isinstance(ping, Ping)
            await send_event(client, c, Pong(b"answer:" + ping.nonce))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(chip)
        timed = await ping_chip(server, v, 3, time.perf_counter_ns)
    assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # trio's default
    assert [t.response for t in timed] == [b"answer:" + t.nonce for t in timed]
    assert all(t.rtt_ns > 0 for t in timed)
    v.send(ResultFrame(b"r"))  # the round goes on as usual after the pings
    await server.aclose()
    await client.aclose()
