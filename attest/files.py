"""The on-disk layout of identities, shared by the node, the tools and every ``attest`` command.

One folder per role, written by ``attest authority ...`` (attest.node.provision) and read by the
node and the other commands::

    AUTHORITY_DIR/  authority.key (0600)  anchors.json  revocations.json  revocations.cose
    MANUFACTURER/   manufacturer.key (0600)  manufacturer.cert  manufacturer.json  anchors.json
    VERIFIER/       verifier.key (0600)  verifier.cert  anchors.json  verifier.toml  verifier.db
    CHIPS/          chip-0001/ chip-0002/ ...  (or one chip's state folder itself)

Certificates and revocation lists are the raw COSE_Sign1 bytes. Everything read here is checked
against the trust anchors before use: a folder whose key does not match its certificate, or a
certificate the authority did not sign, is refused rather than half-loaded. Missing or malformed
files raise :class:`ConfigError` (the operator pointed at the wrong place); files that parse but
fail a cryptographic check raise :class:`CertificateError`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from attest.codec.cose import parse_sign1
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ConfigError, DecodeError
from attest.hardware import ChipModel
from attest.identity import (
    Authority,
    Endorsement,
    EndorsementRequest,
    Manufacturer,
    VerifierIdentity,
)
from attest.keys import PublicKey, SigningKey, parse_public_key, read_secret_key
from attest.messages.certs import ManufacturerCert, VerifierCert
from attest.messages.content import ContentType
from attest.messages.reference import FirmwareReference, FirmwareStatus
from attest.messages.revocation import RevocationList, Revocations
from attest.verify.chain import TrustAnchors, verify_verifier_cert
from attest.verify.policy import parse_version

ANCHORS_FILE = "anchors.json"
ANCHORS_FORMAT = "attest-anchors-v1"

AUTHORITY_KEY_FILE = "authority.key"
REVOCATION_STATE_FILE = "revocations.json"
REVOCATION_STATE_FORMAT = "attest-revocation-state-v1"
REVOCATION_TOKEN_FILE = "revocations.cose"

MANUFACTURER_KEY_FILE = "manufacturer.key"
MANUFACTURER_CERT_FILE = "manufacturer.cert"
MANUFACTURER_INFO_FILE = "manufacturer.json"

VERIFIER_KEY_FILE = "verifier.key"
VERIFIER_CERT_FILE = "verifier.cert"
VERIFIER_CONFIG_FILE = "verifier.toml"
VERIFIER_DB_FILE = "verifier.db"

#: a chip's state folder holds this file (attest.chip.device)
CHIP_STATE_FILE = "state.cbor"
CHIP_DIR_PREFIX = "chip-"


# -- small readers ---------------------------------------------------------------------------
def read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (expected the {what})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def read_key(path: Path, what: str) -> SigningKey:
    try:
        return read_secret_key(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (expected the {what})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except AttestError as exc:
        raise ConfigError(str(exc)) from None


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(read_bytes(path, what))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Durably write a small public JSON document."""
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def refuse_overwrite(path: Path, force: bool) -> None:
    """Identity files are never silently replaced: a lost key cannot be recovered."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to replace it)")


# -- trust anchors ---------------------------------------------------------------------------
def anchors_document(anchors: TrustAnchors) -> dict[str, str]:
    return {
        "authority_id": anchors.authority_id,
        "public_key": anchors.authority_key.raw.hex(),
        "format": ANCHORS_FORMAT,
    }


def write_anchors(path: Path, anchors: TrustAnchors) -> None:
    write_json(path, anchors_document(anchors))


def write_bytes(path: Path, data: bytes) -> None:
    """Durably write a public file (a certificate, a signed document)."""
    atomic_write(path, data)


def read_anchors(path: str | os.PathLike[str]) -> TrustAnchors:
    """Parse an ``anchors.json`` trust-anchor file."""
    path = Path(path)
    doc = read_json(path, "trust-anchor file")
    if doc.get("format") != ANCHORS_FORMAT:
        raise ConfigError(f"{path}: not an {ANCHORS_FORMAT} trust-anchor file")
    authority_id, key_hex = doc.get("authority_id"), doc.get("public_key")
    if not isinstance(authority_id, str) or not authority_id or not isinstance(key_hex, str):
        raise ConfigError(f"{path}: authority_id and public_key must be strings")
    try:
        return TrustAnchors(authority_id, PublicKey(bytes.fromhex(key_hex)))
    except (ValueError, AttestError):
        raise ConfigError(f"{path}: public_key must be 64 hex digits") from None


# -- authority -------------------------------------------------------------------------------
def load_authority(folder: str | os.PathLike[str]) -> Authority:
    """The authority of ``folder``; its key must match the public key in its anchors.json."""
    folder = Path(folder)
    anchors = read_anchors(folder / ANCHORS_FILE)
    key = read_key(folder / AUTHORITY_KEY_FILE, "authority secret key")
    if key.public_key != anchors.authority_key:
        raise CertificateError(f"{folder}: {AUTHORITY_KEY_FILE} does not match {ANCHORS_FILE}")
    return Authority(anchors.authority_id, key)


# -- manufacturer ----------------------------------------------------------------------------
def load_manufacturer(
    folder: str | os.PathLike[str], *, now_s: int | None = None
) -> tuple[Manufacturer, TrustAnchors]:
    """A manufacturer folder, checked: cert signed by the authority, unexpired, matching key."""
    folder = Path(folder)
    anchors = read_anchors(folder / ANCHORS_FILE)
    token = read_bytes(folder / MANUFACTURER_CERT_FILE, "manufacturer certificate")
    key = read_key(folder / MANUFACTURER_KEY_FILE, "manufacturer secret key")
    try:
        cert = ManufacturerCert.verify(token, anchors.authority_key)
    except AttestError as exc:
        raise CertificateError(
            f"{folder / MANUFACTURER_CERT_FILE}: not signed by authority "
            f"{anchors.authority_id!r}: {exc}"
        ) from None
    if cert.issuer != anchors.authority_id:
        raise CertificateError(f"{folder}: certificate issued by {cert.issuer!r}")
    if cert.public_key != key.public_key:
        raise CertificateError(f"{folder}: {MANUFACTURER_KEY_FILE} does not match the certificate")
    now_s = int(time.time()) if now_s is None else now_s
    if now_s >= cert.expires_at:
        raise CertificateError(f"{folder}: manufacturer certificate expired")
    return Manufacturer(cert.manufacturer_id, key, token), anchors


# -- verifier --------------------------------------------------------------------------------
def load_verifier_identity(
    key_file: str | os.PathLike[str],
    cert_file: str | os.PathLike[str],
    anchors: TrustAnchors,
    *,
    now_s: int | None = None,
) -> VerifierIdentity:
    """A verifier node's identity; the cert must be the authority's and match the key."""
    key = read_key(Path(key_file), "verifier secret key")
    token = read_bytes(Path(cert_file), "verifier certificate")
    cert = verify_verifier_cert(token, anchors)
    if cert is None:
        raise CertificateError(
            f"{cert_file}: not a verifier certificate signed by authority {anchors.authority_id!r}"
        )
    if cert.public_key != key.public_key:
        raise CertificateError(f"{key_file} does not match the certificate {cert_file}")
    now_s = int(time.time()) if now_s is None else now_s
    if now_s >= cert.expires_at:
        raise CertificateError(f"{cert_file}: verifier certificate expired (chips will refuse it)")
    return VerifierIdentity(cert.verifier_id, cert.region, key, token)


def read_verifier_public_key(
    cert_file: str | os.PathLike[str], anchors: TrustAnchors | None = None
) -> tuple[str, PublicKey]:
    """(verifier_id, public key) from a verifier certificate, for auditors.

    With ``anchors`` the certificate must be signed by the authority; without them its signature
    is not checked (the auditor vouches for the file, e.g. fetched from the authority).
    """
    token = read_bytes(Path(cert_file), "verifier certificate")
    if anchors is not None:
        cert = verify_verifier_cert(token, anchors)
        if cert is None:
            raise CertificateError(f"{cert_file}: not signed by authority {anchors.authority_id!r}")
        return cert.verifier_id, cert.public_key
    try:
        msg = parse_sign1(token)
        if msg.content_type != ContentType.VERIFIER_CERT:
            raise DecodeError(f"content type is {msg.content_type!r}")
        parsed = VerifierCert.from_payload(msg.payload)
    except AttestError as exc:
        raise ConfigError(f"{cert_file}: not a verifier certificate: {exc}") from None
    return parsed.verifier_id, parsed.public_key


# -- revocations -----------------------------------------------------------------------------
def read_revocation_state(folder: Path) -> dict[str, Any]:
    """The authority's running revocation state (number + sets); empty if none was issued."""
    path = folder / REVOCATION_STATE_FILE
    if not path.exists():
        empty: dict[str, Any] = {name: [] for name in ("devices", "manufacturers", "verifiers")}
        return {"format": REVOCATION_STATE_FORMAT, "number": 0, **empty}
    doc = read_json(path, "revocation state")
    if doc.get("format") != REVOCATION_STATE_FORMAT or type(doc.get("number")) is not int:
        raise ConfigError(f"{path}: not an {REVOCATION_STATE_FORMAT} file")
    for name in ("devices", "manufacturers", "verifiers"):
        if not isinstance(doc.get(name), list) or not all(isinstance(x, str) for x in doc[name]):
            raise ConfigError(f"{path}: {name} must be a list of strings")
    # Offline Licensing: revoked delegation numbers (absent in files written before it)
    doc.setdefault("delegations", [])
    if not isinstance(doc["delegations"], list) or not all(
        type(x) is int for x in doc["delegations"]
    ):
        raise ConfigError(f"{path}: delegations must be a list of integers")
    # Fixed Set: revoked pod ids, hex (absent in files written before it)
    doc.setdefault("pods", [])
    if not isinstance(doc["pods"], list) or not all(isinstance(x, str) for x in doc["pods"]):
        raise ConfigError(f"{path}: pods must be a list of hex strings")
    return doc


