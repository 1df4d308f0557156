"""The pure appraisal of location verification: pings into a record, records into reasons.

Two pure steps, both driven by the verifier part, the vectors and the tests alike:

1. :func:`judge_pings` — each PONG of this round must verify as the chip's PingResponse to
   *this* PING (nonce), from *this* chip (UEID) to *this* landmark; the valid ones' least round
   trip becomes a :class:`~attest.location.messages.LocationRecord` (:func:`measure`), every
   invalid one is LOCATION_PING_INVALID.
2. :func:`appraise_location` — the chip's latest record per landmark (this round's included):

   * **impossible travel**: two records whose disks are farther apart than the chip could have
     been carried in the time between them (``max_speed``, a policy input of the order of an
     airliner — light bounds where a chip *is*, transport how fast hardware *moves*) are
     CLONE_SUSPECTED, with an alert naming both records;
   * **concurrent sessions**: another node sharing the store holds an open session of the same
     chip: CLONE_SUSPECTED, with an alert naming both sessions;
   * **licensed region**: each record's disk, grown by how far the chip may have moved since,
     intersected (the tightest three) into the feasible region F; F inside the chip's region is
     proof (nothing to report), F outside it is LOCATION_OUTSIDE_REGION, anything else
     LOCATION_UNVERIFIED. F empty (records that no single chip can satisfy) is a clone signal.

Both use only sound rounding (attest.location.geometry): F always contains the chip's true
position if the chip is one device and delay only ever added.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from attest.errors import AttestError, DecodeError
from attest.keys import PublicKey, ct_equal
from attest.location.geometry import Disk, Place, Region, Relation, relate, separation_m
from attest.location.geometry import surface_radius_m as _surface_radius
from attest.location.messages import MAX_SAMPLES, LocationRecord, PingResponse
from attest.location.reasons import LocationReason
from attest.mechanism import TimedPing
from attest.verify.chain import TrustAnchors, verify_verifier_cert
from attest.verify.reasons import Reason, ReasonCode

#: how many of the tightest disks the region decision intersects (more only costs time)
TIGHTEST = 3


@dataclass(frozen=True, slots=True)
class LocationPolicy:
    """The inputs of the appraisal that an operator chooses."""

    #: how fast hardware can be carried, metres per second (default 1000 km/h, an airliner)
    max_speed_mps: float = 1000 / 3.6
    #: how far back stored records count, in milliseconds
    window_ms: int = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Measurement:
    """What this round's PINGs showed."""

    #: round trips of the PONGs that verified, nanoseconds, in the order sent
    valid_rtts_ns: tuple[int, ...] = ()
    #: PONGs that did not verify
    invalid: int = 0


def judge_pings(
    pings: Sequence[TimedPing], *, device_key: PublicKey, ueid: bytes, landmark_id: str
) -> Measurement:
    """Check every PONG (signature first, then nonce, chip and landmark; SPEC §15.2)."""
    valid: list[int] = []
    invalid = 0
    for p in pings[:MAX_SAMPLES]:
        try:
            answer = PingResponse.verify(p.response, device_key)
        except AttestError:
            invalid += 1
            continue
        ok = (
            ct_equal(answer.nonce, p.nonce)
            and ct_equal(answer.ueid, ueid)
            and answer.landmark_id == landmark_id
            and p.rtt_ns >= 0
        )
        if ok:
            valid.append(p.rtt_ns)
        else:
            invalid += 1
    invalid += max(0, len(pings) - MAX_SAMPLES)
    return Measurement(tuple(valid), invalid)


def measure(
    m: Measurement,
    *,
    landmark_id: str,
    position: Place,
    ueid: bytes,
    session_nonce: bytes,
    now_ms: int,
    allowance_ns: int,
    clock_resolution_ns: int,
) -> LocationRecord | None:
    """The record of a measurement (None if no PONG verified).

    The least round trip is rounded up by one tick of the driver's clock: two readings of a
    clock with resolution ``q`` may differ by up to ``q`` less than the time between them.
    """
    if not m.valid_rtts_ns:
        return None
    return LocationRecord.measured(
        landmark_id=landmark_id,
        issued_at=now_ms // 1000,
        session_nonce=session_nonce,
        ueid=ueid,
        position=position.microdegrees(),
        samples=len(m.valid_rtts_ns),
        rtt_min_ns=min(m.valid_rtts_ns) + clock_resolution_ns,
        allowance_ns=allowance_ns,
    )


