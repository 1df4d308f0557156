"""``attest federation ...`` end to end, in process: officers sign drafts one at a time, offline.

Also the node's ``[federation]`` section: :func:`attest.federation.verifier.build` takes the
configured agreement durably and gives the node its chain-routing part.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE
from attest.cli.main import main
from attest.errors import ConfigError
from attest.federation.verifier import FederationSection, FederationVerifier, build
from attest.files import write_anchors
from attest.keys import SigningKey, write_secret_key
from attest.mechanism import NodeContext
from attest.messages.revocation import Revocations
from attest.store import SqliteStore
from attest.testvectors.federation_world import (
    SG,
    TH,
    agreement,
    officers,
    partner_chain,
    partner_verifier,
    sign_agreement,
)
from attest.testvectors.world import AUTHORITY_ID, NOW_S, ROUND1_MS, build_world
from attest.verify.chain import TrustAnchors
from attest.verify.policy import Policy

W = build_world()


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def _keys(tmp: Path, authority: str, n: int) -> list[Path]:
    paths = []
    for i, key in enumerate(officers(authority, n)):
        path = tmp / f"{authority}-{i}.key"
        write_secret_key(path, key)
        paths.append(path)
    return paths


def test_committee_init_sign_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = _keys(tmp_path, SG, 5)
    pubs = [k.public_key.raw.hex() for k in officers(SG, 5)]
    draft = tmp_path / "sg.committee"
    args = ["federation", "committee", "init", "--authority", SG, "--threshold", "3"]
    code, out = _run(capsys, *args, *[a for p in pubs for a in ("--officer", p)], "--out", draft)
    assert code == EXIT_OK and "3 of 5" in out
    digest = out.rsplit("digest ", 1)[1].strip()
    for i, key in enumerate(keys[:3]):
        code, out = _run(capsys, "federation", "committee", "sign", draft, "--officer", key)
        assert code == EXIT_OK and f"{i + 1} signature(s)" in out
        verify = ["federation", "committee", "verify", draft, "--digest", digest]
        code, out = _run(capsys, *verify)
        assert code == (EXIT_OK if i == 2 else EXIT_CHECK_FAILED), out
    assert "valid committee descriptor (genesis)" in out
    code, out = _run(capsys, "federation", "committee", "sign", draft, "--officer", keys[0])
    assert code == EXIT_CHECK_FAILED and "ACT_DUPLICATE_OFFICER" in out
    code, out = _run(capsys, "federation", "committee", "verify", draft, "--digest", "00" * 32)
    assert code == EXIT_CHECK_FAILED and "AUTHORITY_NOT_RECOGNISED" in out
    code, out = _run(capsys, "federation", "committee", "verify", draft, "--json")
    assert json.loads(out)["threshold"] == 3
    # a rotation signed by 3 of the current committee; the same again is stale
    rot = tmp_path / "sg2.committee"
    new = [*pubs[1:], SigningKey.derive_insecure_for_tests("sg-new").public_key.raw.hex()]
    code, _ = _run(
        capsys, *args, "--number", "2", *[a for p in new for a in ("--officer", p)], "--out", rot
    )
    for key in keys[2:5]:
        _run(capsys, "federation", "committee", "sign", rot, "--officer", key)
    rotate = ["federation", "committee", "verify", rot, "--current"]
    assert _run(capsys, *rotate, draft)[0] == EXIT_OK
    code, out = _run(capsys, *rotate, rot)
    assert code == EXIT_CHECK_FAILED and "COMMITTEE_STALE" in out  # 2 is not above 2
    # usage errors are one line and exit 2
    code, out = _run(capsys, *args, "--officer", "zz", "--out", tmp_path / "x")
    assert code == EXIT_USAGE and "--officer zz" in out


def test_agreement_draft_sign_verify_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_anchors(tmp_path / "anchors.json", W.anchors)
    spec = {
        "id": "compute-south",
        "number": 1,
        "issuedAt": NOW_S - 10,
        "expiresAt": NOW_S + 10**6,
        "threshold": 3,
        "members": [{"authority": AUTHORITY_ID, "anchors": "anchors.json", "regions": ["MY"]}],
        "recognitions": [
            {"by": AUTHORITY_ID, "of": SG, "manufacturers": ["mfr-sg"], "results": True}
        ],
    }
    for partner in (SG, TH, "authority.id"):
        pubs = [k.public_key.raw.hex() for k in officers(partner, 5)]
        init = ["federation", "committee", "init", "--authority", partner, "--threshold", "3"]
        path = tmp_path / f"{partner}.committee"
        assert (
            _run(capsys, *init, *[a for p in pubs for a in ("--officer", p)], "--out", path)[0] == 0
        )
        spec["members"].append({"authority": partner, "committee": path.name, "regions": ["X"]})  # type: ignore[attr-defined]
    (tmp_path / "agreement.json").write_text(json.dumps(spec))
    draft = tmp_path / "agreement.cose"
    code, out = _run(
        capsys, "federation", "agreement", "draft", tmp_path / "agreement.json", "--out", draft
    )
    assert code == EXIT_OK and "3 of 4 members" in out, out
    home_key = tmp_path / "authority.key"
    write_secret_key(home_key, W.authority.key)
    signers = [home_key, *_keys(tmp_path, SG, 3)]
    for key in signers:
        assert _run(capsys, "federation", "agreement", "sign", draft, "--officer", key)[0] == 0
    verify = ["federation", "agreement", "verify", draft, "--anchors", tmp_path / "anchors.json"]
    code, out = _run(capsys, *verify, "--now", str(NOW_S))
    assert code == EXIT_CHECK_FAILED and "ACT_TOO_FEW_SIGNATURES" in out  # 2 of 4 members
    for key in _keys(tmp_path, TH, 3):
        _run(capsys, "federation", "agreement", "sign", draft, "--officer", key)
    code, out = _run(capsys, *verify, "--now", str(NOW_S))
    assert code == EXIT_OK, out
    code, out = _run(capsys, *verify, "--now", str(NOW_S + 10**6))
    assert code == EXIT_CHECK_FAILED and "AGREEMENT_EXPIRED" in out
    code, out = _run(capsys, *verify, "--now", str(NOW_S), "--in-force", draft)
    assert code == EXIT_CHECK_FAILED and "AGREEMENT_STALE" in out
    code, out = _run(capsys, "federation", "agreement", "show", draft, "--json")
    shown = json.loads(out)
    assert shown["approvedBy"] == sorted([AUTHORITY_ID, SG, TH]) and shown["signatures"] == 7
    code, out = _run(capsys, "federation", "agreement", "show", draft)
    assert f"{AUTHORITY_ID} recognises of {SG}: endorsements of mfr-sg; results" in out

    # a relying party of the home authority accepts SG's node's result under it
    node = partner_verifier()
    from attest.messages.attestation import AttestationResult

    result = AttestationResult.of(
        verifier_id=node.verifier_id,
        issued_at=NOW_S,
        nonce=bytes(32),
        ueid=b"\x01" + bytes(16),
        status=2,
        vector={0: 2, 1: 2, 2: 2, 4: 2},
        policy_id="p",
        reasons=(),
        verifier_build="t",
        evidence_digest=bytes(32),
    ).sign(node.key)
    (tmp_path / "result.cose").write_bytes(result)
    (tmp_path / "sg-node.cert").write_bytes(node.cert)
    rp = ["federation", "result", tmp_path / "result.cose", "--cert", tmp_path / "sg-node.cert"]
    rp += ["--agreement", draft, "--anchors", tmp_path / "anchors.json", "--now", str(NOW_S)]
    code, out = _run(capsys, *rp)
    assert code == EXIT_OK and "accepted result of sg-fed-1" in out, out
    (tmp_path / "sg-node.cert").write_bytes(W.verifiers["sg-1"].cert[:-1])
    assert _run(capsys, *rp)[0] == EXIT_CHECK_FAILED


def _ctx(tmp_path: Path, store: SqliteStore, section: FederationSection) -> NodeContext:
    return NodeContext(
        identity=W.verifiers["kl-1"],
        anchors=W.anchors,
        store=store,
        policy=Policy(),
        revocations=Revocations(),
        section=section,
        resolve=lambda name: tmp_path / name,
    )


def test_the_node_section_builds_the_part(tmp_path: Path) -> None:
    a1 = sign_agreement(W, agreement(W), {AUTHORITY_ID: 1, SG: 3, TH: 3})
    (tmp_path / "agreement.cose").write_bytes(a1)
    with SqliteStore(tmp_path / "kl-1.db", verifier_id="kl-1") as store:
        assert build(_ctx(tmp_path, store, FederationSection())) is None  # disabled
        part = build(_ctx(tmp_path, store, FederationSection(enabled=True)))
        assert isinstance(part, FederationVerifier)
        route = part.route(partner_chain(W), now_ms=ROUND1_MS)
        assert route is not None and route.anchors == TrustAnchors(
            SG, route.anchors.authority_key, part.federation.committee_of(SG)
        )
        assert (tmp_path / "federation-state.json").is_file()
        (tmp_path / "agreement.cose").write_bytes(a1[:-1])
        # the stored agreement stays in force; a broken file is reported, not fatal
        assert build(_ctx(tmp_path, store, FederationSection(enabled=True))) is not None
        (tmp_path / "federation-state.json").unlink()
        with pytest.raises(ConfigError, match="no agreement in force"):
            build(_ctx(tmp_path, store, FederationSection(enabled=True)))


def test_chip_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attest.chip.device import Chip, fabricate
    from attest.federation.chip import FederationChip

    state = tmp_path / "chip-0001"
    fabricate(
        W.manufacturers["mfr-a"],
        W.anchors,
        hwmodel="HX100",
        pod_class=8,
        now_s=NOW_S,
        state_dir=state,
    )
    a1 = tmp_path / "a1.cose"
    a1.write_bytes(sign_agreement(W, agreement(W), {AUTHORITY_ID: 1, SG: 3, TH: 3}))
    install = ["federation", "chip-install", a1, "--state", state, "--now", str(NOW_S)]
    code, out = _run(capsys, *install)
    assert code == EXIT_OK and "holds agreement compute-south number 1" in out, out
    code, out = _run(capsys, *install)
    assert code == EXIT_CHECK_FAILED and "AGREEMENT_STALE" in out
    held = next(p for p in Chip.load(state).parts if isinstance(p, FederationChip))
    assert held.agreement == agreement(W)
    code, out = _run(capsys, "federation", "chip-install", a1, "--state", tmp_path)
    assert code == EXIT_USAGE and "not a chip state folder" in out


def test_the_issues_command_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``attest authority committee init|rotate``, ``attest authority sign FILE --officer KEY``
    and ``attest federation propose|sign|inspect|verify`` are the commands above by the names
    issue 14 gives them."""
    keys = _keys(tmp_path, TH, 5)
    pubs = [k.public_key.raw.hex() for k in officers(TH, 5)]
    genesis = tmp_path / "th.committee"
    init = ["authority", "committee", "init", "--authority", TH, "--threshold", "3"]
    code, out = _run(capsys, *init, *[a for p in pubs for a in ("--officer", p)], "--out", genesis)
    assert code == EXIT_OK and "3 of 5" in out, out
    for key in keys[:3]:  # the draft's type is recognised from its claims
        assert _run(capsys, "authority", "sign", genesis, "--officer", key)[0] == EXIT_OK
    assert _run(capsys, "federation", "committee", "verify", genesis)[0] == EXIT_OK
    rot = tmp_path / "th2.committee"
    new = [*pubs[1:], SigningKey.derive_insecure_for_tests("th-new").public_key.raw.hex()]
    rotate = ["authority", "committee", "rotate", "--current", genesis, "--threshold", "3"]
    code, out = _run(capsys, *rotate, *[a for p in new for a in ("--officer", p)], "--out", rot)
    assert code == EXIT_OK and "number 2" in out, out
    assert _run(capsys, "authority", "sign", rot, "--officer", keys[0])[0] == EXIT_OK
    code, out = _run(capsys, "federation", "committee", "verify", rot, "--current", genesis)
    assert code == EXIT_CHECK_FAILED and "ACT_TOO_FEW_SIGNATURES" in out  # 1 of 3
    for key in keys[1:3]:  # then a COSE_Sign: the type is read from its header
        assert _run(capsys, "authority", "sign", rot, "--officer", key)[0] == EXIT_OK
    assert _run(capsys, "federation", "committee", "verify", rot, "--current", genesis)[0] == 0
    (tmp_path / "other.cbor").write_bytes(b"\xa1\x01\x02")
    code, out = _run(capsys, "authority", "sign", tmp_path / "other.cbor", "--officer", keys[0])
    assert code == EXIT_USAGE and "give --content-type" in out

    write_anchors(tmp_path / "anchors.json", W.anchors)
    spec = {
        "id": "compute-south", "number": 1, "issuedAt": NOW_S - 10, "expiresAt": NOW_S + 10**6,
        "threshold": 2,
        "members": [{"authority": AUTHORITY_ID, "anchors": "anchors.json", "regions": ["MY"]},
                    {"authority": TH, "committee": genesis.name, "regions": ["TH"]}],
        "recognitions": [{"by": AUTHORITY_ID, "of": TH, "manufacturers": [], "results": True}],
    }  # fmt: skip
    (tmp_path / "agreement.json").write_text(json.dumps(spec))
    draft = tmp_path / "agreement.cose"
    code, out = _run(capsys, "federation", "propose", tmp_path / "agreement.json", "--out", draft)
    assert code == EXIT_OK and "2 of 2 members" in out, out
    home_key = tmp_path / "authority.key"
    write_secret_key(home_key, W.authority.key)
    for key in [home_key, *keys[:3]]:
        assert _run(capsys, "federation", "sign", draft, "--officer", key)[0] == EXIT_OK
    verify = ["federation", "verify", draft, "--anchors", tmp_path / "anchors.json"]
    assert _run(capsys, *verify, "--now", str(NOW_S))[0] == EXIT_OK
    code, out = _run(capsys, "federation", "inspect", draft, "--json")
    assert json.loads(out)["approvedBy"] == sorted([AUTHORITY_ID, TH])
