"""Results are EARs that EAR tooling accepts, and Evidence is an EAT of RFC 9711 (SPEC §6.7, §6.8).

The standard's own CDDL decides, not ours: every result token the demo's nodes sign is checked
against ``EAR`` of draft-ietf-rats-ear (its CDDL files and RFC 9711's, read in place from
``../shared/external/ear/``; see PROVENANCE.md there), and every Evidence token the demo's chips
sign against RFC 9711's ``Claims-Set``, with pycddl. tests/cddl_support.py composes those files
and holds every pycddl workaround. The trustworthiness vector table of SPEC §10.1 is checked
against the reasons the code registers, and every demo result against that table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest
import trio
from cddl_support import EAR_PROFILE_04, EXTERNAL_EAR, SPEC, StandardCddl, standard_cddl_checker

from attest.codec.cose import parse_sign1
from attest.messages import claims as C
from attest.messages.attestation import AttestationResult, Evidence
from attest.node.service import Outcome, VerifierService
from attest.verify.reasons import (
    Tier,
    Trust,
    claim_tier,
    reason_of,
    registered_reasons,
    trustworthiness_vector,
)

Tokens = tuple[list[bytes], list[bytes]]


@pytest.fixture(scope="module")
def standard() -> StandardCddl:
    if not EXTERNAL_EAR.is_dir():
        pytest.skip(
            f"the EAR draft's CDDL is not at {EXTERNAL_EAR} (expected ../shared/external/ear "
            "next to the repository; see PROVENANCE.md there)"
        )
    return standard_cddl_checker()


@pytest.fixture(scope="module")
def demo_tokens() -> Iterator[Tokens]:
    """(Evidence tokens, result tokens) of one small demo run: honest chips, every attack, every
    mechanism's section. The nodes' appraisals are recorded as they happen (nothing is
    replaced: the real service concludes every session)."""
    from attest.demo.scenario import DemoOptions, run_demo

    evidence: list[bytes] = []
    results: list[bytes] = []
    appraise, finish = VerifierService.appraise, VerifierService.finish

    # the node runs conclude's steps apart (store thread / event loop): record at the pure ones
    def appraising(self: VerifierService, reading: Any, challenge: Any, ev: bytes) -> Any:
        evidence.append(ev)
        return appraise(self, reading, challenge, ev)

    def finishing(self: VerifierService, recorded: Any) -> Outcome:
        outcome = finish(self, recorded)
        results.append(outcome.result)
        return outcome

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VerifierService, "appraise", appraising)
        mp.setattr(VerifierService, "finish", finishing)
        summary = trio.run(lambda: run_demo(DemoOptions(chips=4, rounds=2, interval_s=0.01)))
    assert summary.ok, summary.as_json()
    yield evidence, results


def _payload(token: bytes) -> bytes:
    return parse_sign1(token).payload


def test_every_result_the_demo_signs_is_an_ear_of_the_draft(
    standard: StandardCddl, demo_tokens: Tokens
) -> None:
    _, results = demo_tokens
    tiers = set()
    for token in results:
        payload = _payload(token)
        assert standard.ear(payload) == [], cbor2.loads(payload)
        tiers.add(AttestationResult.from_payload(payload).status)
    # honest chips and attacks (warnings are the vectors' and test_the_ear_check_has_teeth's)
    assert len(results) >= 20 and tiers >= {Tier.AFFIRMING, Tier.CONTRAINDICATED}


def test_every_evidence_the_demo_signs_is_an_rfc9711_claims_set(
    standard: StandardCddl, demo_tokens: Tokens
) -> None:
    evidence, _ = demo_tokens
    checked = 0
    for token in evidence:
        try:
            payload = _payload(token)
            Evidence.from_payload(payload)
        except Exception:
            continue  # an attack's malformed Evidence: no claims set to check
        checked += 1
        assert standard.eat(payload) == [], cbor2.loads(payload)
    assert checked >= 20


def test_demo_results_carry_the_vector_of_their_reasons(demo_tokens: Tokens) -> None:
    _, results = demo_tokens
    for token in results:
        r = AttestationResult.from_payload(_payload(token))
        reasons = [reason_of(code) for code in r.reasons]
        assert None not in reasons
        assert r.vector == trustworthiness_vector(reasons)
        assert max(claim_tier(v) for v in r.vector.values()) == r.status  # ear_status rule


def _result(top: dict[Any, Any] | None = None, hem: dict[Any, Any] | None = None) -> dict[Any, Any]:
    """A real result's claims with ``top`` (top-level) and ``hem`` (appraisal) members changed."""
    r = AttestationResult.of(
        verifier_id="kl-1",
        issued_at=1_800_000_000,
        nonce=bytes(32),
        ueid=b"\x01" + bytes(16),
        status=32,
        vector={0: 2, 1: 32, 2: 2, 4: 2},
        policy_id="attest-default-v1",
        reasons=(83,),
        verifier_build="attest test",
        evidence_digest=bytes(32),
    )
    claims = cbor2.loads(r.payload())
    appraisal = {**claims[C.SUBMODS]["hem"], **(hem or {})}
    return {**claims, C.SUBMODS: {"hem": appraisal}, **(top or {})}


