"""Chip vendors bring their own chips: external device keys, models and reference values.

The README's "Bring your own chip" script runs here verbatim (OpenSSL makes the key and signs
for the chip); the other tests pin each refusal on the way with its exact error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import MappingProxyType

import pytest
from cli_support import HANG_TIMEOUT_S, Cli, World, make_world, secret_hexes, serve
from conftest import Bench

from attest.chip.device import Chip, ChipCheck
from attest.chip.signers import CommandSigner, SignerError
from attest.codec.cose import parse_sign1
from attest.errors import AttestError, CertificateError, ChipRefusal, StoreError
from attest.hardware import DEFAULT_MODELS, ChipModel, simulated_firmware_measurement
from attest.identity import EndorsementRequest, Manufacturer, new_ueid
from attest.keys import SigningKey, parse_public_key, write_secret_key
from attest.messages.certs import DeviceCert
from attest.messages.reference import FirmwareReference, FirmwareStatus, ReferenceValues
from attest.store import SqliteStore
from attest.testvectors.world import build_world
from attest.verify.policy import Policy
from attest.verify.reasons import Reason
from attest.verify.references import open_reference_values, with_reference_values

REPO = Path(__file__).resolve().parent.parent
NOW_S = 1_800_000_000
QX9 = ChipModel("QX9", 2 * 10**15, 900_000, 18 * 10**11, 16)
FW = hashlib.sha256(b"qx9 firmware 3.1.0").digest()

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl(1)")


def _readme_script() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Bring your own chip", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README has no script under 'Bring your own chip'"
    return match.group(1)


@needs_openssl
def test_the_readme_bring_your_own_chip_script_runs_as_written(tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "attest").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m attest.cli.main "$@"\n')
    (shim / "attest").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", _readme_script()],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the script's background node dies with its group
    )
    try:
        out, err = proc.communicate(timeout=4 * HANG_TIMEOUT_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, f"script failed:\n{out}\n{err}\n{_log(work)}"
    verdicts = [line.split()[1:-1] for line in out.splitlines() if "counter=" in line]
    assert verdicts == [["AFFIRMING"], ["AFFIRMING"], ["WARNING", "FIRMWARE_UNKNOWN"]]
    # the key never entered attest: no attest key file in the chip, no seed in any output
    assert not (work / "chip" / "device.key").exists()
    seed = _openssl_seed(work / "device.pem")
    for path in work.rglob("*"):
        if path.is_file() and path.name != "device.pem":
            assert seed not in path.read_bytes(), f"{path} holds the device secret"


def _log(work: Path) -> str:
    log = work / "node.log"
    return log.read_text() if log.exists() else ""


def _openssl_seed(pem: Path) -> bytes:
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(pem), "-outform", "DER"], capture_output=True, check=True
    ).stdout
    return der[-32:]  # PKCS#8 Ed25519: the seed is the final OCTET STRING


# -- the manufacturer's side: endorse ------------------------------------------------------------


def _world(cli: Cli, tmp_path: Path) -> World:
    return make_world(cli, tmp_path)


@pytest.fixture(scope="module")
def fab(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One authority, manufacturer and verifier for the tests that only read them."""
    return make_world(Cli(), tmp_path_factory.mktemp("fab"))


