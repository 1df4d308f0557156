"""Location verification in a verifier node: the node as a timing landmark.

:class:`LocationVerifier` is the mechanism's verifier part and a
:class:`~attest.mechanism.SessionPart`. For each round of a live session:

1. after the chip's EVIDENCE, :meth:`~LocationVerifier.pings` records the session as open (one
   transaction that also returns the other nodes' open sessions of the chip) and says how many
   PINGs to send (``[location] pings``; none while ``interval_s`` has not passed since this
   landmark last measured the chip);
2. the node's driver sends them and times each PONG (attest/node/server.py);
3. :meth:`~LocationVerifier.load_session` reads the chip's recent records (each checked against
   its landmark's certificate) and the chip's licensed region;
4. :meth:`~LocationVerifier.appraise` (pure: Ed25519 signing is deterministic) judges the
   PONGs with the device key the core used, turns the valid ones into this round's signed
   record and runs the appraisal of attest.location.appraisal — only for Evidence whose
   signature the core verified;
5. :meth:`~LocationVerifier.steps` stores the record in the appraisal's own transaction (or,
   with a separate ``[location] database``, :meth:`~LocationVerifier.conclude` does right
   after it, before the RESULT); ``conclude`` logs the alerts;
6. :meth:`~LocationVerifier.closed` deletes the session's row when the connection ends.

The node's ``[location]`` configuration section (:class:`LocationSection`) turns it on.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from attest.errors import AttestError, ConfigError
from attest.identity import VerifierIdentity
from attest.keys import PublicKey
from attest.location.appraisal import (
    LocationAlert,
    LocationFindings,
    LocationPolicy,
    Measurement,
    OpenSession,
    RecordRefused,
    StoredRecord,
    appraise_location,
    judge_pings,
    measure,
    open_record,
)
from attest.location.geometry import Place, Region, read_regions
from attest.location.messages import LocationRecord, record_digest
from attest.location.tables import LocationTables
from attest.mechanism import (
    Conclusion,
    Findings,
    LiveSession,
    NodeContext,
    SessionPart,
    TimedPing,
)
from attest.messages.revocation import Revocations
from attest.protocol.machine import MAX_PINGS_PER_ROUND
from attest.store.base import Database, Step, Store
from attest.verify.chain import TrustAnchors
from attest.verify.core import Appraisal, Verdict

log = logging.getLogger("attest.node.location")

#: alert keys remembered so that each alert is logged once per node run
_MAX_ALERTED = 100_000
#: parsed stored records kept in memory (by digest)
_MAX_CACHED = 50_000


@dataclass(frozen=True, slots=True)
class LocationSection:
    """Location verification: this node is a timing landmark (PINGs after each EVIDENCE)."""

    #: time chips' answers and sign location records
    enabled: bool = False
    #: where this landmark is: "latitude, longitude" in degrees (WGS84), e.g. "3.139, 101.687"
    position: str = ""
    #: PINGs per measurement (the least round trip counts)
    pings: int = 30
    #: processing time subtracted from the least round trip, in nanoseconds: at most what the
    #: fastest genuine chip and this node's own stack take (see `attest bench location`)
    allowance_ns: int = 50_000
    #: measure a chip at most this often, in seconds (0: every round)
    interval_s: int = 0
    #: GeoJSON FeatureCollection of licensed regions ("" for none)
    regions_file: str = ""
    #: the region of chips the regions file does not list ("" for none: not judged)
    default_region: str = ""
    #: how fast hardware can be carried, km/h (impossible travel; not the speed of light)
    max_speed_kmh: float = 1000.0
    #: how long a record counts, in seconds
    window_s: int = 86400
    #: an open-session row lapses this long after its last round, in seconds
    session_ttl_s: int = 60
    #: a database file the landmarks of one deployment share ("" for the node's own)
    database: str = ""


def parse_position(text: str) -> Place:
    try:
        lat, lon = (float(x) for x in text.split(","))
        return Place(lat, lon)
    except ValueError:
        raise ConfigError(
            f"location.position {text!r}: expected 'latitude, longitude' in degrees"
        ) from None


def check_section(s: LocationSection) -> None:
    """Location settings (checked even when disabled, so a typo never waits)."""
    if s.enabled or s.position:
        parse_position(s.position)
    if not 1 <= s.pings <= MAX_PINGS_PER_ROUND:
        raise ConfigError(f"location.pings must be 1..{MAX_PINGS_PER_ROUND}")
    if not 0 <= s.allowance_ns < 10**9:
        raise ConfigError("location.allowance_ns must be 0..999999999")
    if s.interval_s < 0 or s.window_s < 1 or s.session_ttl_s < 1:
        raise ConfigError("location: interval_s >= 0, window_s and session_ttl_s >= 1")
    if not 0 < s.max_speed_kmh < 1e6 or math.isnan(s.max_speed_kmh):
        raise ConfigError("location.max_speed_kmh must be > 0")
    if s.default_region and not s.regions_file:
        raise ConfigError("location.default_region needs a regions_file")


@dataclass(frozen=True, slots=True)
class LocationView:
    """What the appraisal of one round sees."""

    ueid: bytes
    #: this round's timed PINGs
    pings: tuple[TimedPing, ...] = ()
    #: other nodes' open sessions of the chip
    concurrent: tuple[OpenSession, ...] = ()
    #: the chip's stored records within the window, checked
    stored: tuple[StoredRecord, ...] = ()
    #: the enrolled device key (None: not enrolled yet)
    device_key: PublicKey | None = None
    #: the chip's licensed region (None: not judged)
    region: Region | None = None


@dataclass(frozen=True, slots=True)
class LocationReview:
    """The detail of the findings: this round's record and what the appraisal concluded."""

    ueid: bytes
    record: LocationRecord | None
    findings: LocationFindings
    measurement: Measurement = field(default_factory=Measurement)
    #: the signed record
    token: bytes | None = None
    #: alerts not logged before on this node
    fresh: tuple[LocationAlert, ...] = ()