def fibre_estimate_m(record: LocationRecord, km_per_ms: float = 200.0) -> float:
    """What the round trip would mean over fibre (~2/3 c): an estimate to *show*, never to
    accuse with (a chip can be nearer than that, never farther than the bound)."""
    flight_ns = max(0, record.rtt_min_ns - record.allowance_ns)
    return flight_ns / 2 * km_per_ms / 1000  # km/ms = m/us


def disk_of(record: LocationRecord, label: str = "") -> Disk | None:
    """The geodesic disk a record confines its chip to (None: the whole Earth)."""
    radius = _surface_radius(record.bound_m)
    if radius is None:
        return None
    return Disk(Place.of_microdegrees(record.position), float(radius), label or record.landmark_id)


def travel_m(policy: LocationPolicy, seconds: float) -> float:
    """How far hardware can be carried in ``seconds`` of record times, rounded up.

    Record times are whole seconds (floor), so the true interval may be a second longer.
    """
    return math.ceil(policy.max_speed_mps * (abs(seconds) + 1))


class RecordRefused(AttestError):
    """A location record that must not be believed; ``why`` names the failed check (SPEC
    §15.3): CERT_INVALID, MALFORMED, SIGNATURE_INVALID, LANDMARK_MISMATCH or
    BOUND_INCONSISTENT."""

    def __init__(self, why: str, detail: str = "") -> None:
        super().__init__(f"{why}: {detail}" if detail else why)
        self.why = why


def open_record(token: bytes, landmark_cert: bytes, anchors: TrustAnchors) -> LocationRecord:
    """A record checked in order: its landmark's certificate chains to the anchors, the record
    verifies under that key, names that landmark, and its bound is its round trip's."""
    cert = verify_verifier_cert(landmark_cert, anchors)
    if cert is None:
        raise RecordRefused("CERT_INVALID", "the landmark certificate is not the authority's")
    try:
        record = LocationRecord.verify(token, cert.public_key)
    except DecodeError as exc:
        raise RecordRefused("MALFORMED", str(exc)) from None
    except AttestError as exc:
        raise RecordRefused("SIGNATURE_INVALID", str(exc)) from None
    if record.landmark_id != cert.verifier_id:
        raise RecordRefused(
            "LANDMARK_MISMATCH", f"{record.landmark_id!r} signed by {cert.verifier_id!r}"
        )
    if not record.consistent:
        raise RecordRefused("BOUND_INCONSISTENT", "bound_m is not (rtt_min - allowance) x c / 2")
    return record


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record of the chip already in the store (its signature was checked when read)."""

    digest: bytes
    record: LocationRecord


@dataclass(frozen=True, slots=True)
class OpenSession:
    """Another node's open session of the same chip (from the sessions table)."""

    node: str
    session_id: bytes
    opened_ms: int
    seen_ms: int


@dataclass(frozen=True, slots=True)
class LocationAlert:
    """A clone signal, naming what it rests on (logged as one JSON line, counted)."""

    reason: ReasonCode
    #: "impossible-travel", "concurrent-sessions" or "inconsistent-records"
    kind: str
    ueid: bytes
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.ueid, tuple(sorted((k, str(v)) for k, v in self.details.items())))

    def as_json(self) -> dict[str, Any]:
        return {
            "alert": self.kind,
            "reason": self.reason.name,
            "ueid": self.ueid.hex(),
            **self.details,
        }


def _describe(digest: bytes, r: LocationRecord) -> dict[str, Any]:
    return {
        "record": digest.hex()[:16],
        "landmark": r.landmark_id,
        "time_s": r.issued_at,
        "bound_m": r.bound_m,
    }


@dataclass(frozen=True, slots=True)
class LocationFindings:
    """Everything :func:`appraise_location` concluded."""

    reasons: tuple[ReasonCode, ...] = ()
    alerts: tuple[LocationAlert, ...] = ()
    #: the disks that decided the region question, grown to now (tightest first)
    disks: tuple[Disk, ...] = ()
    #: how the feasible region relates to the chip's licensed region (None: no region)
    relation: Relation | None = None
    #: "inside", "outside", "unverified" or "" (no licensed region)
    placement: str = ""