def test_batch_endorsement_round_trip_and_enrolment(tmp_path: Path) -> None:
    cli = Cli()
    w = _world(cli, tmp_path)
    anchors = w.manufacturer / "anchors.json"
    lines = []
    for i in range(3):
        out = cli.ok(
            "chip", "create", "--state", tmp_path / f"c{i}", "--anchors", anchors,
            "--model", "HX100", "--no-licensing",
        )  # fmt: skip
        lines.append(out.strip())
        assert json.loads(out)["format"] == "attest-endorsement-request-v1"
    (tmp_path / "requests.jsonl").write_text("\n".join(lines) + "\n")
    out = cli.ok(
        "manufacturer", "endorse", "--manufacturer", w.manufacturer,
        "--batch", tmp_path / "requests.jsonl", "--out", tmp_path / "endorsed.jsonl",
    )  # fmt: skip
    assert [line.split()[1:] for line in out.splitlines()] == [["HX100", "8"]] * 3
    for i in range(3):
        assert "endorsed" in cli.ok(
            "chip", "install-cert", "--state", tmp_path / f"c{i}", tmp_path / "endorsed.jsonl"
        )
    out = cli.ok("verifier", "enroll", "--config", w.config, tmp_path / "endorsed.jsonl")
    assert out.splitlines()[-1] == "enrolled 3, already known 0, failed 0"
    # a chip created but never endorsed cannot attest, with a message that says why
    cli.ok("chip", "create", "--state", tmp_path / "bare", "--anchors", anchors, "--model", "CX10")
    with serve(w) as node:
        proc = cli.run(
            "chip", "run", "--verifier", f"127.0.0.1:{node.port}", "--state", tmp_path / "bare"
        )
    assert proc.returncode == 3
    assert "has no device certificate yet" in proc.stderr
    assert all(s not in o for s in secret_hexes(w.key_files()) for o in cli.outputs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device-key", "00" * 31, "--model", "HX100"], "not an Ed25519 public key"),
        (["--device-key", "11" * 32], "--device-key needs --model"),
        (["--device-key", "11" * 32, "--model", "QX9"], "give the chip's pod class"),
        (["--device-key", "11" * 32, "--model", "Q" * 33, "--pod-class", "1"], "hwmodel"),
        (["--device-key", "11" * 32, "--model", "HX100", "--ueid", "02" * 17], "UEID"),
    ],
)
def test_endorse_refuses_what_it_cannot_certify(
    fab: World, tmp_path: Path, args: list[str], message: str
) -> None:
    cli, w = Cli(), fab
    out = tmp_path / "e.jsonl"
    proc = cli.run("manufacturer", "endorse", "--manufacturer", w.manufacturer, *args, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not out.exists()  # nothing half-written


def test_endorse_batch_refuses_duplicates_and_malformed_lines(fab: World, tmp_path: Path) -> None:
    cli, w = Cli(), fab
    request = {
        "format": "attest-endorsement-request-v1",
        "ueid": new_ueid().hex(),
        "publicKey": "22" * 32,
        "hwmodel": "HX100",
    }
    batch = tmp_path / "r.jsonl"
    for lines, message in (
        ([request, request], "requested twice"),
        ([request, {**request, "format": "x"}], ":2: not an attest-endorsement-request-v1"),
        ([{**request, "podClass": 0}], "podClass must be an integer >= 1"),
    ):
        batch.write_text("".join(json.dumps(r) + "\n" for r in lines))
        proc = cli.run(
            "manufacturer", "endorse", "--manufacturer", w.manufacturer,
            "--batch", batch, "--out", tmp_path / "e.jsonl",
        )  # fmt: skip
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    batch.write_text("{not json\n")
    proc = cli.run(
        "manufacturer", "endorse", "--manufacturer", w.manufacturer,
        "--batch", batch, "--out", tmp_path / "e.jsonl",
    )  # fmt: skip
    assert proc.returncode == 2 and "r.jsonl:1: not valid JSON" in proc.stderr


def test_manufacturer_endorse_request_defaults_the_pod_class_to_the_models_maximum() -> None:
    w = build_world()
    mfr = w.manufacturers["mfr-a"]
    key = SigningKey.generate().public_key
    e = mfr.endorse_request(EndorsementRequest(new_ueid(), key, "HX800"), now_s=NOW_S)
    assert DeviceCert.verify(e.device_cert, mfr.key.public_key).pod_class == 64
    with pytest.raises(CertificateError, match="not built in"):
        mfr.endorse_request(EndorsementRequest(new_ueid(), key, "QX9"), now_s=NOW_S)


# -- the chip's side: create, install ------------------------------------------------------------


def test_a_created_chip_installs_only_its_own_valid_certificate(tmp_path: Path) -> None:
    w = build_world()
    mfr = w.manufacturers["mfr-a"]
    chip = Chip.create(
        anchors=w.anchors, ueid=new_ueid(), hwmodel="HX100", firmware_version=(1, 2, 0),
        state_dir=tmp_path / "c",
    )  # fmt: skip
    assert not chip.endorsed
    with pytest.raises(AttestError, match="no device certificate yet"):
        _ = chip.chain

    def cert(**changes: object) -> bytes:
        fields: dict = {
            "ueid": chip.ueid, "hwmodel": "HX100", "pod_class": 8, "now_s": NOW_S
        }  # fmt: skip
        key = changes.pop("key", chip.public_key)
        fields.update(changes)
        return mfr.endorse(key, **fields)  # type: ignore[arg-type]

    other = SigningKey.generate().public_key
    rogue = w.manufacturers["mfr-rogue"]
    for device_cert, manufacturer_cert, detail in (
        (cert(ueid=new_ueid()), mfr.cert, "another UEID, key or model"),
        (cert(key=other), mfr.cert, "another UEID, key or model"),
        (cert(hwmodel="HX800"), mfr.cert, "another UEID, key or model"),
        (cert(), rogue.cert, "does not verify"),
        (b"\x00garbage", mfr.cert, "does not verify"),
    ):
        with pytest.raises(ChipRefusal) as refused:
            chip.install_endorsement(device_cert, manufacturer_cert)
        assert refused.value.reason == ChipCheck.ENDORSEMENT_INVALID
        assert detail in str(refused.value)
        assert not Chip.load(tmp_path / "c").endorsed  # nothing installed, nothing persisted
    chip.install_endorsement(cert(), mfr.cert)
    again = Chip.load(tmp_path / "c")
    assert again.endorsed and again.chain == chip.chain


def test_chip_state_keeps_a_vendor_model_and_firmware_measurement(tmp_path: Path) -> None:
    w = build_world()
    chip = Chip.create(
        anchors=w.anchors, ueid=new_ueid(), hwmodel="QX9", model=QX9,
        firmware_version=(3, 1, 0), firmware_measurement=FW, state_dir=tmp_path / "c",
    )  # fmt: skip
    again = Chip.load(tmp_path / "c")
    assert again.model == QX9 and again.firmware_measurement == FW
    again.install_firmware((3, 2, 0))
    assert Chip.load(tmp_path / "c").firmware_measurement == simulated_firmware_measurement(
        (3, 2, 0)
    )
    with pytest.raises(ValueError, match="unknown chip model"):
        Chip.create(anchors=w.anchors, ueid=new_ueid(), hwmodel="QX9", firmware_version=(1,))
    assert chip.model is QX9


# -- the Signer seam and the command signer -------------------------------------------------


@needs_openssl
def test_command_signer_signs_with_an_openssl_key(tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", pem], check=True)
    pub = subprocess.run(
        ["openssl", "pkey", "-in", pem, "-pubout"], capture_output=True, check=True
    ).stdout
    key = parse_public_key(pub)
    signer = CommandSigner(
        ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(pem), "-in", "{message}"], key
    )
    message = bytes(range(256)) * 4
    assert key.verify(message, signer.sign(message))
    assert CommandSigner.from_state(signer.to_state()).argv == signer.argv
    assert (
        str(pem) in signer.argv
        and b"PRIVATE" not in json.dumps(signer.to_state(), default=str).encode()
    )


def test_command_signer_failures_are_caught_before_anything_is_sent(tmp_path: Path) -> None:
    key = SigningKey.generate()
    other = SigningKey.generate()
    script = tmp_path / "sign.py"
    script.write_text(
        "import sys\n"
        "from attest.keys import read_secret_key\n"
        "k = read_secret_key(sys.argv[1])\n"
        "sys.stdout.buffer.write(k.sign(open(sys.argv[2], 'rb').read()))\n"
    )
    write_secret_key(tmp_path / "other.key", other)
    wrong_key = CommandSigner(
        [sys.executable, str(script), str(tmp_path / "other.key"), "{message}"], key.public_key
    )
    with pytest.raises(SignerError, match="not a valid Ed25519 signature"):
        wrong_key.sign(b"m")
    failing = CommandSigner(["sh", "-c", "echo no HSM >&2; exit 7", "{message}"], key.public_key)
    with pytest.raises(SignerError, match="exited 7: no HSM"):
        failing.sign(b"m")
    missing = CommandSigner(["/nonexistent/signer", "{message}"], key.public_key)
    with pytest.raises(SignerError, match="did not run"):
        missing.sign(b"m")
    slow = CommandSigner(
        ["sh", "-c", "exec sleep 5", "sh", "{message}"], key.public_key, timeout_s=0.2
    )
    with pytest.raises(SignerError, match=r"no signature within 0\.2 s"):
        slow.sign(b"m")
    with pytest.raises(ValueError, match=r"\{message\}"):
        CommandSigner(["openssl", "pkeyutl"], key.public_key)


def test_a_chip_whose_signer_fails_sends_nothing() -> None:
    w = build_world()
    key = SigningKey.generate()
    broken = Chip.create(
        anchors=w.anchors, ueid=new_ueid(), hwmodel="HX100", firmware_version=(1, 2, 0),
        signer=CommandSigner(["false", "{message}"], key.public_key),
    )  # fmt: skip
    _, token = w.challenge("signer/fails")
    ch = broken.accept_challenge(w.verifiers["kl-1"].cert, token, NOW_S)
    with pytest.raises(SignerError, match="exited 1"):
        broken.answer(ch, NOW_S)
    # the counter value is burnt (durably advanced, never signed): it can never be reused
    assert broken.attest_counter == 1


# -- reference values ----------------------------------------------------------------------------


def _doc(mfr: Manufacturer, *, number: int = 1, models=(QX9,), firmware=None) -> bytes:  # type: ignore[no-untyped-def]
    if firmware is None:
        firmware = (FirmwareReference("QX9", (3, 1, 0), FW, FirmwareStatus.CURRENT),)
    return mfr.reference_values(number=number, models=models, firmware=firmware, now_s=NOW_S)


def test_reference_values_open_only_under_a_certified_unexpired_issuer() -> None:
    w = build_world()
    mfr = w.manufacturers["mfr-a"]
    doc = open_reference_values(_doc(mfr), w.anchors, now_s=NOW_S)
    assert doc.issuer == "mfr-a" and doc.models == (QX9,) and doc.firmware[0].measurement == FW
    rogue = w.manufacturers["mfr-rogue"]
    impostor = Manufacturer("mfr-a", rogue.key, mfr.cert)  # mfr-a's certificate, another key
    for token, message in (
        (_doc(rogue), "not a reference-values document of this authority"),
        (_doc(impostor), "do not verify"),
        (_doc(mfr)[:-1], "not a reference-values document"),
        (_doc(w.manufacturers["mfr-expiring"]), "certificate expired"),
    ):
        with pytest.raises(CertificateError, match=message):
            open_reference_values(token, w.anchors, now_s=NOW_S + 400 * 86400)


def test_reference_values_refuse_inconsistent_documents() -> None:
    w = build_world()
    mfr = w.manufacturers["mfr-a"]
    stray = FirmwareReference("HX800", (2, 0, 0), FW, FirmwareStatus.CURRENT)
    twice = FirmwareReference("QX9", (3, 1, 0), FW, FirmwareStatus.REVOKED)
    for kwargs, message in (
        ({"firmware": (stray,)}, "a model the document does not declare"),
        ({"models": (QX9, QX9)}, "listed twice"),
        ({"firmware": (twice, twice)}, "listed twice"),
    ):
        with pytest.raises((AttestError, ValueError), match=message):
            _doc(mfr, **kwargs)


def test_one_model_name_belongs_to_one_vendor() -> None:
    w = build_world()
    a = open_reference_values(_doc(w.manufacturers["mfr-a"]), w.anchors, now_s=NOW_S)
    b = open_reference_values(_doc(w.manufacturers["mfr-expiring"]), w.anchors, now_s=NOW_S)
    with pytest.raises(CertificateError, match="declared by 'mfr-a' and by 'mfr-expiring'"):
        with_reference_values(Policy(), [a, b])
    faster = ChipModel("HX100", 10**18, 1, 1, 1)
    c = open_reference_values(
        _doc(w.manufacturers["mfr-a"], models=(faster,), firmware=()), w.anchors, now_s=NOW_S
    )
    with pytest.raises(CertificateError, match="redefines the built-in model 'HX100'"):
        with_reference_values(Policy(), [c])
    same = open_reference_values(
        _doc(w.manufacturers["mfr-a"], models=(DEFAULT_MODELS["HX100"],), firmware=()),
        w.anchors,
        now_s=NOW_S,
    )
    assert with_reference_values(Policy(), [same]).models["HX100"] == DEFAULT_MODELS["HX100"]


def test_firmware_status_and_precedence_in_appraisal(tmp_path: Path) -> None:
    """Outdated gives FIRMWARE_OUTDATED; a referenced model ignores the version table."""
    w = build_world()
    b = Bench(w, w.chip("hx100-a"))
    version = b.chip.firmware_version
    sim = simulated_firmware_measurement(version)

    def verdict(*refs: FirmwareReference) -> tuple[Reason, ...]:
        policy = Policy(references=MappingProxyType({(r.hwmodel, r.version): r for r in refs}))
        ch = b.challenge(f"fw/{len(refs)}/{refs[0].status if refs else ''}")
        return tuple(b.appraise(b.answer(ch), ch, policy=policy).verdict.reasons)

    assert verdict(FirmwareReference("HX100", version, sim, FirmwareStatus.OUTDATED)) == (
        Reason.FIRMWARE_OUTDATED,
    )
    patched = hashlib.sha256(b"vendor image").digest()
    assert verdict(FirmwareReference("HX100", version, patched, FirmwareStatus.CURRENT)) == (
        Reason.FIRMWARE_MEASUREMENT_MISMATCH,
    )
    other = FirmwareReference("HX100", (9, 9), sim, FirmwareStatus.CURRENT)
    assert verdict(other) == (Reason.FIRMWARE_UNKNOWN,)
    assert verdict() == ()


# -- the node: provision and the store ----------------------------------------------------------


def test_store_keeps_the_newest_document_per_vendor(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "db", verifier_id="kl-1") as store:
        store.put_reference_values("mfr-a", 2, b"two")
        with pytest.raises(StoreError, match="not newer than the stored document 2"):
            store.put_reference_values("mfr-a", 2, b"again")
        with pytest.raises(StoreError, match="not newer"):
            store.put_reference_values("mfr-a", 1, b"older")
        store.put_reference_values("mfr-b", 1, b"b")
    with SqliteStore(tmp_path / "db", verifier_id="kl-1") as store:
        assert store.reference_values() == [("mfr-a", 2, b"two"), ("mfr-b", 1, b"b")]


def test_provision_refuses_stale_foreign_and_clashing_documents(tmp_path: Path) -> None:
    cli = Cli()
    w = _world(cli, tmp_path)
    src = tmp_path / "rv.json"

    def signed(number: int, model: str = "QX9", name: str = "rv") -> Path:
        src.write_text(
            json.dumps(
                {
                    "format": "attest-reference-values-source-v1",
                    "number": number,
                    "models": [
                        {
                            "name": model,
                            "peakFlopsPerS": 10**15,
                            "peakPowerMw": 500_000,
                            "peakInterconnectBytesPerS": 10**12,
                            "maxPodSize": 8,
                        }
                    ],
                    "firmware": [
                        {
                            "hwmodel": model,
                            "version": "3.1.0",
                            "measurement": FW.hex(),
                            "status": "current",
                        }
                    ],
                }
            )
        )
        out = tmp_path / f"{name}-{number}.cose"
        cli.ok(
            "manufacturer", "reference-values", "--manufacturer", w.manufacturer, src, "--out", out
        )
        return out

    first = signed(2)
    assert "models QX9; firmware 3.1.0" in cli.ok(
        "verifier", "provision", "--config", w.config, first
    )
    for path, message in (
        (
            first,
            "RV_NOT_NEWER: reference values 2 of 'mfr-a' are not newer than the held document 2",
        ),
        (signed(1), "RV_NOT_NEWER"),
        (tmp_path / "rv.json", "not a reference-values document"),
    ):
        proc = cli.run("verifier", "provision", "--config", w.config, path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    # another vendor may not declare QX9
    cli.ok(
        "authority", "certify-manufacturer", "--dir", w.authority, "--id", "mfr-b",
        "--out", tmp_path / "mfr-b",
    )  # fmt: skip
    src_b = json.loads(src.read_text())
    src_b["number"] = 1
    src.write_text(json.dumps(src_b))
    theirs = tmp_path / "b.cose"
    cli.ok(
        "manufacturer",
        "reference-values",
        "--manufacturer",
        tmp_path / "mfr-b",
        src,
        "--out",
        theirs,
    )
    proc = cli.run("verifier", "provision", "--config", w.config, theirs)
    assert proc.returncode == 2 and "declared by 'mfr-a' and by 'mfr-b'" in proc.stderr
    # the source is checked before anything is signed
    src.write_text(json.dumps({**src_b, "number": 0}))
    proc = cli.run(
        "manufacturer", "reference-values", "--manufacturer", w.manufacturer, src,
        "--out", tmp_path / "x.cose",
    )  # fmt: skip
    assert proc.returncode == 2 and "number must be an integer >= 1" in proc.stderr


def test_reference_values_token_is_a_cose_sign1_of_its_own_content_type() -> None:
    w = build_world()
    token = _doc(w.manufacturers["mfr-a"])
    assert parse_sign1(token).content_type == "application/vnd.attest.reference-values+cbor"
    assert ReferenceValues.verify(token, w.manufacturers["mfr-a"].key.public_key).number == 1


def test_a_running_node_takes_provisioned_reference_values_on_sighup(tmp_path: Path) -> None:
    """Provisioned while the node runs: its vendor's model is unknown until SIGHUP, then known."""
    cli = Cli()
    w = _world(cli, tmp_path)
    src = tmp_path / "rv.json"
    src.write_text(
        json.dumps(
            {
                "format": "attest-reference-values-source-v1",
                "number": 1,
                "models": [
                    {
                        "name": "QX9",
                        "peakFlopsPerS": 2 * 10**15,
                        "peakPowerMw": 900_000,
                        "peakInterconnectBytesPerS": 18 * 10**11,
                        "maxPodSize": 16,
                    }
                ],
                "firmware": [
                    {
                        "hwmodel": "QX9",
                        "version": "3.1.0",
                        "measurement": FW.hex(),
                        "status": "current",
                    }
                ],
            }
        )
    )
    rv = tmp_path / "rv.cose"
    cli.ok("manufacturer", "reference-values", "--manufacturer", w.manufacturer, src, "--out", rv)
    request = cli.ok(
        "chip", "create", "--state", tmp_path / "chip",
        "--anchors", w.manufacturer / "anchors.json",
        "--model", "QX9", "--reference-values", rv, "--firmware", "3.1.0",
        "--firmware-measurement", FW.hex(), "--pod-class", "8", "--no-licensing",
    )  # fmt: skip
    (tmp_path / "req.jsonl").write_text(request)
    cli.ok(
        "manufacturer", "endorse", "--manufacturer", w.manufacturer,
        "--batch", tmp_path / "req.jsonl", "--out", tmp_path / "e.jsonl",
    )  # fmt: skip
    cli.ok("chip", "install-cert", "--state", tmp_path / "chip", tmp_path / "e.jsonl")

    def attest_once(port: int) -> str:
        proc = cli.run(
            "chip", "run", "--verifier", f"127.0.0.1:{port}", "--state", tmp_path / "chip"
        )
        return proc.stdout

    with serve(w, {"ATTEST_LOG_FORMAT": "json"}, name="rv-hup") as node:
        assert "CONTRAINDICATED UNKNOWN_HWMODEL" in attest_once(node.port)
        cli.ok("verifier", "provision", "--config", w.config, rv)
        assert "UNKNOWN_HWMODEL" in attest_once(node.port)  # not before the node is told
        node.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + HANG_TIMEOUT_S
        while '"reloaded"' not in node.log.read_text():
            assert time.monotonic() < deadline, node.log.read_text()
            time.sleep(0.02)
        assert "AFFIRMING" in attest_once(node.port)