class LocationVerifier(SessionPart):
    """The landmark (see the module doc)."""

    def __init__(
        self,
        *,
        identity: VerifierIdentity,
        anchors: TrustAnchors,
        store: Store,
        section: LocationSection,
        regions: dict[str, tuple[Region, frozenset[bytes]]] | None = None,
        db: Database | None = None,
        metrics: Any = None,
    ) -> None:
        self.identity = identity
        self.anchors = anchors
        self.store = store
        self.section = section
        self.position = parse_position(section.position)
        self.regions = regions or {}
        if section.default_region and section.default_region not in self.regions:
            raise ConfigError(f"location.default_region {section.default_region!r} is unknown")
        self._own_db = db is None or db is store.db
        self.tables = LocationTables(store.db if db is None else db)
        self.policy = LocationPolicy(section.max_speed_kmh / 3.6, section.window_s * 1000)
        #: one node of possibly several sharing the tables (processes of one verifier too)
        self.node = f"{identity.verifier_id}/{os.urandom(4).hex()}"
        self.clock_resolution_ns = max(
            1, math.ceil(time.get_clock_info("perf_counter").resolution * 1e9)
        )
        #: (chip, session) -> the other nodes' sessions open at its EVIDENCE, and that time
        self._concurrent: dict[tuple[bytes, bytes], tuple[tuple[OpenSession, ...], int]] = {}
        self._last_measured: dict[bytes, int] = {}
        self._parsed: dict[bytes, LocationRecord | None] = {}
        self._alerted: set[tuple[Any, ...]] = set()
        #: the newest alerts this node raised (for summaries; each is also logged)
        self.recent_alerts: deque[LocationAlert] = deque(maxlen=1000)
        #: the round trips of recent valid PONGs, ns (calibration: `attest bench location`)
        self.samples: deque[int] = deque(maxlen=100_000)
        self._alerts: Any = None
        self._records: Any = None
        if metrics is not None:
            from prometheus_client import Counter

            self._alerts = Counter(
                "attest_location_alerts",
                "Clone signals of location verification (impossible travel, concurrent sessions)",
                ["alert"],
                registry=metrics,
            )
            self._records = Counter(
                "attest_location_records", "Location records signed", registry=metrics
            )

    # -- policy ----------------------------------------------------------------------------
    def region_of(self, ueid: bytes) -> Region | None:
        """The chip's licensed region: the region that lists it, else the default."""
        for region, chips in self.regions.values():
            if ueid in chips:
                return region
        if self.section.default_region:
            return self.regions[self.section.default_region][0]
        return None

    # -- the live session (SessionPart) ----------------------------------------------------
    def pings(self, ueid: bytes, session_id: bytes, *, now_ms: int) -> int:
        others = self.tables.open_session(
            ueid, self.node, session_id, now_ms, self.section.session_ttl_s * 1000
        )
        self._concurrent[(ueid, session_id)] = (tuple(others), now_ms)
        last = self._last_measured.get(ueid)
        if last is not None and now_ms - last < self.section.interval_s * 1000:
            return 0
        return self.section.pings

    def load_session(self, ueid: bytes, session: LiveSession) -> LocationView:
        # A session open at another node when the chip sent EVIDENCE, and still open after
        # the PINGs: an honest chip that just closed a session elsewhere (the other node may
        # take a moment to hear of it) is not two chips.
        seen, at_ms = self._concurrent.get((ueid, session.session_id), ((), 0))
        if seen:
            still = self.tables.live_sessions(ueid, self.node, at_ms)
            seen = tuple(o for o in seen if (o.node, o.session_id) in still)
        return self._view(ueid, session.pings, seen)

    def closed(self, ueid: bytes, session_id: bytes) -> None:
        self._concurrent.pop((ueid, session_id), None)
        self.tables.close_session(ueid, self.node, session_id)

    # -- the VerifierPart ------------------------------------------------------------------
    def load(self, ueid: bytes) -> LocationView:
        return self._view(ueid, (), ())

    def _view(
        self, ueid: bytes, pings: tuple[TimedPing, ...], concurrent: tuple[OpenSession, ...]
    ) -> LocationView:
        stored = []  # the newest few; the appraisal applies the window at its own now_ms
        for digest, token, cert in self.tables.records_of(ueid, 0):
            record = self._checked(digest, token, cert)
            if record is not None and record.ueid == ueid:
                stored.append(StoredRecord(digest, record))
        chip = self.store.get_chip(ueid)
        return LocationView(
            ueid,
            pings,
            concurrent,
            tuple(stored),
            chip.state.device_key if chip is not None else None,
            self.region_of(ueid),
        )

    def _checked(self, digest: bytes, token: bytes, cert: bytes) -> LocationRecord | None:
        """A stored record, verified against its landmark's certificate (memoised)."""
        if digest in self._parsed:
            return self._parsed[digest]
        record: LocationRecord | None = None
        try:
            if record_digest(token) == digest:
                record = open_record(token, cert, self.anchors)
        except RecordRefused as exc:
            log.error(
                "stored location record rejected",
                extra={
                    "fields": {
                        "event": "location_record_rejected",
                        "record": digest.hex(),
                        "error": str(exc),
                    }
                },
            )
        if len(self._parsed) > _MAX_CACHED:
            self._parsed.clear()
        self._parsed[digest] = record
        return record

    def appraise(
        self, view: LocationView, core: Appraisal, *, revocations: Revocations, now_ms: int
    ) -> Findings[LocationReview]:
        ev = core.evidence
        if ev is None or core.ueid is None:  # nothing authentic: nothing to judge or record
            return Findings()
        key = core.new_state.device_key if core.new_state is not None else view.device_key
        measurement = Measurement()
        record = None
        if key is not None and view.pings:
            measurement = judge_pings(
                view.pings, device_key=key, ueid=core.ueid, landmark_id=self.identity.verifier_id
            )
            record = measure(
                measurement,
                landmark_id=self.identity.verifier_id,
                position=self.position,
                ueid=core.ueid,
                session_nonce=ev.nonce,
                now_ms=now_ms,
                allowance_ns=self.section.allowance_ns,
                clock_resolution_ns=self.clock_resolution_ns,
            )
        records = list(view.stored)
        token = None
        if record is not None:
            token = record.sign(self.identity.key)
            records.append(StoredRecord(record_digest(token), record))
        findings = appraise_location(
            ueid=core.ueid,
            records=records,
            concurrent=view.concurrent,
            region=view.region,
            policy=self.policy,
            now_ms=now_ms,
            invalid_pings=measurement.invalid,
            node=self.node,
        )
        fresh = tuple(a for a in findings.alerts if a.key not in self._alerted)
        review = LocationReview(core.ueid, record, findings, measurement, token, fresh)
        return Findings(findings.reasons, review)

    def steps(self, findings: Findings[LocationReview], verdict: Verdict) -> Sequence[Step]:
        review = findings.detail
        if review is None or review.record is None or review.token is None:
            return ()
        if not self._own_db:
            return ()  # a separate database: written in conclude, before the RESULT
        return (self._record_step(review.record, review.token),)

    def _record_step(self, record: LocationRecord, token: bytes) -> Step:
        return LocationTables.record_step(
            record_digest(token),
            record.ueid,
            record.landmark_id,
            record.issued_at * 1000,
            token,
            self.identity.cert,
        )

    def conclude(
        self, findings: Findings[LocationReview], verdict: Verdict, *, now_ms: int
    ) -> Conclusion:
        review = findings.detail
        if review is None:
            return Conclusion()
        logged: dict[str, Any] = {}
        if review.record is not None and review.token is not None:
            if not self._own_db:
                try:
                    self.tables.db.write(self._record_step(review.record, review.token))
                except AttestError as exc:  # the verdict stands; the record is lost
                    log.error(
                        "location record could not be stored",
                        extra={"fields": {"event": "store_error", "error": str(exc)}},
                    )
            self._last_measured[review.ueid] = now_ms
            self.samples.extend(review.measurement.valid_rtts_ns)
            if self._records is not None:
                self._records.inc()
            logged["location_bound_m"] = review.record.bound_m
        if review.findings.placement:
            logged["location"] = review.findings.placement
        if len(self._alerted) > _MAX_ALERTED:
            self._alerted.clear()
        for alert in review.fresh:
            self._alerted.add(alert.key)
            self.recent_alerts.append(alert)
            if self._alerts is not None:
                self._alerts.labels(alert=alert.kind).inc()
            log.warning(
                "location alert", extra={"fields": {"event": "location_alert", **alert.as_json()}}
            )
        return Conclusion(log=logged, detail=review)

    # -- for operators and summaries -------------------------------------------------------
    def latest(self, ueid: bytes) -> list[StoredRecord]:
        """The chip's newest record of each landmark within the window."""
        from attest.location.appraisal import latest_per_landmark

        return latest_per_landmark(self._view(ueid, (), ()).stored)


def build(ctx: NodeContext) -> LocationVerifier | None:
    """The node's landmark if ``[location] enabled``."""
    section: LocationSection = ctx.section
    if not section.enabled:
        return None
    regions = None
    if section.regions_file:
        path = ctx.resolve(section.regions_file)
        try:
            regions = read_regions(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the regions: {exc.strerror}") from None
    db: Database | None = None
    if section.database:
        from attest.store.sqlite_db import SqliteDatabase

        db = SqliteDatabase(ctx.resolve(section.database))
    return LocationVerifier(
        identity=ctx.identity,
        anchors=ctx.anchors,
        store=ctx.store,
        section=section,
        regions=regions,
        db=db,
        metrics=ctx.metrics,
    )