def latest_per_landmark(records: Iterable[StoredRecord]) -> list[StoredRecord]:
    """The newest record of each landmark, newest first; of two in the same second the one
    listed later (this round's record is listed last). Dropping older records of a landmark
    only loosens the region (each record alone is a sound constraint)."""
    best: dict[str, StoredRecord] = {}
    for s in records:
        old = best.get(s.record.landmark_id)
        if old is None or s.record.issued_at >= old.record.issued_at:
            best[s.record.landmark_id] = s
    return sorted(best.values(), key=lambda s: (-s.record.issued_at, s.record.landmark_id))


def appraise_location(
    *,
    ueid: bytes,
    records: Sequence[StoredRecord],
    concurrent: Sequence[OpenSession] = (),
    region: Region | None,
    policy: LocationPolicy,
    now_ms: int,
    invalid_pings: int = 0,
    node: str = "",
) -> LocationFindings:
    """Pure: the location reasons for one chip (see the module doc).

    ``records`` are the chip's records (this round's included) within the policy's window;
    only the newest of each landmark counts.
    """
    reasons: set[ReasonCode] = set()
    alerts: list[LocationAlert] = []
    if invalid_pings:
        reasons.add(LocationReason.LOCATION_PING_INVALID)
    latest = latest_per_landmark(
        r for r in records if now_ms - r.record.issued_at * 1000 <= policy.window_ms
    )
    disks = [(s, disk_of(s.record)) for s in latest]
    # -- impossible travel: every pair of landmarks
    for i, (a, da) in enumerate(disks):
        for b, db in disks[i + 1 :]:
            if da is None or db is None:
                continue
            apart = separation_m(da, db)
            reach = travel_m(policy, a.record.issued_at - b.record.issued_at)
            if apart > reach:
                reasons.add(Reason.CLONE_SUSPECTED)
                alerts.append(
                    LocationAlert(
                        Reason.CLONE_SUSPECTED,
                        "impossible-travel",
                        ueid,
                        {
                            "records": [
                                _describe(a.digest, a.record),
                                _describe(b.digest, b.record),
                            ],
                            "apart_m": math.floor(apart),
                            "reachable_m": reach,
                        },
                    )
                )
    # -- two sessions of the chip open at once at two nodes
    for other in concurrent:
        reasons.add(Reason.CLONE_SUSPECTED)
        alerts.append(
            LocationAlert(
                Reason.CLONE_SUSPECTED,
                "concurrent-sessions",
                ueid,
                {
                    "sessions": [
                        {"node": node, "now_ms": now_ms},
                        {
                            "node": other.node,
                            "session": other.session_id.hex(),
                            "opened_ms": other.opened_ms,
                            "seen_ms": other.seen_ms,
                        },
                    ]
                },
            )
        )
    # -- the licensed region
    grown: list[Disk] = []
    for s, d in disks:
        if d is not None:
            grown.append(d.grown(travel_m(policy, now_ms / 1000 - s.record.issued_at)))
    grown.sort(key=lambda d: d.radius_m)
    relation: Relation | None = None
    placement = ""
    if region is not None:
        if not grown:
            placement = "unverified"
        else:
            relation = relate(grown[:TIGHTEST], region)
            if relation.empty:
                placement = "unverified"
                reasons.add(Reason.CLONE_SUSPECTED)
                alerts.append(
                    LocationAlert(
                        Reason.CLONE_SUSPECTED,
                        "inconsistent-records",
                        ueid,
                        {"records": [_describe(s.digest, s.record) for s, _ in disks]},
                    )
                )
            elif relation.contained:
                placement = "inside"
            elif relation.disjoint:
                placement = "outside"
            else:
                placement = "unverified"
        if placement == "outside":
            reasons.add(LocationReason.LOCATION_OUTSIDE_REGION)
        elif placement == "unverified":
            reasons.add(LocationReason.LOCATION_UNVERIFIED)
    return LocationFindings(
        tuple(sorted(reasons)), tuple(alerts), tuple(grown), relation, placement
    )
