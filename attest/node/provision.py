"""Creating the identity folders of an authority, a manufacturer and a verifier node.

The library side of ``attest authority init | certify-manufacturer | certify-verifier``, also used
by the benchmarks (which start from the same folders an operator would have). The layout is
:mod:`attest.files`; a verifier folder also gets a ready ``verifier.toml``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from attest import files
from attest.durable import atomic_write
from attest.errors import AttestError, ConfigError
from attest.identity import YEAR_S, Authority, Manufacturer
from attest.keys import PublicKey, SigningKey, write_secret_key
from attest.node.config import example_toml
from attest.verify.chain import TrustAnchors


def make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create folder: {exc.strerror}") from None


def create_authority(folder: Path, authority_id: str, *, force: bool = False) -> Authority:
    """A new authority key (0600) and its public trust-anchor file in ``folder``."""
    make_dir(folder)
    key_path = folder / files.AUTHORITY_KEY_FILE
    files.refuse_overwrite(key_path, force)
    key = SigningKey.generate()
    write_secret_key(key_path, key)
    files.write_anchors(folder / files.ANCHORS_FILE, TrustAnchors(authority_id, key.public_key))
    return Authority(authority_id, key)


def _certified_folder(
    authority: Authority,
    out: Path,
    key_file: str,
    cert_file: str,
    force: bool,
    certify: Callable[[PublicKey], bytes],
) -> tuple[SigningKey, bytes]:
    """Create ``out`` with a new secret key (0600), its certificate and the trust anchors."""
    make_dir(out)
    key_path = out / key_file
    files.refuse_overwrite(key_path, force)
    key = SigningKey.generate()
    cert = certify(key.public_key)
    write_secret_key(key_path, key)
    atomic_write(out / cert_file, cert)
    files.write_anchors(out / files.ANCHORS_FILE, authority.anchors)
    return key, cert


def certify_manufacturer_folder(
    authority: Authority,
    out: Path,
    manufacturer_id: str,
    *,
    validity_s: int = 10 * YEAR_S,
    force: bool = False,
    now_s: int | None = None,
) -> Manufacturer:
    """A manufacturer folder: its key, the authority's certificate of it, the anchors."""
    now = int(time.time()) if now_s is None else now_s
    key, cert = _certified_folder(
        authority,
        out,
        files.MANUFACTURER_KEY_FILE,
        files.MANUFACTURER_CERT_FILE,
        force,
        lambda pk: authority.certify_manufacturer(
            manufacturer_id, pk, now_s=now, validity_s=validity_s
        ),
    )
    files.write_json(out / files.MANUFACTURER_INFO_FILE, {"manufacturer_id": manufacturer_id})
    return Manufacturer(manufacturer_id, key, cert)


def certify_verifier_folder(
    authority: Authority,
    out: Path,
    verifier_id: str,
    region: str,
    *,
    validity_s: int = YEAR_S,
    force: bool = False,
    now_s: int | None = None,
    port: int | None = None,
) -> tuple[SigningKey, Path]:
    """A verifier folder: its key, certificate, anchors and a ``verifier.toml`` (kept if it
    exists, unless ``force``). Returns the key and the configuration's path."""
    now = int(time.time()) if now_s is None else now_s
    key, _ = _certified_folder(
        authority,
        out,
        files.VERIFIER_KEY_FILE,
        files.VERIFIER_CERT_FILE,
        force,
        lambda pk: authority.certify_verifier(
            verifier_id, region, pk, now_s=now, validity_s=validity_s
        ),
    )
    config_path = out / files.VERIFIER_CONFIG_FILE
    if not config_path.exists() or force:
        atomic_write(config_path, verifier_toml(port=port).encode())
    return key, config_path


def verifier_toml(*, port: int | None = None) -> str:
    """``example_toml()`` with a verifier folder's file names filled in (relative to it)."""
    values: dict[tuple[str, str], str] = {
        ("node", "key_file"): f'"{files.VERIFIER_KEY_FILE}"',
        ("node", "cert_file"): f'"{files.VERIFIER_CERT_FILE}"',
        ("node", "anchors_file"): f'"{files.ANCHORS_FILE}"',
        ("node", "revocations_file"): '""',
        ("store", "path"): f'"{files.VERIFIER_DB_FILE}"',
    }
    if port is not None:
        values[("listen", "port")] = str(port)
    out, section = [], ""
    for line in example_toml().splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            section = header.group(1)
        key = line.split("=", 1)[0].strip() if "=" in line and not line.startswith("#") else ""
        if (section, key) in values:
            line = f"{key} = {values.pop((section, key))}"
        out.append(line)
    if values:  # example_toml lost a key we rely on: fail loudly rather than write a bad file
        raise AttestError(f"example configuration lacks {sorted(values)}")
    return "\n".join(out) + "\n"