def open_revocation_list(token: bytes, anchors: TrustAnchors, source: str) -> RevocationList:
    """Verify a signed revocation list against the authority and parse it."""
    try:
        rl = RevocationList.verify(token, anchors.authority_key)
    except AttestError as exc:
        raise CertificateError(
            f"{source}: not a revocation list signed by authority {anchors.authority_id!r}: {exc}"
        ) from None
    if rl.issuer != anchors.authority_id:
        raise CertificateError(f"{source}: revocation list issued by {rl.issuer!r}")
    return rl


def read_revocations(
    path: str | os.PathLike[str], anchors: TrustAnchors
) -> tuple[Revocations, bytes]:
    """Load a revocation list file, verified; returns the parsed sets and the raw token."""
    token = read_bytes(Path(path), "revocation list")
    return Revocations.from_list(open_revocation_list(token, anchors, str(path))), token


# -- results a relying party keeps -------------------------------------------------------------
#: the verifier certificate beside saved results (``chip run --out``; ``result verify``'s default)
RESULTS_VERIFIER_CERT = "verifier.cert"


def result_file_name(ueid: bytes, attest_counter: int) -> str:
    """``chip run --out``'s name for a result: UEID and the counter of the Evidence it answers
    (unique per chip, and in order when listed)."""
    return f"{ueid.hex()}-{attest_counter:010d}.result.cose"


