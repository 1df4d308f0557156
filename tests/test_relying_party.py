"""A relying party's view (issue 13 item 3): result tokens kept, served, verified and printed.

The end-to-end test runs the real ``attest chip run --out`` against an in-process node and
checks that the token the node serves on ``GET /chips/{ueid}/result`` is the one the chip
received, byte for byte, and that ``attest result verify`` accepts it. The rejection tests
differ from the honest token in one input each and check the exact failed check and reason.
``attest inspect`` output is parsed back by cbor-diag (an EDN parser nobody here wrote): it must
give the token again, byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import cbor_diag
import pytest
import trio
from test_hardening import daemon_node, http_port_of, reset_connection
from test_node import GUARD_S, HOST, World, one_round, port_of, read_to_eof, world

from attest import files
from attest.chip.device import fabricate
from attest.cli.main import main
from attest.codec.cbor import encode
from attest.codec.cose import parse_general, sign1
from attest.diag import CLAIM_NAMES, as_json, diagnostic, message_types
from attest.identity import Authority
from attest.keys import SigningKey
from attest.messages.attestation import RESULT_MEDIA_TYPE, AttestationResult, Challenge
from attest.messages.content import ContentType
from attest.node.http import MAX_CONNECTIONS
from attest.verify.reasons import Reason, Tier
from attest.verify.results import ResultCheck, ResultRejected, verify_result

__all__ = ["world"]

REPO = Path(__file__).resolve().parent.parent
NOW = 1_800_000_000


async def http_get_full(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    with trio.fail_after(GUARD_S):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = await read_to_eof(stream)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


# -- end to end: chip run --out, the ops endpoint, result verify --------------------------------


async def test_served_result_is_the_token_the_chip_received(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chip_dir, out = tmp_path / "chip", tmp_path / "results"
    chip = fabricate(
        world.mfr, world.auth.anchors, hwmodel="HX100", pod_class=8, now_s=world.now_s,
        state_dir=chip_dir,
    )  # fmt: skip
    ueid = chip.ueid.hex()
    anchors = tmp_path / "anchors.json"
    files.write_anchors(anchors, world.auth.anchors)
    async with daemon_node(world, tmp_path / "v.db") as node:
        http, port = http_port_of(node), port_of(node)
        assert (await http_get_full(http, f"/chips/{ueid}/result"))[0] == 404  # no result yet
        with trio.fail_after(GUARD_S):
            run = await trio.run_process(
                [sys.executable, "-m", "attest.cli.main", "chip", "run", "--verifier",
                 f"{HOST}:{port}", "--state", str(chip_dir), "--rounds", "2", "--interval", "0",
                 "--out", str(out)],
                capture_stdout=True, capture_stderr=True, check=False,
            )  # fmt: skip
        assert run.returncode == 0, run.stderr
        saved = sorted(out.glob("*.result.cose"))
        assert [p.name for p in saved] == [
            f"{ueid}-{n:010d}.result.cose" for n in (1, 2)
        ]  # the chip's attest counter of each round
        status, headers, body = await http_get_full(http, f"/chips/{ueid}/result")
        assert status == 200 and headers["Content-Type"] == RESULT_MEDIA_TYPE
        assert body == saved[-1].read_bytes()  # the newest, byte for byte as received
        status, _, cert = await http_get_full(http, "/verifier/cert")
        assert status == 200 and cert == (out / "verifier.cert").read_bytes() == world.ver.cert
        # what a client may send instead of a UEID: 400, never an error of the node
        for bad in ("zz", ueid[:-2], ueid + "00", "02" + ueid[2:], "+" + ueid[1:], "", "%30"):
            got = await http_get_full(http, f"/chips/{bad}/result")
            assert got[0] == 400 and got[2].startswith(b"malformed ueid"), bad
        assert (await http_get_full(http, f"/chips/ {ueid}/result"))[0] == 400  # not HTTP
        for path in (f"/chips/{ueid}", f"/chips/{ueid}/result/x", f"/chips/{ueid}/evidence"):
            assert (await http_get_full(http, path))[0] == 404, path
        unknown = "01" + "ab" * 16
        assert (await http_get_full(http, f"/chips/{unknown}/result"))[:3:2] == (
            404,
            b"no result for this chip\n",
        )
    assert b"attest_handler_errors_total 0.0" in node.metrics.render()

    # the relying party checks the file with the certificate saved beside it
    capsys.readouterr()
    assert main(["result", "verify", str(saved[-1]), "--anchors", str(anchors)]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(
        rf"valid: AFFIRMING reasons=none ueid={ueid} verifier=kl-1 issued=\S+Z", line
    ), line
    assert main(["result", "verify", str(saved[0]), "--anchors", str(anchors), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] and doc["ueid"] == ueid and doc["tier"] == "AFFIRMING"
    # one flipped bit anywhere in the signed part: rejected, with the failed check named
    tampered = tmp_path / "tampered.cose"
    token = bytearray(saved[-1].read_bytes())
    token[-1] ^= 1
    tampered.write_bytes(bytes(token))
    args = ["--anchors", str(anchors), "--verifier-cert", str(out / "verifier.cert")]
    assert main(["result", "verify", str(tampered), *args]) == 1
    assert capsys.readouterr().out == (
        "invalid: signature: signature does not verify under the key of verifier 'kl-1'\n"
    )
    # usage: no certificate beside the file and none given
    assert main(["result", "verify", str(tampered), "--anchors", str(anchors)]) == 2
    assert "give the verifier's --verifier-cert" in capsys.readouterr().err


async def test_result_route_survives_resets_floods_and_a_broken_store(
    world: World, tmp_path: Path
) -> None:
    """The new route in the style of test_hardening: resets mid-request and a flood of result
    requests (up to the endpoint's connection limit) end only their own connections while
    sessions go on; a store that cannot read
    results answers 500 and the node keeps serving."""
    chip = world.chip()
    db = tmp_path / "v.db"
    async with daemon_node(world, db) as node:
        http, port = http_port_of(node), port_of(node)
        assert (await one_round(world, port, chip)).result.status == Tier.AFFIRMING
        path = f"/chips/{chip.ueid.hex()}/result"
        with trio.fail_after(GUARD_S):
            for data in (
                b"GET /chips/",
                f"GET {path}".encode(),
                f"GET {path} HTTP/1.1\r\n".encode(),
            ):
                for _ in range(5):
                    await reset_connection(http, data)
            got: list[int] = []

            async def fetch() -> None:
                got.append((await http_get_full(http, path))[0])

            # within the endpoint's MAX_CONNECTIONS (64) even if every reset above is still
            # being handled: beyond it, connections are closed unanswered by design
            flood_size = MAX_CONNECTIONS - 15 - 1
            async with trio.open_nursery() as flood:
                for _ in range(flood_size):
                    flood.start_soon(fetch)
                # a session competes with the flood for the store thread, and completes
                assert (await one_round(world, port, chip)).result.status == Tier.AFFIRMING
            assert got == [200] * flood_size
            raw = sqlite3.connect(db, isolation_level=None)
            raw.execute("DROP TABLE results")  # someone with the file broke the store
            raw.close()
            assert (await http_get_full(http, path))[::2] == (500, b"internal error\n")
            assert (await http_get_full(http, "/healthz"))[0] == 200
    assert b"attest_handler_errors_total 0.0" in node.metrics.render()


# -- verify_result: one crafted input per check ---------------------------------------------------


def _result(world: World, **changes: Any) -> AttestationResult:
    base = AttestationResult.of(
        verifier_id="kl-1", issued_at=world.now_s + 10, nonce=b"n" * 32, ueid=b"\x01" + bytes(
            range(16)), status=2, vector={0: 2}, policy_id="default", reasons=(),
        verifier_build="attest test", evidence_digest=b"d" * 32,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def _other_verifier(
    world: World, vid: str = "kl-1", *, authority: Authority | None = None
) -> bytes:
    key = SigningKey.derive_insecure_for_tests("relying-party-other-" + vid)
    return (authority or world.auth).certify_verifier(
        vid, "MY-KL", key.public_key, now_s=world.now_s
    )


def _reject(world: World, token: bytes, cert: bytes | None = None, **kw: Any) -> ResultRejected:
    kw.setdefault("now_s", world.now_s + 20)
    with pytest.raises(ResultRejected) as info:
        verify_result(token, cert or world.ver.cert, world.auth.anchors, **kw)
    return info.value


def test_an_honest_result_verifies(world: World) -> None:
    token = _result(world).sign(world.ver.key)
    result, cert = verify_result(
        token, world.ver.cert, world.auth.anchors, now_s=world.now_s + 20, max_age_s=10
    )
    assert result == _result(world) and cert.verifier_id == "kl-1"


def test_each_check_rejects_its_input(world: World) -> None:
    honest = _result(world).sign(world.ver.key)
    expiry = parse_general(world.ver.cert)  # the certificate's validity, for the expiry cases
    from attest.messages.certs import VerifierCert

    vc = VerifierCert.from_payload(expiry.payload)
    cases: list[tuple[bytes, dict[str, Any], ResultCheck, str]] = [
        (b"\x00garbage", {}, ResultCheck.ENVELOPE, "not a COSE_Sign1 token (not a COSE_Sign1: "
         "tag 18 missing)"),
        (Challenge("kl-1", 1, 2, b"n" * 32, "MY").sign(world.ver.key), {},
         ResultCheck.CONTENT_TYPE, "content type 'application/vnd.attest.challenge+cbor' is not "
         "'application/vnd.attest.result+cbor' (`attest inspect` shows what it is)"),
        (honest, {"cert": _other_verifier(world, authority=Authority(
            "authority.example", SigningKey.derive_insecure_for_tests("rogue")))},
         ResultCheck.VERIFIER_CERT,
         "the verifier certificate is not signed by authority 'authority.example'"),
        (honest, {"cert": _other_verifier(world)}, ResultCheck.SIGNATURE,
         "signature does not verify under the key of verifier 'kl-1'"),
        (honest[:-1] + bytes([honest[-1] ^ 1]), {}, ResultCheck.SIGNATURE,
         "signature does not verify under the key of verifier 'kl-1'"),
        (sign1(world.ver.key, ContentType.RESULT, encode({6: 1})), {}, ResultCheck.PAYLOAD,
         "missing required claim 10 (nonce)"),
        (_bad_header(world), {}, ResultCheck.CONTENT_TYPE, "expected content type "
         "'application/vnd.attest.result+cbor', got 'application/vnd.attest.result+cbor'"),
        (_signed_as(world, verifier_id="kl-2"), {}, ResultCheck.ISSUER,
         "the result names verifier 'kl-2', the certificate 'kl-1'"),
        (honest, {"revoked_verifiers": {"kl-1"}}, ResultCheck.REVOKED,
         "verifier 'kl-1' is on the revocation list"),
        (_result(world, issued_at=vc.expires_at).sign(world.ver.key), {"now_s": vc.expires_at},
         ResultCheck.EXPIRY, f"issued at {vc.expires_at}, outside its verifier certificate's "
         f"validity [{vc.issued_at}, {vc.expires_at})"),
        (_result(world, issued_at=vc.issued_at - 1).sign(world.ver.key), {}, ResultCheck.EXPIRY,
         f"issued at {vc.issued_at - 1}, outside its verifier certificate's validity "
         f"[{vc.issued_at}, {vc.expires_at})"),
        (honest, {"now_s": world.now_s + 10 - 301}, ResultCheck.FRESHNESS,
         f"issued at {world.now_s + 10}, in the future (now {world.now_s - 291})"),
        (honest, {"max_age_s": 9}, ResultCheck.FRESHNESS,
         "issued 10 s ago, more than the 9 s accepted"),
    ]  # fmt: skip
    for token, kw, check, detail in cases:
        got = _reject(world, token, **kw)
        assert (got.check, got.detail) == (check, detail)
        assert str(got) == f"{check}: {detail}"


def _signed_as(world: World, **hem: Any) -> bytes:
    r = _result(world)
    return dataclasses.replace(
        r,
        appraisal=dataclasses.replace(r.appraisal, hem=dataclasses.replace(r.appraisal.hem, **hem)),
    ).sign(world.ver.key)


def _bad_header(world: World) -> bytes:
    """A result signed under a protected header with one label more than our profile's."""
    from attest.codec.cose import TAG18, sig_structure

    protected = encode({1: -8, 3: str(ContentType.RESULT), 4: b"kid"})
    payload = _result(world).payload()
    signature = world.ver.key.sign(sig_structure(protected, payload))
    return TAG18 + encode([protected, {}, payload, signature])


# -- inspect: every token type of the vectors, read back by an independent EDN parser ---------


def _vector_tokens() -> dict[str, bytes]:
    """One token of each content type found in the published vectors."""
    found: dict[str, bytes] = {}

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and v.startswith("d284") and len(v) % 2 == 0:
            try:
                ct = parse_general(bytes.fromhex(v)).content_type
            except Exception:
                return
            if isinstance(ct, str):
                found.setdefault(ct, bytes.fromhex(v))

    for path in sorted((REPO / "vectors").glob("*.json")):
        walk(json.loads(path.read_text()))
    return found


def test_inspect_recognises_every_token_and_round_trips(tmp_path: Path) -> None:
    tokens = _vector_tokens()
    types = message_types()
    wanted = {
        "AttestationResult", "Evidence", "Challenge", "License", "Delegation", "PodCert",
        "DeviceCert", "ManufacturerCert", "VerifierCert", "RevocationList", "ReferenceValues",
        "AuditCheckpoint",
    }  # fmt: skip
    assert wanted <= {types[ct] for ct in tokens if ct in types}
    for ct, token in tokens.items():
        text = diagnostic(token)
        assert text.startswith(f"/ {types.get(ct, 'unknown message type')}, {len(token)} bytes")
        assert cbor_diag.diag2cbor(text) == token, ct  # the notation is the token, exactly
        doc = as_json(token)
        assert doc["type"] == types.get(ct) and doc["content_type"] == ct
        assert doc["protected"] == {"alg": -8, "content type": ct}


def test_inspect_names_the_claims_of_a_result() -> None:
    ct = str(ContentType.RESULT)
    token = _vector_tokens()[ct]
    text = diagnostic(token)
    for label in (
        "/ iat / 6:", "/ eat_nonce / 10:", "/ eat_profile / 265:", "/ submods / 266:",
        "/ ear_status / 1000:", "/ ear_trustworthiness_vector / 1001:",
        "/ ear_appraisal_policy_ids / 1003:", "/ hem-result / -70018:", "/ ueid / 256:",
        "/ hem-reasons / -70009:", "/ ear_verifier_id / 1004:", "/ developer / 0:",
        "/ alg / 1: -8 / EdDSA /",
    ):  # fmt: skip
        assert label in text, label
    claims = as_json(token)["claims"]
    hem = claims["submods"]["hem"]
    assert hem["ear_status"] in (2, 32, 96) and "hem-evidence-digest" in hem["hem-result"]
    # a contraindicated result: the tier and each reason are named in comments
    reasons = (int(Reason.EVIDENCE_REPLAY), int(Reason.COUNTER_ROLLBACK))
    bad = AttestationResult.of(
        verifier_id="kl-1", issued_at=NOW, nonce=b"n" * 32, ueid=b"\x01" + bytes(16), status=96,
        vector={0: 96}, policy_id="p", reasons=reasons, verifier_build="b",
        evidence_digest=b"d" * 32,
    ).sign(SigningKey.derive_insecure_for_tests("any"))  # fmt: skip
    text = diagnostic(bad)
    assert "/ ear_status / 1000: 96 / contraindicated /" in text
    assert f"[{reasons[0]} / EVIDENCE_REPLAY /, {reasons[1]} / COUNTER_ROLLBACK /]" in text
    assert cbor_diag.diag2cbor(text) == bad


def test_claim_names_are_spec_section_5s() -> None:
    spec = (REPO / "SPEC.md").read_text()
    table = spec.split("## 5. Claim keys", 1)[1].split("**Keys inside", 1)[0]
    rows = re.findall(r"^\| (−?\d+) \| `([^`]+)` \|[^|]*\|[^|]*\| ([^|]*)\|$", table, re.M)
    assert len(rows) > 60
    for key, name, used in rows:
        if used.startswith("retired"):
            continue
        assert CLAIM_NAMES[int(key.replace("−", "-"))] == name, key


def test_inspect_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = _vector_tokens()
    result = tmp_path / "r.cose"
    result.write_bytes(tokens[str(ContentType.RESULT)])
    evidence = tmp_path / "e.cose"
    evidence.write_bytes(tokens[str(ContentType.EVIDENCE)])
    assert main(["inspect", str(evidence)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("/ Evidence,") and "/ measurements / 273: [[258 / swid+cbor /, <<" in out
    assert main(["result", "inspect", str(result), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["type"] == "AttestationResult"
    assert main(["result", "inspect", str(evidence)]) == 1
    assert "holds Evidence, not an AttestationResult" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.write_bytes(b"not cbor")
    assert main(["inspect", str(junk)]) == 1
    assert "not a token of this protocol" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    # a foreign COSE_Sign1 (another content type): printed with what can be named
    foreign = tmp_path / "foreign.cose"
    foreign.write_bytes(
        sign1(
            SigningKey.derive_insecure_for_tests("x"), "application/foo", encode({1: "me", 99: 1})
        )
    )
    assert main(["inspect", str(foreign)]) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith("/ unknown message type,")
        and '/ iss / 1: "me"' in out
        and "\n    99: 1" in out
    )


def test_inspect_escapes_what_a_terminal_would_obey() -> None:
    hostile = sign1(
        SigningKey.derive_insecure_for_tests("x"), "application/foo", encode({1: "a\u202eb\x1b[2J"})
    )
    text = diagnostic(hostile)
    assert text.isascii() and "\x1b" not in text and '"a\\u202eb\\u001b[2J"' in text
    assert cbor_diag.diag2cbor(text) == hostile


def test_result_verify_reads_stdin(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    anchors, cert = tmp_path / "anchors.json", tmp_path / "v.cert"
    files.write_anchors(anchors, world.auth.anchors)
    cert.write_bytes(world.ver.cert)
    token = _result(world, issued_at=world.now_s).sign(world.ver.key)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(token)))
    assert (
        main(["result", "verify", "-", "--anchors", str(anchors), "--verifier-cert", str(cert)])
        == 0
    )
    assert capsys.readouterr().out.startswith("valid: AFFIRMING reasons=none ueid=01000102")
    assert main(["result", "verify", "-", "--anchors", str(anchors)]) == 2  # no cert beside stdin
