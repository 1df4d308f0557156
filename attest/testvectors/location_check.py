"""Re-verify ``vectors/location.json`` (location verification) from its JSON alone.

Like :mod:`attest.testvectors.check`, this imports nothing from the generator or the test world:
it rebuilds keys, certificates, records, regions and the policy from the JSON and runs the
implementation. Four groups (SPEC §16.8):

* ``PingResponseVerify`` — one PONG judged against its PING (signature, nonce, chip, landmark);
* ``LocationMeasure`` — round trips into the record's numbers: the rounding of every step;
* ``LocationRecordVerify`` — a stored record checked against its landmark's certificate;
* ``LocationAppraisal`` — records, open sessions and a licensed region into reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attest.keys import PublicKey
from attest.location.appraisal import (
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
from attest.location.geometry import Place, regions_from_geojson, surface_radius_m
from attest.location.messages import record_digest
from attest.mechanism import TimedPing
from attest.verify.chain import TrustAnchors
from attest.verify.reasons import Tier, tier_of

LOCATION_FILE = "location.json"
LOCATION_ALGORITHM = "attest-location"

_Run = Callable[[dict[str, Any]], list[str]]


def _anchors(g: dict[str, Any]) -> TrustAnchors:
    ta = g["trustAnchors"]
    return TrustAnchors(ta["authorityId"], PublicKey(bytes.fromhex(ta["authorityKey"])))


def _expect(problems: list[str], what: str, got: Any, want: Any) -> None:
    if got != want:
        problems.append(f"{what} {got!r}, expected {want!r}")


def _ping_test() -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        m = judge_pings(
            [TimedPing(bytes.fromhex(t["nonce"]), bytes.fromhex(t["response"]), t["rttNs"])],
            device_key=PublicKey(bytes.fromhex(t["deviceKey"])),
            ueid=bytes.fromhex(t["ueid"]),
            landmark_id=t["landmarkId"],
        )
        result = "valid" if m.valid_rtts_ns else "invalid"
        problems: list[str] = []
        _expect(problems, "result", result, t["result"])
        _expect(
            problems, "reason", None if m.valid_rtts_ns else "LOCATION_PING_INVALID", t["reason"]
        )
        return problems

    return run


def _measure_test() -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        record = measure(
            Measurement(tuple(t["rttsNs"])),
            landmark_id="landmark",
            position=Place(0.0, 0.0),
            ueid=b"\x01" + bytes(16),
            session_nonce=bytes(32),
            now_ms=0,
            allowance_ns=t["allowanceNs"],
            clock_resolution_ns=t["clockResolutionNs"],
        )
        problems: list[str] = []
        _expect(problems, "result", "invalid" if record is None else "valid", t["result"])
        if record is not None:
            _expect(problems, "rttMinNs", record.rtt_min_ns, t["rttMinNs"])
            _expect(problems, "boundM", record.bound_m, t["boundM"])
            _expect(
                problems, "surfaceRadiusM", surface_radius_m(record.bound_m), t["surfaceRadiusM"]
            )
        return problems

    return run


def _record_test(anchors: TrustAnchors) -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        try:
            r = open_record(bytes.fromhex(t["record"]), bytes.fromhex(t["landmarkCert"]), anchors)
        except RecordRefused as exc:
            _expect(problems, "result", "invalid", t["result"])
            _expect(problems, "error", exc.why, t["error"])
            return problems
        _expect(problems, "result", "valid", t["result"])
        if not problems:
            got = {
                "landmarkId": r.landmark_id,
                "issuedAt": r.issued_at,
                "ueid": r.ueid.hex(),
                "position": list(r.position),
                "samples": r.samples,
                "rttMinNs": r.rtt_min_ns,
                "allowanceNs": r.allowance_ns,
                "boundM": r.bound_m,
            }
            for k, v in got.items():
                _expect(problems, k, v, t[k])
        return problems

    return run


def _appraisal_test(anchors: TrustAnchors, g: dict[str, Any]) -> _Run:
    regions = {name: region for name, (region, _) in regions_from_geojson(g["regions"]).items()}

    def run(t: dict[str, Any]) -> list[str]:
        records = []
        for r in t["records"]:
            token = bytes.fromhex(r["record"])
            records.append(
                StoredRecord(
                    record_digest(token),
                    open_record(token, bytes.fromhex(r["landmarkCert"]), anchors),
                )
            )
        concurrent = [
            OpenSession(c["node"], bytes.fromhex(c["sessionId"]), c["openedMs"], c["seenMs"])
            for c in t["concurrent"]
        ]
        f = appraise_location(
            ueid=bytes.fromhex(t["ueid"]),
            records=records,
            concurrent=concurrent,
            region=None if t["region"] is None else regions[t["region"]],
            policy=LocationPolicy(t["maxSpeedMps"], t["windowMs"]),
            now_ms=t["nowMs"],
            invalid_pings=t["invalidPings"],
            node="this-node",
        )
        tier = tier_of(f.reasons)
        problems: list[str] = []
        _expect(
            problems, "result", "invalid" if tier is Tier.CONTRAINDICATED else "valid", t["result"]
        )
        _expect(problems, "tier", tier.name.lower(), t["tier"])
        _expect(problems, "reasons", [r.name for r in f.reasons], t["reasons"])
        _expect(problems, "placement", f.placement, t["placement"])
        _expect(problems, "alerts", sorted(a.kind for a in f.alerts), t["alerts"])
        return problems

    return run


def location_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a location vector file."""
    for g in doc["testGroups"]:
        kind = g["type"]
        if kind == "PingResponseVerify":
            yield g, _ping_test()
        elif kind == "LocationMeasure":
            yield g, _measure_test()
        elif kind == "LocationRecordVerify":
            yield g, _record_test(_anchors(g))
        elif kind == "LocationAppraisal":
            yield g, _appraisal_test(_anchors(g), g)
        else:
            raise ValueError(f"unknown location group type {kind!r}")
