"""Location verification: geometry on WGS84, soundness, the PING protocol, virtual-time pings.

* geometry against the city-pair distances of DESIGN.md §8 (WGS84 geodesics, geographiclib),
  and the bounds that let decisions skip geographiclib;
* soundness as a property: whatever the true position and however much delay is added, the
  true position stays inside the feasible region, and no region decision contradicts it;
* the PING/PONG frames: a session without pings is byte for byte what it was, the per-round
  guard, a chip never pinged;
* the landmark's real driver (``ping_chip``) against the real chip runner over simulated links
  on trio's MockClock: virtual time, no real sleeps; a relay only adds delay.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.chip.runner import attest
from attest.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from attest.location.appraisal import disk_of, judge_pings, measure
from attest.location.geometry import (
    MAX_GEODESIC_M,
    Disk,
    Place,
    Region,
    arc_upper_m,
    chord_m,
    destination,
    geodesic_m,
    read_regions,
    regions_from_geojson,
    relate,
    surface_radius_m,
)
from attest.location.messages import C_M_PER_S, LocationRecord, vacuum_bound_m
from attest.location.places import CITIES, sample_regions
from attest.location.sim import PathModel, link, relay
from attest.location.verifier import LocationSection, LocationVerifier, check_section
from attest.mechanism import LiveSession
from attest.net import receive_event, send_event
from attest.node.server import ping_chip
from attest.node.service import VerifierService
from attest.protocol import (
    Bye,
    ChallengeFrame,
    Connection,
    ErrorCode,
    EvidenceFrame,
    Hello,
    Ping,
    Pong,
    ResultFrame,
    Role,
    State,
)
from attest.protocol.framing import encode_frame
from attest.protocol.machine import MAX_PINGS_PER_ROUND
from attest.store.sqlite import SqliteStore
from attest.testvectors.world import World
from attest.verify.policy import Policy

REGIONS = {name: r for name, (r, _) in regions_from_geojson(sample_regions()).items()}
MY, ZONE = REGIONS["MY"], REGIONS["MY+SG"]

# -- geometry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ("Kuala Lumpur", "Singapore", 308.8),
        ("Kuala Lumpur", "Bangkok", 1181.5),
        ("Kuala Lumpur", "Manila", 2468.9),
    ],
)
def test_city_pair_geodesics_on_wgs84(a: str, b: str, km: float) -> None:
    d = geodesic_m(CITIES[a], CITIES[b])
    assert round(d / 1000, 1) == km
    assert geodesic_m(CITIES[b], CITIES[a]) == pytest.approx(d, abs=1e-6)
    # the cheap bracket decisions rely on: chord <= geodesic <= arc bound (the upper one tight)
    chord = chord_m(CITIES[a], CITIES[b])
    assert chord <= d <= arc_upper_m(chord) < d * 1.0005


def test_johor_and_singapore_are_a_strait_apart() -> None:
    jb, sg = CITIES["Johor Bahru"], CITIES["Singapore"]
    assert 17_000 < geodesic_m(jb, sg) < 19_000
    assert MY.contains(jb) and not MY.contains(sg)
    assert REGIONS["SG"].contains(sg) and ZONE.contains(jb) and ZONE.contains(sg)
    for city in ("Bangkok", "Jakarta", "Ho Chi Minh City", "Manila"):
        assert not ZONE.contains(CITIES[city]), city


_places = st.builds(
    Place,
    st.floats(-89.0, 89.0, allow_nan=False),
    st.floats(-179.9, 179.9, allow_nan=False),
)


@settings(max_examples=150, deadline=None)
@given(a=_places, b=_places)
def test_chord_and_arc_bracket_every_geodesic(a: Place, b: Place) -> None:
    s, chord = geodesic_m(a, b), chord_m(a, b)
    assert chord <= s + 1e-6
    if chord < 12_000_000:  # where the Schur bound holds (geometry module doc)
        assert s <= arc_upper_m(chord) + 1e-6


@settings(max_examples=150, deadline=None)
@given(bound=st.integers(0, 13_000_000))
def test_surface_radius_never_shrinks_a_bound(bound: int) -> None:
    radius = surface_radius_m(bound)
    if bound >= 12_000_000:
        assert radius is None
    else:
        assert radius is not None and bound <= radius <= MAX_GEODESIC_M + 2
        assert radius <= (surface_radius_m(bound + 1000) or math.inf)


def test_vacuum_bound_rounds_up_exactly() -> None:
    assert vacuum_bound_m(50_000, 50_000) == 0
    assert vacuum_bound_m(10_000, 50_000) == 0  # faster than the allowance: 0, never negative
    assert vacuum_bound_m(50_001, 50_000) == 1  # 0.15 m -> 1 m
    assert vacuum_bound_m(10**9, 0) == C_M_PER_S // 2  # exactly c/2 metres: no rounding
    assert vacuum_bound_m(10**9 + 1, 0) == C_M_PER_S // 2 + 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"type": "Feature"}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": [{"properties": {}}]}, "properties.name"),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "properties": {"name": "X"},
                        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]},
                    }
                ],
            },
            "closed",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {"properties": {"name": "X"}, "geometry": {"type": "Point", "coordinates": [0]}}
                ],
            },
            "Polygon",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "properties": {"name": "X", "chips": ["zz"]},
                        "geometry": {"type": "Polygon", "coordinates": []},
                    }
                ],
            },
            "hex",
        ),
    ],
)
def test_bad_regions_files_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        regions_from_geojson(doc)
    with pytest.raises(ConfigError, match="not JSON"):
        read_regions("{")


def test_regions_assign_chips_and_a_default(tmp_path: Path, world: World) -> None:
    listed = b"\x01" + bytes(16)
    regions = read_regions(json.dumps(sample_regions({"MY+SG": [listed]})))
    store = SqliteStore(tmp_path / "l.db", verifier_id="kl-1")
    part = LocationVerifier(
        identity=world.verifiers["kl-1"],
        anchors=world.anchors,
        store=store,
        section=LocationSection(enabled=True, position="3.139, 101.687", default_region="MY"),
        regions=regions,
    )
    assert part.region_of(listed) is regions["MY+SG"][0]
    assert part.region_of(b"\x01" + bytes([1]) * 16) is regions["MY"][0]
    store.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (LocationSection(enabled=True), "position"),
        (LocationSection(position="91, 0"), "position"),
        (LocationSection(position="3.1, 101.6", pings=0), "pings"),
        (LocationSection(pings=MAX_PINGS_PER_ROUND + 1), "pings"),
        (LocationSection(allowance_ns=-1), "allowance"),
        (LocationSection(window_s=0), "window_s"),
        (LocationSection(max_speed_kmh=0.0), "max_speed"),
        (LocationSection(default_region="MY"), "regions_file"),
    ],
)
def test_bad_location_settings_are_refused(section: LocationSection, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_section(section)


# -- soundness --------------------------------------------------------------------------------


def _true_min_rtt_ns(landmark: Place, chip: Place) -> int:
    """The least round trip physics allows: twice the straight line at c (rounded down)."""
    return math.floor(2 * chord_m(landmark, chip) * 1e9 / C_M_PER_S)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chip=_places,
    landmark=_places,
    added=st.integers(0, 30_000_000),  # any extra delay: queues, detours, a relay, slow CPU
    processing=st.integers(0, 200_000),  # the chip's work beyond the allowance
    resolution=st.sampled_from([1, 1000]),
    reading=st.floats(0.0, 0.999),  # where within a clock tick the two readings fell
)
def test_the_true_position_is_always_inside_its_disk(
    chip: Place,
    landmark: Place,
    added: int,
    processing: int,
    resolution: int,
    reading: float,
) -> None:
    allowance = 50_000
    true_rtt = _true_min_rtt_ns(landmark, chip) + allowance + processing + added
    measured = true_rtt - int(reading * resolution)  # a coarse clock may read up to a tick short
    record = _record(landmark, measured, allowance, resolution)
    disk = disk_of(record)
    if disk is not None:  # None: the whole Earth
        assert geodesic_m(disk.center, chip) <= disk.radius_m


def _record(landmark: Place, rtt_ns: int, allowance: int, resolution: int) -> LocationRecord:
    from attest.location.appraisal import Measurement

    record = measure(
        Measurement((rtt_ns,)),
        landmark_id="lm",
        position=Place.of_microdegrees(landmark.microdegrees()),
        ueid=b"\x01" + bytes(16),
        session_nonce=bytes(32),
        now_ms=0,
        allowance_ns=allowance,
        clock_resolution_ns=resolution,
    )
    assert record is not None
    return record


_near_malaysia = st.builds(
    Place, st.floats(-2.0, 8.0, allow_nan=False), st.floats(98.0, 110.0, allow_nan=False)
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chip=_near_malaysia,
    landmarks=st.lists(st.sampled_from(sorted(CITIES)), min_size=1, max_size=3, unique=True),
    stretch=st.floats(1.0, 3.0),
    region=st.sampled_from([MY, ZONE]),
)
def test_no_region_decision_contradicts_the_true_position(
    chip: Place, landmarks: list[str], stretch: float, region: Region
) -> None:
    """Disks from true (stretched) round trips never prove the chip outside a region it is in,
    nor inside one it is not in."""
    disks = []
    for name in landmarks:
        lm = CITIES[name]
        rtt = int(_true_min_rtt_ns(lm, chip) * stretch) + 50_000
        disk = disk_of(_record(lm, rtt, 50_000, 1))
        if disk is not None:
            disks.append(disk)
    relation = relate(disks, region)
    assert not relation.empty
    if region.contains(chip):
        assert not relation.disjoint
    else:
        assert not relation.contained


def test_tight_bounds_decide_and_loose_ones_do_not() -> None:
    kl, mnl = CITIES["Kuala Lumpur"], CITIES["Manila"]
    assert relate([Disk(kl, 20_000)], MY).contained
    assert relate([Disk(mnl, 20_000)], MY).disjoint
    loose = relate([Disk(kl, 400_000)], MY)
    assert not loose.contained and not loose.disjoint
    empty = relate([Disk(kl, 20_000), Disk(mnl, 20_000)], MY)
    assert empty.empty and empty.contained and empty.disjoint
    # a decision that would need more cells than the budget stays undecided, never wrong
    starved = relate([Disk(CITIES["Johor Bahru"], 5_000)], MY, budget=4)
    assert not starved.contained and not starved.disjoint


# -- the PING/PONG frames -----------------------------------------------------------------------


def test_a_round_without_pings_is_byte_for_byte_as_before() -> None:
    """The frames of a round that a verifier without location sends, and their bytes."""
    v, c = Connection(Role.VERIFIER), Connection(Role.CHIP)
    frames = [
        (c, Hello((1,), b"d", b"m")),
        (v, ChallengeFrame(1, b"v", b"c")),
        (c, EvidenceFrame(b"e")),
        (v, ResultFrame(b"r")),
        (c, Bye()),
    ]
    wire = b""
    for sender, event in frames:
        data = sender.send(event)
        other = v if sender is c else c
        other.receive_data(data)
        assert other.next_event() == event
        wire += data
    # revision 2's bytes, written out by hand from SPEC §7.3 (PING/PONG are new types 8, 9)
    assert wire.hex() == (
        "00000008"
        "84"
        "01"
        "8101"
        "4164"
        "416d"  # HELLO [1, [1], h'64', h'6d']
        "00000007"
        "84"
        "02"
        "01"
        "4176"
        "4163"  # CHALLENGE [2, 1, h'76', h'63']
        "00000004"
        "82"
        "03"
        "4165"  # EVIDENCE [3, h'65']
        "00000004"
        "82"
        "04"
        "4172"  # RESULT [4, h'72'] (no grant, no PING before it)
        "00000002"
        "81"
        "06"  # BYE [6]
    )


def test_pings_between_evidence_and_result() -> None:
    v, c = Connection(Role.VERIFIER), Connection(Role.CHIP)
    for sender, event in [
        (c, Hello((1,), b"d", b"m")),
        (v, ChallengeFrame(1, b"v", b"c")),
        (c, EvidenceFrame(b"e")),
    ]:
        (v if sender is c else c).receive_data(sender.send(event))
        (v if sender is c else c).next_event()
    for i in range(3):
        c.receive_data(v.send(Ping(bytes([i]) * 32)))
        assert v.state is State.AWAIT_PONG and c.next_event() == Ping(bytes([i]) * 32)
        assert c.state is State.SEND_PONG
        with pytest.raises(LocalProtocolError):  # one PING at a time
            v.send(Ping(bytes(32)))
        v.receive_data(c.send(Pong(b"answer")))
        assert v.next_event() == Pong(b"answer") and v.state is State.SEND_RESULT
    assert (v.pings, c.pings) == (3, 3)
    c.receive_data(v.send(ResultFrame(b"r")))
    c.next_event()
    assert (v.pings, c.pings) == (0, 0) and v.state is c.state is State.IDLE


def test_more_pings_than_a_round_allows_are_refused() -> None:
    v, c = Connection(Role.VERIFIER), Connection(Role.CHIP)
    for sender, event in [
        (c, Hello((1,), b"d", b"m")),
        (v, ChallengeFrame(1, b"v", b"c")),
        (c, EvidenceFrame(b"e")),
    ]:
        (v if sender is c else c).receive_data(sender.send(event))
        (v if sender is c else c).next_event()
    for _ in range(MAX_PINGS_PER_ROUND):
        c.receive_data(v.send(Ping(bytes(32))))
        c.next_event()
        v.receive_data(c.send(Pong(b"a")))
        v.next_event()
    with pytest.raises(LocalProtocolError, match="PINGs"):
        v.send(Ping(bytes(32)))
    assert v.state is State.SEND_RESULT  # unchanged
    # a verifier that ignores the guard is a protocol violation for the chip
    c.receive_data(encode_frame(Ping(bytes(32))))
    with pytest.raises(RemoteProtocolError) as info:
        c.next_event()
    assert info.value.error_code is ErrorCode.UNEXPECTED_FRAME


@pytest.mark.parametrize(
    "body",
    ["820841aa", "8208f6", "8309" + "4161" + "4161", "8109", "820958200000"],
    ids=["short nonce", "null nonce", "pong extra", "pong empty", "pong not bstr"],
)
def test_malformed_ping_frames(body: str) -> None:
    c = Connection(Role.CHIP)
    raw = bytes.fromhex(body)
    c.receive_data(len(raw).to_bytes(4, "big") + raw)
    with pytest.raises(RemoteProtocolError) as info:
        c.next_event()
    assert info.value.error_code is ErrorCode.MALFORMED_FRAME


# -- pings in virtual time (trio's MockClock) ------------------------------------------------------

_KL = "3.139, 101.687"


def _landmark(world: World, tmp_path: Path) -> tuple[VerifierService, LocationVerifier]:
    regions = read_regions(json.dumps(sample_regions()))
    store = SqliteStore(tmp_path / "kl.db", verifier_id="kl-1")
    part = LocationVerifier(
        identity=world.verifiers["kl-1"],
        anchors=world.anchors,
        store=store,
        section=LocationSection(enabled=True, position=_KL, default_region="MY", pings=10),
        regions=regions,
    )
    service = VerifierService(
        identity=world.verifiers["kl-1"],
        anchors=world.anchors,
        store=store,
        policy=Policy(),
        parts={"location": part},
    )
    return service, part


async def _serve_one_round(
    service: VerifierService, stream: trio.abc.Stream, clock_ns: Callable[[], int]
) -> Any:
    """The landmark's side of one round: the node's own ping driver and service, inline."""
    from attest.verify.chain import DeviceChain

    conn = Connection(Role.VERIFIER)
    hello = await receive_event(stream, conn)
    assert isinstance(hello, Hello)
    chain = DeviceChain(hello.device_cert, hello.manufacturer_cert)
    challenge, token = service.new_challenge()
    await send_event(stream, conn, ChallengeFrame(1, service.identity.cert, token))
    evidence = await receive_event(stream, conn)
    assert isinstance(evidence, EvidenceFrame)
    count = service.pings_for(chain, b"session-1")
    pings = await ping_chip(stream, conn, count, clock_ns)
    outcome = service.conclude(
        chain, challenge, evidence.evidence, LiveSession(b"session-1", pings)
    )
    await send_event(stream, conn, ResultFrame(outcome.result))
    assert isinstance(await receive_event(stream, conn), Bye)
    service.session_closed(chain, b"session-1")
    return outcome, pings


def _virtual_ns() -> int:
    return round(trio.current_time() * 1e9)


@pytest.mark.parametrize(
    ("city", "via"),
    [("Kuala Lumpur", None), ("Ho Chi Minh City", None), ("Ho Chi Minh City", "Kuala Lumpur")],
    ids=["chip in KL", "chip in HCMC", "HCMC through a relay in KL"],
)
def test_pings_in_virtual_time(city: str, via: str | None, world: World, tmp_path: Path) -> None:
    kl = CITIES["Kuala Lumpur"]
    chip_at = CITIES[city]
    model = PathModel()
    service, part = _landmark(world, tmp_path)
    chip = world.honest_chip("hx100-a")
    result: dict[str, Any] = {}

    async def scenario() -> None:
        started = trio.current_time()
        node_end, near = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            chip_end: trio.abc.Stream
            if via is None:
                chip_end = link(near, chip_at, kl, model, random.Random(7))
            else:  # a box at ``via`` forwards to the far chip; only the far chip holds the key
                box = CITIES[via]
                box_in = link(near, box, kl, model, random.Random(7), chip_end=False)
                box_out, chip_side = trio.testing.memory_stream_pair()
                nursery.start_soon(relay, box_in, box_out)
                chip_end = link(chip_side, chip_at, box, model, random.Random(8))

            async def chip_side_run() -> None:
                result["results"] = await attest(chip, "", 0, stream=chip_end)

            nursery.start_soon(chip_side_run)
            result["outcome"], result["pings"] = await _serve_one_round(
                service, node_end, _virtual_ns
            )
        result["virtual_s"] = trio.current_time() - started

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(part.latest(chip.ueid)) == 1
    service.store.close()
    outcome, pings = result["outcome"], result["pings"]
    assert len(pings) == 10
    # every PONG verified, and the virtual round trips are the model's, never less
    m = judge_pings(pings, device_key=chip.public_key, ueid=chip.ueid, landmark_id="kl-1")
    assert m.invalid == 0 and len(m.valid_rtts_ns) == 10
    floor = 2 * model.one_way_ns(geodesic_m(kl, chip_at)) + model.processing_ns
    if via is not None:
        floor = 2 * model.one_way_ns(geodesic_m(kl, CITIES[via])) + 2 * model.one_way_ns(
            geodesic_m(CITIES[via], chip_at)
        )
    assert min(m.valid_rtts_ns) >= floor
    review = outcome.conclusions["location"].detail
    record = review.record
    assert record is not None and record.samples == 10
    disk = disk_of(record)
    assert disk is not None and disk.contains(chip_at)  # sound: the chip is inside its bound
    if city == "Kuala Lumpur":
        assert review.findings.placement == "inside" and outcome.verdict.reasons == ()
    else:  # smuggled, relayed or not: Malaysia is not proven, and the relay only looks farther
        assert review.findings.placement == "unverified"
        assert record.bound_m >= geodesic_m(kl, chip_at)
    assert result["virtual_s"] < 5  # simulated milliseconds, not real seconds


def test_a_chip_never_pinged_behaves_as_before(world: World, tmp_path: Path) -> None:
    """A verifier without location: the chip runner sees CHALLENGE and RESULT only."""
    seen: list[type] = []

    async def scenario() -> None:
        a, b = trio.testing.memory_stream_pair()
        store = SqliteStore(tmp_path / "plain.db", verifier_id="kl-1")
        service = VerifierService(
            identity=world.verifiers["kl-1"], anchors=world.anchors, store=store, policy=Policy()
        )

        async def verifier() -> None:
            from attest.verify.chain import DeviceChain

            conn = Connection(Role.VERIFIER)
            hello = await receive_event(b, conn)
            assert isinstance(hello, Hello)
            chain = DeviceChain(hello.device_cert, hello.manufacturer_cert)
            assert service.pings_for(chain, b"s") == 0 and not service.session_parts
            ch, token = service.new_challenge()
            await send_event(b, conn, ChallengeFrame(1, service.identity.cert, token))
            ev = await receive_event(b, conn)
            assert isinstance(ev, EvidenceFrame)
            out = service.conclude(chain, ch, ev.evidence)
            await send_event(b, conn, ResultFrame(out.result))
            seen.append(type(await receive_event(b, conn)))
            store.close()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(verifier)
            await attest(world.honest_chip("hx100-b"), "", 0, stream=a)

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    assert seen == [Bye]


def test_destination_walks_the_geodesic() -> None:
    kl = CITIES["Kuala Lumpur"]
    p = destination(kl, 45.0, 100_000)
    assert geodesic_m(kl, p) == pytest.approx(100_000, abs=1e-3)
