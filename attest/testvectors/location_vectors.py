"""Location verification vectors (vectors/location.json) from the deterministic world.

PING answers (valid and every way one can be wrong), the rounding of a measurement into a
record, records checked against their landmark's certificate, and the pure appraisal of
records into reasons: inside, unverified and outside a licensed region, Johor's strait,
smuggling, a relay, impossible travel and two open sessions (CLONE_SUSPECTED). As for the
other families, each case states the outcome it is written for and generation fails if the
implementation disagrees. Also the helpers the tests share: landmarks of the world and records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from attest.codec.cbor import encode
from attest.codec.cose import parse_sign1, sign1
from attest.identity import Authority, VerifierIdentity
from attest.location import claims as LC
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
from attest.location.messages import (
    C_M_PER_S,
    LOCATION_RECORD_CONTENT_TYPE,
    LocationRecord,
    PingResponse,
    record_digest,
)
from attest.location.places import CITIES, sample_regions
from attest.location.reasons import LocationReason
from attest.location.sim import PathModel
from attest.mechanism import TimedPing
from attest.messages import claims as C
from attest.messages.content import ContentType
from attest.testvectors.format import VectorError, annotate, vector_document
from attest.testvectors.location_check import (
    LOCATION_ALGORITHM,
    LOCATION_FILE,
    LOCATION_OUTPUTS,
    LOCATION_SECTIONS,
)
from attest.testvectors.world import (
    AUTHORITY_ID,
    CERTIFIED_S,
    NOW_MS,
    NOW_S,
    World,
    vector_key,
    vector_nonce,
    vector_ueid,
)
from attest.verify.reasons import Reason, Tier, tier_of

__all__ = ["LOCATION_FILE", "landmark", "location_document", "signed_record"]

#: the landmarks of the vectors: verifier id -> (region, city); kl-1 and sg-1 are the world's
LANDMARKS: dict[str, tuple[str, str]] = {
    "kl-1": ("MY-KL", "Kuala Lumpur"),
    "sg-1": ("SG", "Singapore"),
    "jb-1": ("MY-JH", "Johor Bahru"),
    "bkk-1": ("TH", "Bangkok"),
    "jkt-1": ("ID", "Jakarta"),
    "mnl-1": ("PH", "Manila"),
}
#: the processing allowance of every record here (the simulation's fastest answer)
ALLOWANCE_NS = 50_000
CHIP = "hx100-a"
UEID = vector_ueid(CHIP)
#: the simulation without jitter: each record's bound is exactly 2.25 x the distance
MODEL = PathModel(jitter_mean_ns=0, processing_ns=ALLOWANCE_NS)
#: a point of the Johor causeway 0.7 km north of the strait boundary
CAUSEWAY = Place(1.452, 103.768)

LOCATION_HEADER = [
    "Location verification (SPEC: Location verification): the chip's PING answers, the",
    "rounding of round trips into a record, records checked against their landmark, and the",
    "appraisal of records into reason codes 160-162 and CLONE_SUSPECTED (27).",
    "PingResponseVerify: judge `response` as the answer of the chip (`deviceKey`, `ueid`) to a",
    "PING with `nonce` from landmark `landmarkId`.",
    "LocationMeasure: the record of valid round trips `rttsNs` (min, + `clockResolutionNs`),",
    "its bound ceil((rttMin - allowanceNs) x c / 2) and the surface radius it implies.",
    "LocationRecordVerify: open `record` with `landmarkCert` under the trust anchors.",
    "LocationAppraisal: appraise the chip's `records` (each opened as above), the other nodes'",
    "open `concurrent` sessions and `invalidPings` at `nowMs` against `region` of `regions`.",
    "Keys and identities are derived from public labels: never use them outside tests.",
]
LOCATION_NOTES = {
    "Valid": "Accepted.",
    "Refused": "Must be refused; `reason` or `error` names the check.",
    "DomainSeparation": "The right claims signed as another message type.",
    "Boundary": "A value at a rounding or range boundary.",
    "Inside": "The feasible region lies inside the chip's licensed region: proven.",
    "Unverified": "The chip cannot prove it is inside (warning, no licence renewal).",
    "Outside": "The feasible region lies entirely outside the licensed region.",
    "Johor": "Johor Bahru and Singapore, a strait apart: what a chip there can prove.",
    "Smuggled": "A chip licensed for Malaysia taken to Ho Chi Minh City.",
    "Relay": "A box near a landmark passes PINGs on to the far chip: it only adds delay.",
    "Clone": "One device key in two places (CLONE_SUSPECTED).",
    "Simulated": "Round trips from the simulation: 1.5 x the geodesic at 200 km/ms, no jitter.",
    "Idealised": "Bounds 5% over the true distance, tighter than networks give.",
}


def landmark(w: World, verifier_id: str) -> VerifierIdentity:
    """A landmark of the vectors: the world's verifier, or one certified like them."""
    known = w.verifiers.get(verifier_id)
    if known is not None:
        return known
    key = vector_key("verifier/" + verifier_id)
    region = LANDMARKS[verifier_id][0]
    cert = w.authority.certify_verifier(verifier_id, region, key.public_key, now_s=CERTIFIED_S)
    return VerifierIdentity(verifier_id, region, key, cert)