# -- chips -----------------------------------------------------------------------------------
def chip_dir_name(index: int) -> str:
    return f"{CHIP_DIR_PREFIX}{index:04d}"


def is_chip_dir(path: Path) -> bool:
    return (path / CHIP_STATE_FILE).is_file()


def expand_chip_dirs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Each path is a chip state folder or a folder of ``chip-*`` state folders."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if is_chip_dir(path):
            found.append(path)
            continue
        if not path.is_dir():
            raise ConfigError(f"{path}: no such chip state folder")
        children = sorted(
            p for p in path.glob(f"{CHIP_DIR_PREFIX}*") if p.is_dir() and is_chip_dir(p)
        )
        if not children:
            raise ConfigError(f"{path}: neither a chip state folder nor a folder of chip-* folders")
        found.extend(children)
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


# -- the fab line: endorsement requests, endorsements, reference values --------------------------
#: what a chip hands the manufacturer: its UEID and public key (JSON, one object per line)
ENDORSEMENT_REQUEST_FORMAT = "attest-endorsement-request-v1"
#: what the manufacturer hands back: the device certificate and its own (JSON, one per line)
ENDORSEMENT_FORMAT = "attest-endorsement-v1"
#: the JSON a vendor writes and ``attest manufacturer reference-values`` signs
REFERENCE_VALUES_SOURCE_FORMAT = "attest-reference-values-source-v1"


