"""Re-verify ``vectors/pods.json`` (Fixed Set) from its JSON alone.

Like :mod:`attest.testvectors.check`, this imports nothing from the generator or the test world:
it rebuilds trust anchors, chips, pod certificates, transcripts and reports from the JSON and
runs the implementation. Three groups:

* ``PodCertVerify`` — a chip's acceptance rules for a pod certificate (refusal names);
* ``LinkProofVerify`` — a peer's LinkResponse / LinkConfirm against one session's transcript
  (refusal names), and the session key of the valid ones;
* ``GraphAppraisal`` — the link-graph appraisal: reasons per chip and alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attest.errors import CertificateError
from attest.keys import PublicKey
from attest.pods.cert import install_refusal, open_pod_cert
from attest.pods.graph import KnownPod, PodReport, appraise_graph
from attest.pods.link import check_proof, session_key
from attest.pods.messages import LinkConfirm, LinkProof, LinkResponse, LinkTranscript
from attest.pods.names import Refusal
from attest.verify.chain import TrustAnchors
from attest.verify.reasons import Tier

POD_FILE = "pods.json"
POD_ALGORITHM = "attest-fixed-set"

_Run = Callable[[dict[str, Any]], list[str]]
_PROOFS: dict[str, type[LinkProof]] = {"LinkResponse": LinkResponse, "LinkConfirm": LinkConfirm}


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


def transcript_json(t: LinkTranscript) -> dict[str, str]:
    return {
        "initiator": t.initiator.hex(),
        "responder": t.responder.hex(),
        "initiatorNonce": t.initiator_nonce.hex(),
        "responderNonce": t.responder_nonce.hex(),
        "initiatorShare": t.initiator_share.hex(),
        "responderShare": t.responder_share.hex(),
        "initiatorPod": t.initiator_pod.hex(),
        "responderPod": t.responder_pod.hex(),
    }


def transcript_from_json(d: dict[str, str]) -> LinkTranscript:
    return LinkTranscript(
        _hex(d["initiator"]),
        _hex(d["responder"]),
        _hex(d["initiatorNonce"]),
        _hex(d["responderNonce"]),
        _hex(d["initiatorShare"]),
        _hex(d["responderShare"]),
        _hex(d["initiatorPod"]),
        _hex(d["responderPod"]),
    )


def _pod_cert_test(anchors: TrustAnchors, limits: dict[str, int]) -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        chip = t["chip"]
        refusal: str | None = None
        pod_id = None
        try:
            cred = open_pod_cert(
                _hex(t["podCert"]), _hex(t["issuerCert"]), anchors, now_s=t["nowS"]
            )
        except CertificateError:
            refusal = Refusal.POD_CERT_INVALID
        else:
            pod_id = cred.pod_id.hex()
            why = install_refusal(
                cred,
                ueid=_hex(chip["ueid"]),
                device_key=PublicKey(_hex(chip["deviceKey"])),
                max_pod_size=limits[chip["hwmodel"]],
                revoked_pods=frozenset(_hex(p) for p in t["revokedPods"]),
            )
            refusal = None if why is None else str(why)
        result = "valid" if refusal is None else "invalid"
        problems = []
        if result != t["result"]:
            problems.append(f"result {result!r}, expected {t['result']!r}")
        if refusal != t["refusal"]:
            problems.append(f"refusal {refusal!r}, expected {t['refusal']!r}")
        if result == "valid" and pod_id != t["podId"]:
            problems.append(f"pod id {pod_id}, expected {t['podId']}")
        return problems

    return run


def _link_proof_test() -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        expected = transcript_from_json(t["transcript"])
        proof, why = check_proof(
            _PROOFS[t["expectedType"]], _hex(t["proof"]), PublicKey(_hex(t["signerKey"])), expected
        )
        refusal = None if why is None else str(why)
        result = "valid" if refusal is None else "invalid"
        problems = []
        if result != t["result"]:
            problems.append(f"result {result!r}, expected {t['result']!r}")
        if refusal != t["refusal"]:
            problems.append(f"refusal {refusal!r}, expected {t['refusal']!r}")
        if result == "valid" and proof is not None:
            if proof.accept != t["accept"]:
                problems.append(f"accept {proof.accept}, expected {t['accept']}")
            pod = proof.pod_id.hex() if proof.pod_id is not None else None
            if pod != t["podId"]:
                problems.append(f"pod id {pod}, expected {t['podId']}")
            if t.get("sessionKey") is not None:
                key = session_key(
                    _hex(t["initiatorSecret"]), expected.responder_share, expected
                ).hex()
                if key != t["sessionKey"]:
                    problems.append("session key differs")
        return problems

    return run


def report_from_json(r: dict[str, Any]) -> PodReport:
    return PodReport(
        ueid=_hex(r["ueid"]),
        device_key=_hex(r["deviceKey"]),
        max_pod_size=r["maxPodSize"],
        pod_id=None if r["podId"] is None else _hex(r["podId"]),
        links=frozenset(_hex(u) for u in r["links"]),
        refusals=tuple(_hex(p) for p in r["refusals"]),
    )


def _graph_test(anchors: TrustAnchors, now_s: int) -> _Run:
    def run(t: dict[str, Any]) -> list[str]:
        pods: dict[bytes, KnownPod] = {}
        for p in t["pods"]:
            cred = open_pod_cert(_hex(p["podCert"]), _hex(p["issuerCert"]), anchors, now_s=now_s)
            pods[cred.pod_id] = KnownPod.from_cert(cred.cert, cred.digest)
        reports = {r.ueid: r for r in map(report_from_json, t["reports"])}
        verdict = appraise_graph(reports, pods, frozenset(_hex(p) for p in t["revokedPods"]))
        got = {u.hex(): [r.name for r in rs] for u, rs in verdict.reasons.items() if rs}
        names = [r.name for r in sorted({r for rs in verdict.reasons.values() for r in rs})]
        alerts = [[a.reason.name, [c.hex() for c in a.chips]] for a in verdict.alerts]
        worst = max((r.tier for rs in verdict.reasons.values() for r in rs), default=Tier.AFFIRMING)
        result = "invalid" if worst is Tier.CONTRAINDICATED else "valid"
        problems = []
        if result != t["result"]:
            problems.append(f"result {result!r}, expected {t['result']!r}")
        if got != t["chipReasons"]:
            problems.append(f"reasons {got}, expected {t['chipReasons']}")
        if names != t["reasons"]:
            problems.append(f"reason names {names}, expected {t['reasons']}")
        if alerts != t["alerts"]:
            problems.append(f"alerts {alerts}, expected {t['alerts']}")
        sizes = [len(c) for c in verdict.components]
        if sizes != t["componentSizes"]:
            problems.append(f"component sizes {sizes}, expected {t['componentSizes']}")
        return problems

    return run


def pod_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a pod vector file."""
    for g in doc["testGroups"]:
        kind = g["type"]
        if kind == "LinkProofVerify":
            yield g, _link_proof_test()
            continue
        ta = g["trustAnchors"]
        anchors = TrustAnchors(ta["authorityId"], PublicKey(_hex(ta["authorityKey"])))
        if kind == "PodCertVerify":
            yield g, _pod_cert_test(anchors, g["maxPodSize"])
        elif kind == "GraphAppraisal":
            yield g, _graph_test(anchors, g["nowS"])
        else:
            raise ValueError(f"unknown pod group type {kind!r}")
