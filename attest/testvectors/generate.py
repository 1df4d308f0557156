"""Generate the published vector files (Wycheproof-style JSON) from the deterministic world.

Each case states the outcome it is *meant* to have; the generator runs the real implementation
on it and refuses to write a file if the two disagree, so a vector can never silently pin a
bug. The output is byte-identical across runs: keys and times are fixed, Ed25519 is
deterministic, cases are listed in a fixed order and JSON is written with a fixed layout.

One module per family (``evidence_vectors``, ``codec_vectors`` for CBOR and COSE_Sign1,
``license_vectors``, ``pod_vectors``, ``location_vectors``, ``session_vectors``,
``audit_vectors``, ``revocation_vectors``, ``message_vectors``, ``reference_vectors``,
``federation_vectors``), each
with its checker module (``*_check``); a new family is one line in :func:`documents` and one in
``attest.testvectors.check.FAMILIES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attest.testvectors.audit_check import AUDIT_FILE
from attest.testvectors.audit_vectors import audit_document
from attest.testvectors.check import CBOR_FILE, COSE_FILE, EVIDENCE_FILE, FILES
from attest.testvectors.codec_vectors import cbor_document, cose_document
from attest.testvectors.evidence_vectors import evidence_document
from attest.testvectors.federation_check import FEDERATION_FILE
from attest.testvectors.federation_vectors import federation_document
from attest.testvectors.format import render
from attest.testvectors.license_vectors import LICENSE_FILE, license_document
from attest.testvectors.location_vectors import LOCATION_FILE, location_document
from attest.testvectors.message_check import MESSAGE_FILE
from attest.testvectors.message_vectors import messages_document
from attest.testvectors.pod_vectors import pod_documents  # Fixed Set
from attest.testvectors.reference_check import REFERENCE_FILE
from attest.testvectors.reference_vectors import reference_document
from attest.testvectors.revocation_check import REVOCATION_FILE
from attest.testvectors.revocation_vectors import revocation_document
from attest.testvectors.session_check import SESSION_FILE
from attest.testvectors.session_vectors import session_document
from attest.testvectors.world import build_world


def documents() -> dict[str, dict[str, Any]]:
    """Every vector file's content, by file name (in the order of ``FILES``)."""
    w = build_world()
    docs = {
        EVIDENCE_FILE: evidence_document(w),
        CBOR_FILE: cbor_document(),
        COSE_FILE: cose_document(w),
        LICENSE_FILE: license_document(w),
        **pod_documents(w),  # Fixed Set
        LOCATION_FILE: location_document(w),  # location verification
        SESSION_FILE: session_document(w),
        AUDIT_FILE: audit_document(w),
        REVOCATION_FILE: revocation_document(w),
        MESSAGE_FILE: messages_document(w),
        REFERENCE_FILE: reference_document(w),
        FEDERATION_FILE: federation_document(w),  # federation
    }
    return {name: docs[name] for name in FILES}


def generate(out_dir: Path) -> dict[str, int]:
    """Write every vector file into ``out_dir``; return the number of tests per file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, doc in documents().items():
        (out_dir / name).write_text(render(doc), encoding="utf-8")
        counts[name] = doc["numberOfTests"]
    return counts