def endorsement_request_json(r: EndorsementRequest) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": ENDORSEMENT_REQUEST_FORMAT,
        "ueid": r.ueid.hex(),
        "publicKey": r.public_key.raw.hex(),
        "hwmodel": r.hwmodel,
    }
    if r.pod_class is not None:
        doc["podClass"] = r.pod_class
    return doc


def parse_endorsement_request(doc: Any, where: str) -> EndorsementRequest:
    _expect_format(doc, ENDORSEMENT_REQUEST_FORMAT, where)
    pod_class = doc.get("podClass")
    if pod_class is not None and (type(pod_class) is not int or pod_class < 1):
        raise ConfigError(f"{where}: podClass must be an integer >= 1")
    return EndorsementRequest(
        ueid=_hex_field(doc, "ueid", where),
        public_key=_public_key_field(doc, "publicKey", where),
        hwmodel=_text_field(doc, "hwmodel", where),
        pod_class=pod_class,
    )


def endorsement_json(e: Endorsement) -> dict[str, Any]:
    return {
        "format": ENDORSEMENT_FORMAT,
        "ueid": e.ueid.hex(),
        "hwmodel": e.hwmodel,
        "deviceCert": e.device_cert.hex(),
        "manufacturerCert": e.manufacturer_cert.hex(),
    }


def parse_endorsement(doc: Any, where: str) -> Endorsement:
    _expect_format(doc, ENDORSEMENT_FORMAT, where)
    return Endorsement(
        ueid=_hex_field(doc, "ueid", where),
        hwmodel=_text_field(doc, "hwmodel", where),
        device_cert=_hex_field(doc, "deviceCert", where),
        manufacturer_cert=_hex_field(doc, "manufacturerCert", where),
    )


def read_json_lines(path: Path, what: str) -> list[tuple[str, Any]]:
    """(``path:line``, parsed object) for each non-blank line of a JSON Lines file."""
    try:
        text = read_bytes(path, what).decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (expected the {what})") from None
    out: list[tuple[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            out.append((where, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg})") from None
    if not out:
        raise ConfigError(f"{path}: empty (expected the {what})")
    return out


def write_json_lines(path: Path, docs: Iterable[Mapping[str, Any]]) -> None:
    """Durably write JSON Lines (one compact object per line)."""
    atomic_write(path, "".join(json.dumps(d, sort_keys=True) + "\n" for d in docs).encode())


def read_reference_values_source(
    path: Path,
) -> tuple[int, tuple[ChipModel, ...], tuple[FirmwareReference, ...]]:
    """(number, models, firmware) from a vendor's reference-values source JSON."""
    doc = read_json(path, "reference-values source")
    where = str(path)
    _expect_format(doc, REFERENCE_VALUES_SOURCE_FORMAT, where)
    number = doc.get("number")
    if type(number) is not int or number < 1:
        raise ConfigError(f"{where}: number must be an integer >= 1")
    models, firmware = doc.get("models"), doc.get("firmware", [])
    if not isinstance(models, list) or not isinstance(firmware, list):
        raise ConfigError(f"{where}: models and firmware must be lists")
    try:
        return (
            number,
            tuple(
                ChipModel(
                    _text_field(m, "name", where),
                    m["peakFlopsPerS"],
                    m["peakPowerMw"],
                    m["peakInterconnectBytesPerS"],
                    m["maxPodSize"],
                )
                for m in models
            ),
            tuple(
                FirmwareReference(
                    _text_field(f, "hwmodel", where),
                    parse_version(_text_field(f, "version", where)),
                    _hex_field(f, "measurement", where),
                    FirmwareStatus[_text_field(f, "status", where).upper()],
                )
                for f in firmware
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: malformed model or firmware entry ({exc})") from None


def _expect_format(doc: Any, fmt: str, where: str) -> None:
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ConfigError(f"{where}: not an {fmt} object")


def _text_field(doc: Any, name: str, where: str) -> str:
    value = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {name} must be a non-empty string")
    return value


def _hex_field(doc: Any, name: str, where: str) -> bytes:
    try:
        return bytes.fromhex(_text_field(doc, name, where))
    except ValueError:
        raise ConfigError(f"{where}: {name} must be hexadecimal") from None


def _public_key_field(doc: Any, name: str, where: str) -> PublicKey:
    try:
        return parse_public_key(_text_field(doc, name, where))
    except AttestError as exc:
        raise ConfigError(f"{where}: {name}: {exc}") from None