def place_of(verifier_id: str) -> Place:
    return CITIES[LANDMARKS[verifier_id][1]]


def rtt_for_bound(bound_m: int) -> int:
    """A least round trip (with the allowance) whose bound is at least ``bound_m``."""
    return ALLOWANCE_NS + -(-bound_m * 2_000_000_000 // C_M_PER_S)


def signed_record(
    w: World,
    verifier_id: str,
    *,
    rtt_ns: int,
    at_s: int,
    ueid: bytes = UEID,
    samples: int = 30,
    label: str = "",
) -> tuple[bytes, bytes]:
    """(record token, landmark certificate) of a measurement by ``verifier_id``."""
    lm = landmark(w, verifier_id)
    record = LocationRecord.measured(
        landmark_id=verifier_id,
        issued_at=at_s,
        session_nonce=vector_nonce(f"location/{verifier_id}/{at_s}/{label}"),
        ueid=ueid,
        position=place_of(verifier_id).microdegrees(),
        samples=samples,
        rtt_min_ns=rtt_ns,
        allowance_ns=ALLOWANCE_NS,
    )
    return record.sign(lm.key), lm.cert


# -- PingResponseVerify -------------------------------------------------------------------------
def _ping_cases(w: World) -> list[dict[str, Any]]:
    key = w.device_key(CHIP)
    other_key = w.device_key("hx100-b")
    nonce = vector_nonce("location/ping")
    good = PingResponse("kl-1", nonce, UEID)
    payload = parse_sign1(good.sign(key)).payload
    token = good.sign(key)
    cases: list[tuple[str, bytes, bool, tuple[str, ...]]] = [
        ("the chip's answer to this PING", token, True, ("Valid",)),
        ("the answer to another nonce",
         PingResponse("kl-1", vector_nonce("location/other"), UEID).sign(key), False,
         ("Refused",)),
        ("addressed to another landmark", PingResponse("sg-1", nonce, UEID).sign(key), False,
         ("Refused",)),
        ("names another chip (signed with this chip's key)",
         PingResponse("kl-1", nonce, vector_ueid("hx100-b")).sign(key), False, ("Refused",)),
        ("signed by another chip's key", good.sign(other_key), False, ("Refused",)),
        ("one signature bit flipped", token[:-1] + bytes([token[-1] ^ 1]), False, ("Refused",)),
        ("the right claims signed as Evidence",
         sign1(key, ContentType.EVIDENCE, payload), False, ("Refused", "DomainSeparation")),
        ("validly signed with an unknown claim",
         sign1(key, good.CONTENT_TYPE, encode({**good.to_claims(), C.IAT: NOW_S})), False,
         ("Refused",)),
    ]  # fmt: skip
    out = []
    for comment, response, valid, flags in cases:
        m = judge_pings(
            [TimedPing(nonce, response, 100_000)],
            device_key=key.public_key,
            ueid=UEID,
            landmark_id="kl-1",
        )
        if bool(m.valid_rtts_ns) != valid:
            raise VectorError(f"{comment!r}: judged {m}, written as valid={valid}")
        out.append(
            {
                "comment": comment,
                "flags": list(flags),
                "deviceKey": key.public_key.raw.hex(),
                "ueid": UEID.hex(),
                "landmarkId": "kl-1",
                "nonce": nonce.hex(),
                "rttNs": 100_000,
                "response": response.hex(),
                "result": "valid" if valid else "invalid",
                "reason": None if valid else LocationReason.LOCATION_PING_INVALID.name,
            }
        )
    return out


# -- LocationMeasure -----------------------------------------------------------------------------
def _measure_cases() -> list[dict[str, Any]]:
    cases: list[tuple[str, list[int], int, int, tuple[str, ...]]] = [
        ("one answer, 100 us over the allowance", [150_000], 50_000, 1, ("Valid",)),
        ("the least of several counts", [900_000, 150_000, 151_000, 2_000_000], 50_000, 1,
         ("Valid",)),
        ("a coarse clock: one tick (1 us) is added", [150_000], 50_000, 1000,
         ("Valid", "Boundary")),
        ("one nanosecond of flight: 0.15 m, rounded up to 1 m", [50_000], 50_000, 1,
         ("Valid", "Boundary")),
        ("faster than the allowance: bound 0 (the allowance is a calibration, SPEC)",
         [10_000], 50_000, 1, ("Valid", "Boundary")),
        ("exactly one second of flight: c / 2 metres, no rounding", [1_000_049_999], 50_000, 1,
         ("Valid", "Boundary")),
        ("a bound beyond 12 000 km gives no surface radius", [90_000_000], 50_000, 1,
         ("Valid", "Boundary")),
        ("2.3 ms: the surface radius exceeds the straight-line bound", [2_300_000], 50_000, 1,
         ("Valid",)),
        ("no valid answer: no record", [], 50_000, 1, ("Refused",)),
    ]  # fmt: skip
    out = []
    for comment, rtts, allowance, resolution, flags in cases:
        record = measure(
            Measurement(tuple(rtts)),
            landmark_id="landmark",
            position=Place(0.0, 0.0),
            ueid=b"\x01" + bytes(16),
            session_nonce=bytes(32),
            now_ms=0,
            allowance_ns=allowance,
            clock_resolution_ns=resolution,
        )
        if (record is None) != ("Refused" in flags):
            raise VectorError(f"{comment!r}: record {record}")
        t: dict[str, Any] = {
            "comment": comment,
            "flags": list(flags),
            "rttsNs": rtts,
            "allowanceNs": allowance,
            "clockResolutionNs": resolution,
            "result": "invalid" if record is None else "valid",
        }
        if record is not None:
            t.update(
                rttMinNs=record.rtt_min_ns,
                boundM=record.bound_m,
                surfaceRadiusM=surface_radius_m(record.bound_m),
            )
        out.append(t)
    return out


# -- LocationRecordVerify ------------------------------------------------------------------------
def _record_cases(w: World) -> list[dict[str, Any]]:
    at = NOW_S - 60
    kl, kl_cert = signed_record(w, "kl-1", rtt_ns=rtt_for_bound(20_000), at_s=at)
    mnl, mnl_cert = signed_record(w, "mnl-1", rtt_ns=rtt_for_bound(15_000), at_s=at)
    impostor = Authority(AUTHORITY_ID, vector_key("impostor-authority"))
    fake_key = vector_key("verifier/kl-1-fake")
    fake_cert = impostor.certify_verifier("kl-1", "MY-KL", fake_key.public_key, now_s=CERTIFIED_S)
    parsed = LocationRecord.from_payload(parse_sign1(kl).payload)
    sg = landmark(w, "sg-1")
    inconsistent = dataclasses.replace(parsed, bound_m=parsed.bound_m - 1)
    malformed = {**parsed.to_claims(), LC.HEM_LOC_SAMPLES: 0}
    cases: list[tuple[str, bytes, bytes, str | None, tuple[str, ...]]] = [
        ("a record of kl-1", kl, kl_cert, None, ("Valid",)),
        ("a record of mnl-1", mnl, mnl_cert, None, ("Valid",)),
        ("the certificate is an impostor authority's", parsed.sign(fake_key), fake_cert,
         "CERT_INVALID", ("Refused",)),
        ("signed by sg-1, presented with kl-1's certificate", parsed.sign(sg.key), kl_cert,
         "SIGNATURE_INVALID", ("Refused",)),
        ("signed by sg-1 in kl-1's name, with sg-1's certificate", parsed.sign(sg.key),
         sg.cert, "LANDMARK_MISMATCH", ("Refused",)),
        ("a bound one metre short of its round trip's", inconsistent.sign(landmark(w, "kl-1").key),
         kl_cert, "BOUND_INCONSISTENT", ("Refused", "Boundary")),
        ("one signature bit flipped", kl[:-1] + bytes([kl[-1] ^ 1]), kl_cert, "SIGNATURE_INVALID",
         ("Refused",)),
        ("the record's claims signed as a Challenge",
         sign1(landmark(w, "kl-1").key, ContentType.CHALLENGE, parse_sign1(kl).payload), kl_cert,
         "SIGNATURE_INVALID", ("Refused", "DomainSeparation")),
        ("validly signed, zero samples", sign1(landmark(w, "kl-1").key,
         LOCATION_RECORD_CONTENT_TYPE, encode(malformed)), kl_cert, "MALFORMED", ("Refused",)),
    ]  # fmt: skip
    out = []
    for comment, token, cert, error, flags in cases:
        t: dict[str, Any] = {
            "comment": comment,
            "flags": list(flags),
            "landmarkCert": cert.hex(),
            "record": token.hex(),
        }
        try:
            r = open_record(token, cert, w.anchors)
        except RecordRefused as exc:
            if exc.why != error:
                raise VectorError(f"{comment!r}: refused {exc.why}, written for {error}") from None
            t.update(result="invalid", error=error)
        else:
            if error is not None:
                raise VectorError(f"{comment!r}: accepted, written for {error}")
            t.update(
                result="valid",
                error=None,
                landmarkId=r.landmark_id,
                issuedAt=r.issued_at,
                ueid=r.ueid.hex(),
                position=list(r.position),
                samples=r.samples,
                rttMinNs=r.rtt_min_ns,
                allowanceNs=r.allowance_ns,
                boundM=r.bound_m,
            )
        out.append(t)
    return out


# -- LocationAppraisal ---------------------------------------------------------------------------
@dataclass
class _Appraise:
    comment: str
    #: (landmark, least round trip in ns, seconds before now)
    records: list[tuple[str, int, int]]
    region: str | None
    reasons: tuple[str, ...]
    placement: str
    flags: tuple[str, ...]
    alerts: tuple[str, ...] = ()
    concurrent: tuple[OpenSession, ...] = ()
    invalid_pings: int = 0
    window_s: int = 86400


def _sim(verifier_id: str, chip: Place, via: Place | None = None) -> int:
    """The simulated least round trip from landmark to chip (through ``via`` for a relay)."""
    lm = place_of(verifier_id)
    if via is None:
        return MODEL.rtt_ns(lm, chip)
    return MODEL.rtt_ns(lm, via) - MODEL.processing_ns + MODEL.rtt_ns(via, chip)


def _appraise_cases() -> list[_Appraise]:
    U, O, I = "unverified", "outside", "inside"  # noqa: E741
    UV, OUT = LocationReason.LOCATION_UNVERIFIED.name, LocationReason.LOCATION_OUTSIDE_REGION.name
    CLONE, BAD = Reason.CLONE_SUSPECTED.name, LocationReason.LOCATION_PING_INVALID.name
    hcmc, jb = CITIES["Ho Chi Minh City"], CITIES["Johor Bahru"]
    five = ("kl-1", "sg-1", "bkk-1", "jkt-1", "mnl-1")
    other = OpenSession("sg-1/0a0b0c0d", bytes.fromhex("11" * 16), NOW_MS - 5000, NOW_MS - 1000)
    return [
        _Appraise("chip in Kuala Lumpur: the KL landmark's 20 km fit inside MY",
                  [("kl-1", rtt_for_bound(20_000), 60)], "MY", (), I, ("Inside",)),
        _Appraise("the newest record of a landmark counts (an older loose one is superseded)",
                  [("kl-1", rtt_for_bound(900_000), 3600), ("kl-1", rtt_for_bound(20_000), 60)],
                  "MY", (), I, ("Inside",)),
        _Appraise("a KL bound of 400 km reaches Sumatra and Singapore",
                  [("kl-1", rtt_for_bound(400_000), 60)], "MY", (UV,), U, ("Unverified",)),
        _Appraise("chip in Manila: 20 km around Manila are all outside MY",
                  [("mnl-1", rtt_for_bound(20_000), 60)], "MY", (OUT,), O, ("Outside",)),
        _Appraise("smuggled to Ho Chi Minh City: five landmarks, none excludes Malaysia",
                  [(v, _sim(v, hcmc), 30) for v in five], "MY", (UV,), U,
                  ("Smuggled", "Simulated", "Unverified")),
        _Appraise("relay: a box 1 km from the KL landmark forwards to the chip in HCMC",
                  [("kl-1", _sim("kl-1", hcmc, via=Place(3.148, 101.687)), 30)], "MY", (UV,), U,
                  ("Relay", "Simulated", "Unverified")),
        _Appraise("Johor Bahru data centre, KL and SG landmarks: Malaysia not proven",
                  [("kl-1", _sim("kl-1", jb), 0), ("sg-1", _sim("sg-1", jb), 0)], "MY", (UV,),
                  U, ("Johor", "Simulated", "Unverified")),
        _Appraise("... nor the MY+SG zone (SG's 40 km reach Batam, Indonesia)",
                  [("kl-1", _sim("kl-1", jb), 0), ("sg-1", _sim("sg-1", jb), 0)], "MY+SG",
                  (UV,), U, ("Johor", "Simulated", "Unverified")),
        _Appraise("Johor Bahru data centre beside a JB landmark (0.75 km): Malaysia proven",
                  [("jb-1", rtt_for_bound(750), 0)], "MY", (), I, ("Johor", "Inside")),
        _Appraise("a chip at the causeway, 0.7 km from the strait: Malaysia not proven",
                  [("jb-1", _sim("jb-1", CAUSEWAY), 0)], "MY", (UV,), U,
                  ("Johor", "Simulated", "Unverified")),
        _Appraise("... but the MY+SG coalition zone is",
                  [("jb-1", _sim("jb-1", CAUSEWAY), 0)], "MY+SG", (), I,
                  ("Johor", "Simulated", "Inside")),
        _Appraise("KL and Bangkok together prove MY where neither does alone",
                  [("kl-1", rtt_for_bound(158_000), 0), ("bkk-1", rtt_for_bound(1_075_000), 0)],
                  "MY", (), I, ("Idealised", "Inside")),
        _Appraise("clone: Kuala Lumpur and Manila ten minutes apart (2 469 km)",
                  [("kl-1", rtt_for_bound(20_000), 600), ("mnl-1", rtt_for_bound(20_000), 0)],
                  None, (CLONE,), "", ("Clone",), ("impossible-travel",)),
        _Appraise("... with a licensed region the records also have no common point",
                  [("kl-1", rtt_for_bound(20_000), 600), ("mnl-1", rtt_for_bound(20_000), 0)],
                  "MY", (CLONE, UV), U, ("Clone",),
                  ("impossible-travel", "inconsistent-records")),
        _Appraise("Kuala Lumpur, then Manila ten hours later: a flight, not a clone",
                  [("kl-1", rtt_for_bound(20_000), 36_000), ("mnl-1", rtt_for_bound(20_000), 0)],
                  None, (), "", ("Valid",)),
        _Appraise("loose bounds (1 300 km each) one minute apart: they overlap, no clone",
                  [("kl-1", rtt_for_bound(1_300_000), 60), ("mnl-1", rtt_for_bound(1_300_000), 0)],
                  None, (), "", ("Valid", "Clone")),
        _Appraise("another node holds an open session of the chip", [], None, (CLONE,), "",
                  ("Clone",), ("concurrent-sessions",), concurrent=(other,)),
        _Appraise("a record older than the window does not count",
                  [("kl-1", rtt_for_bound(20_000), 7200)], "MY", (UV,), U, ("Unverified",),
                  window_s=3600),
        _Appraise("invalid PONGs, and a record from the valid ones",
                  [("kl-1", rtt_for_bound(20_000), 0)], "MY", (BAD,), I, ("Refused",),
                  invalid_pings=2),
        _Appraise("no licensed region: nothing to prove", [("kl-1", rtt_for_bound(20_000), 60)],
                  None, (), "", ("Valid",)),
        _Appraise("100 ms round trip: no surface bound at all",
                  [("kl-1", 100_000_000, 60)], "MY", (UV,), U, ("Unverified", "Boundary")),
        _Appraise("no record yet", [], "MY", (UV,), U, ("Unverified",)),
    ]  # fmt: skip


def _session_json(c: OpenSession) -> dict[str, Any]:
    return {
        "node": c.node,
        "sessionId": c.session_id.hex(),
        "openedMs": c.opened_ms,
        "seenMs": c.seen_ms,
    }


def _run_appraise(w: World, a: _Appraise, regions: dict[str, Any], n: int) -> dict[str, Any]:
    tokens = [
        signed_record(w, v, rtt_ns=rtt, at_s=NOW_S - ago, label=str(n)) for v, rtt, ago in a.records
    ]
    stored = [StoredRecord(record_digest(t), open_record(t, cert, w.anchors)) for t, cert in tokens]
    policy = LocationPolicy(window_ms=a.window_s * 1000)
    f = appraise_location(
        ueid=UEID,
        records=stored,
        concurrent=a.concurrent,
        region=None if a.region is None else regions[a.region],
        policy=policy,
        now_ms=NOW_MS,
        invalid_pings=a.invalid_pings,
        node="this-node",
    )
    got = ([r.name for r in f.reasons], f.placement, sorted(x.kind for x in f.alerts))
    if got != (list(a.reasons), a.placement, sorted(a.alerts)):
        raise VectorError(f"{a.comment!r}: got {got}")
    tier = tier_of(f.reasons)
    return {
        "comment": a.comment,
        "flags": list(a.flags),
        "ueid": UEID.hex(),
        "records": [{"record": t.hex(), "landmarkCert": c.hex()} for t, c in tokens],
        "concurrent": [_session_json(c) for c in a.concurrent],
        "invalidPings": a.invalid_pings,
        "region": a.region,
        "maxSpeedMps": policy.max_speed_mps,
        "windowMs": policy.window_ms,
        "nowMs": NOW_MS,
        "result": "invalid" if tier is Tier.CONTRAINDICATED else "valid",
        "tier": tier.name.lower(),
        "reasons": list(a.reasons),
        "placement": a.placement,
        "alerts": sorted(a.alerts),
    }


def location_document(w: World) -> dict[str, Any]:
    anchors = {
        "authorityId": w.anchors.authority_id,
        "authorityKey": w.anchors.authority_key.raw.hex(),
    }
    geojson = sample_regions()
    regions = {name: r for name, (r, _) in regions_from_geojson(geojson).items()}
    groups: list[dict[str, Any]] = [
        {
            "type": "PingResponseVerify",
            "comment": "one PONG judged against its PING",
            "tests": _ping_cases(w),
        },
        {
            "type": "LocationMeasure",
            "comment": "round trips into the record's numbers",
            "tests": _measure_cases(),
        },
        {
            "type": "LocationRecordVerify",
            "comment": "a record checked against its landmark's certificate",
            "trustAnchors": anchors,
            "tests": _record_cases(w),
        },
        {
            "type": "LocationAppraisal",
            "comment": "records, open sessions and a licensed region into reasons",
            "trustAnchors": anchors,
            "regions": geojson,
            "tests": [_run_appraise(w, a, regions, i) for i, a in enumerate(_appraise_cases())],
        },
    ]
    tc = 0
    for g in groups:
        for i, t in enumerate(g["tests"]):
            tc += 1
            g["tests"][i] = {"tcId": tc, **t}
    seen = {r for t in groups[-1]["tests"] for r in t["reasons"]}
    wanted = {r.name for r in LocationReason} | {Reason.CLONE_SUSPECTED.name}
    if not wanted <= seen:
        raise VectorError(f"reasons without an appraisal vector: {wanted - seen}")
    used = {f for g in groups for t in g["tests"] for f in t["flags"]}
    if used - set(LOCATION_NOTES):
        raise VectorError(f"flags without a note: {sorted(used - set(LOCATION_NOTES))}")
    header = [
        *LOCATION_HEADER,
        "Reason codes: "
        + ", ".join(f"{r.name} {int(r)} ({r.tier.name.lower()})" for r in LocationReason)
        + f", {Reason.CLONE_SUSPECTED.name} {int(Reason.CLONE_SUSPECTED)} (contraindicated)",
    ]
    notes = {k: v for k, v in LOCATION_NOTES.items() if k in used}
    for g in groups:  # every output field in every test (null where a test has no value)
        for t in g["tests"]:
            for name in LOCATION_OUTPUTS[g["type"]]:
                t.setdefault(name, None)
    doc = vector_document(LOCATION_ALGORITHM, tc, header, notes, groups)
    return annotate(doc, LOCATION_OUTPUTS, lambda g, t: list(LOCATION_SECTIONS[g["type"]]))