@pytest.mark.parametrize(
    "claims, why",
    [
        (_result(), None),
        (_result({C.EAT_PROFILE: "tag:attest.example,2026:ear-v1"}), "revision 2's profile"),
        (_result({C.ISS: "kl-1"}), "a non-map extension at the top level"),
        (_result(hem={C.EAR_STATUS: 33}), "a status that is not a tier"),
        (_result(hem={C.EAR_APPRAISAL_POLICY_IDS: "attest-default-v1"}), "policy id not an array"),
        (_result(hem={C.EAR_TRUSTWORTHINESS_VECTOR: {0: 200}}), "a claim out of range"),
        (_result(hem={C.EAR_TRUSTWORTHINESS_VECTOR: {9: 2}}), "an unknown category"),
        (_result(hem={C.EAR_TRUSTWORTHINESS_VECTOR: {}}), "an empty vector"),
        (_result(hem={C.HEM_REASONS: [81]}), "HEM claims outside their extension map"),
        (_result({C.SUBMODS: {}}), "no appraisal"),
    ],
)
def test_the_ear_check_has_teeth(
    standard: StandardCddl, claims: dict[Any, Any], why: str | None
) -> None:
    assert (standard.ear(cbor2.dumps(claims)) == []) == (why is None), why


def _evidence_claims(**changes: Any) -> dict[Any, Any]:
    from attest.messages.attestation import Challenge
    from attest.testvectors.world import NOW_S, build_world

    chip = build_world().honest_chip("hx100-a")
    challenge = Challenge("kl-1", NOW_S, NOW_S + 30, bytes(range(32)), "MY-KL")
    return {**cbor2.loads(chip.current_evidence(challenge, NOW_S).payload()), **changes}


def _coswid(claims: dict[Any, Any], **members: Any) -> list[list[Any]]:
    tag = cbor2.loads(claims[C.MEASUREMENTS][0][1])
    tag.update({int(k[1:]): v for k, v in members.items()})
    tag = {k: v for k, v in tag.items() if v is not None}  # None: the member is left out
    return [[C.COAP_SWID_CBOR, cbor2.dumps(tag, canonical=True)]]


def test_the_eat_check_has_teeth(standard: StandardCddl) -> None:
    good = _evidence_claims()
    assert standard.eat(cbor2.dumps(good)) == []
    bad = {
        "dbgstat 7": {C.DBGSTAT: 7},
        "a nonce of 4 bytes": {C.EAT_NONCE: bytes(4)},
        "a UEID of 40 bytes": {C.UEID: b"\x01" + bytes(39)},
        "a profile that is not text": {C.EAT_PROFILE: 7},
        "measurements of content format 70000": {
            C.MEASUREMENTS: [[70000, good[C.MEASUREMENTS][0][1]]]
        },
        "a CoSWID without its entity": {C.MEASUREMENTS: _coswid(good, k2=None)},
        "a CoSWID whose version is a number": {C.MEASUREMENTS: _coswid(good, k13=12)},
        "a CoSWID whose digest is 33 bytes": {
            C.MEASUREMENTS: _coswid(good, k3={17: {7: [1, bytes(33)], 24: "firmware"}})
        },
    }
    for why, change in bad.items():
        assert standard.eat(cbor2.dumps({**good, **change})) != [], why


# -- SPEC §10.1 --------------------------------------------------------------------------------

_ROW = re.compile(r"^\| (\d+) \| ([A-Z_]+) \| `([a-z-]+)` \| (\d+) \| [^|]+ \|$", re.M)


def _vector_table() -> list[tuple[int, str, str, int]]:
    text = SPEC.read_text(encoding="utf-8")
    section = text[text.index("### 10.1 Trustworthiness vector") : text.index("## 11. Audit log")]
    return [(int(c), n, cat, int(v)) for c, n, cat, v in _ROW.findall(section)]


def test_spec_vector_table_is_every_registered_reason() -> None:
    registered = [(int(r), r.name, r.trust.label, r.claim) for r in registered_reasons()]
    assert _vector_table() == registered
    for r in registered_reasons():  # the value is in the range of the reason's tier
        assert claim_tier(r.claim) is r.tier, r.name
    assert {t.label for t in Trust} >= {row[2] for row in _vector_table()}


def test_vector_of_an_authentic_verdict_starts_affirmed() -> None:
    assert trustworthiness_vector([]) == {0: 2, 1: 2, 2: 2, 4: 2}
    firmware_outdated, debug = reason_of(81), reason_of(83)
    assert trustworthiness_vector([firmware_outdated, debug]) == {0: 2, 1: 32, 2: 32, 4: 2}
    # the worst value wins, in any order
    unknown, mismatch = reason_of(82), reason_of(80)
    assert trustworthiness_vector([mismatch, unknown])[Trust.EXECUTABLES] == 96
    assert trustworthiness_vector([unknown, mismatch])[Trust.EXECUTABLES] == 96


def test_vector_of_unauthentic_evidence_claims_only_its_failures() -> None:
    bad_signature, chain = reason_of(3), reason_of(4)
    assert trustworthiness_vector([bad_signature, chain]) == {0: 99, 4: 99}
    assert trustworthiness_vector([reason_of(1)]) == {0: 99}


def test_the_profile_is_the_published_drafts() -> None:
    assert C.EAR_PROFILE == EAR_PROFILE_04
