"""Re-verify ``vectors/location.json`` (location verification) from its JSON alone.

Like :mod:`attest.testvectors.check`, this imports nothing from the generator or the test world:
it rebuilds keys, certificates, records, regions and the policy from the JSON and runs the
implementation. Four groups (SPEC §16.10):

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
from attest.testvectors.format import judged
from attest.verify.chain import TrustAnchors
from attest.verify.reasons import Tier, tier_of

LOCATION_FILE = "location.json"
LOCATION_ALGORITHM = "attest-location"

_Run = Callable[[dict[str, Any]], list[str]]


def _anchors(g: dict[str, Any]) -> TrustAnchors:
    ta = g["trustAnchors"]
    return TrustAnchors(ta["authorityId"], PublicKey(bytes.fromhex(ta["authorityKey"])))


#: the expected-result fields of each group type (SPEC §16.10)
LOCATION_OUTPUTS: dict[str, tuple[str, ...]] = {
    "PingResponseVerify": ("result", "reason"),
    "LocationMeasure": ("result", "rttMinNs", "boundM", "surfaceRadiusM"),
    "LocationRecordVerify": (
        "result",
        "error",
        "landmarkId",
        "issuedAt",
        "ueid",
        "position",
        "samples",
        "rttMinNs",
        "allowanceNs",
        "boundM",
    ),
    "LocationAppraisal": ("result", "tier", "reasons", "placement", "alerts"),
}
#: the SPEC sections each group type tests
LOCATION_SECTIONS: dict[str, tuple[str, ...]] = {
    "PingResponseVerify": ("15.2",),
    "LocationMeasure": ("15.3", "15.4"),
    "LocationRecordVerify": ("15.3",),
    "LocationAppraisal": ("15.5", "15.6"),
}

_Compute = Callable[[dict[str, Any]], dict[str, Any]]


def _ping(t: dict[str, Any]) -> dict[str, Any]:
    m = judge_pings(
        [TimedPing(bytes.fromhex(t["nonce"]), bytes.fromhex(t["response"]), t["rttNs"])],
        device_key=PublicKey(bytes.fromhex(t["deviceKey"])),
        ueid=bytes.fromhex(t["ueid"]),
        landmark_id=t["landmarkId"],
    )
    if m.valid_rtts_ns:
        return {"result": "valid", "reason": None}
    return {"result": "invalid", "reason": "LOCATION_PING_INVALID"}


def _measure(t: dict[str, Any]) -> dict[str, Any]:
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
    if record is None:
        return {"result": "invalid", "rttMinNs": None, "boundM": None, "surfaceRadiusM": None}
    return {
        "result": "valid",
        "rttMinNs": record.rtt_min_ns,
        "boundM": record.bound_m,
        "surfaceRadiusM": surface_radius_m(record.bound_m),
    }


def _record(anchors: TrustAnchors) -> _Compute:
    def compute(t: dict[str, Any]) -> dict[str, Any]:
        try:
            r = open_record(bytes.fromhex(t["record"]), bytes.fromhex(t["landmarkCert"]), anchors)
        except RecordRefused as exc:
            fields = LOCATION_OUTPUTS["LocationRecordVerify"][2:]
            return {"result": "invalid", "error": exc.why, **dict.fromkeys(fields)}
        return {
            "result": "valid",
            "error": None,
            "landmarkId": r.landmark_id,
            "issuedAt": r.issued_at,
            "ueid": r.ueid.hex(),
            "position": list(r.position),
            "samples": r.samples,
            "rttMinNs": r.rtt_min_ns,
            "allowanceNs": r.allowance_ns,
            "boundM": r.bound_m,
        }

    return compute


def _appraisal(anchors: TrustAnchors, g: dict[str, Any]) -> _Compute:
    regions = {name: region for name, (region, _) in regions_from_geojson(g["regions"]).items()}

    def compute(t: dict[str, Any]) -> dict[str, Any]:
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
        return {
            "result": "invalid" if tier is Tier.CONTRAINDICATED else "valid",
            "tier": tier.name.lower(),
            "reasons": [r.name for r in f.reasons],
            "placement": f.placement,
            "alerts": sorted(a.kind for a in f.alerts),
        }

    return compute


def location_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a location vector file."""
    for g in doc["testGroups"]:
        kind = g["type"]
        if kind == "PingResponseVerify":
            yield g, judged(g, _ping)
        elif kind == "LocationMeasure":
            yield g, judged(g, _measure)
        elif kind == "LocationRecordVerify":
            yield g, judged(g, _record(_anchors(g)))
        elif kind == "LocationAppraisal":
            yield g, judged(g, _appraisal(_anchors(g), g))
        else:
            raise ValueError(f"unknown location group type {kind!r}")
