"""``attest result verify --agreement``: a relying party of one authority accepts a partner
node's result only when the agreement its authority signed lets it recognise that partner's
results (SPEC B.5); federation's accept_result decides, verify_result's checks follow."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE
from attest.cli.main import main
from attest.federation.agreement import Recognition
from attest.federation.sign import sign_multi
from attest.files import write_anchors
from attest.keys import SigningKey
from attest.messages.attestation import AttestationResult
from attest.messages.certs import VerifierCert
from attest.testvectors.federation_world import SG, TH, agreement, officers, sign_agreement
from attest.testvectors.world import AUTHORITY_ID, build_world

W = build_world()


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    now = int(time.time())
    key = SigningKey.generate()
    vc = VerifierCert(SG, "sg-node-1", now - 60, now + 3600, key.public_key, "SG")
    result = AttestationResult.of(verifier_id="sg-node-1", issued_at=now - 5, nonce=bytes(32),
                                  ueid=b"\x01" * 17, status=2, vector={4: 2}, policy_id="p",
                                  reasons=(), verifier_build="attest test",
                                  evidence_digest=bytes(32), chain=(AUTHORITY_ID, 1))  # fmt: skip
    out = {
        "result": tmp_path / "result.cose",
        "cert": tmp_path / "sg-node.cert",
        "anchors": tmp_path / "anchors.json",
        "agreement": tmp_path / "agreement.cose",
        "no-results": tmp_path / "no-results.cose",
        "unsigned": tmp_path / "unsigned.cose",
    }
    out["result"].write_bytes(result.sign(key))
    out["cert"].write_bytes(sign_multi(vc.CONTENT_TYPE, vc.payload(), officers(SG)[:3]))
    write_anchors(out["anchors"], W.anchors)
    approvers = {AUTHORITY_ID: 1, SG: 3, TH: 3}
    out["agreement"].write_bytes(sign_agreement(W, agreement(W), approvers))
    endorsements_only = (Recognition(AUTHORITY_ID, SG, ("mfr-sg",)),)
    out["no-results"].write_bytes(
        sign_agreement(W, agreement(W, recognitions=endorsements_only), approvers)
    )
    out["unsigned"].write_bytes(sign_agreement(W, agreement(W), {SG: 3, TH: 3, "authority.id": 3}))
    return out


def _verify(
    capsys: pytest.CaptureFixture[str], f: dict[str, Path], *extra: str | Path
) -> tuple[int, str]:
    return _run(capsys, "result", "verify", f["result"], "--verifier-cert", f["cert"],
                "--anchors", f["anchors"], *extra)  # fmt: skip


def test_a_partner_nodes_result_under_the_agreement(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(capsys, files, "--agreement", files["agreement"])
    assert code == EXIT_OK, out
    assert out.startswith("valid: AFFIRMING") and "verifier=sg-node-1" in out
    assert f"chain={AUTHORITY_ID} agreement=1" in out
    code, out = _verify(capsys, files, "--agreement", files["agreement"], "--json")
    assert code == EXIT_OK and '"chain_agreement": 1' in out


def test_what_the_agreement_does_not_grant_the_relying_party_refuses(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(capsys, files)  # no agreement: another authority's node
    assert code == EXIT_CHECK_FAILED and out.startswith("invalid: verifier-cert:")
    code, out = _verify(capsys, files, "--agreement", files["no-results"])
    assert code == EXIT_CHECK_FAILED
    assert out.startswith("invalid: federation: AUTHORITY_NOT_RECOGNISED"), out
    code, out = _verify(capsys, files, "--agreement", files["unsigned"])  # home did not sign
    assert code == EXIT_CHECK_FAILED
    assert out.startswith("invalid: agreement: ACT_TOO_FEW_SIGNATURES"), out
    code, out = _verify(capsys, files, "--committee", files["agreement"])
    assert code == EXIT_USAGE and "--committee is given with --agreement" in out
