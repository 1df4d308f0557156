"""``attest result verify|inspect`` and ``attest inspect``: the relying party's tools.

A relying party holds a result token (``attest chip run --out``, or a node's
``GET /chips/{ueid}/result``), the certificate of the verifier that signed it (saved beside the
results, or the node's ``GET /verifier/cert``) and the authority's ``anchors.json``.
``result verify`` runs :func:`attest.verify.results.verify_result`; with ``--agreement`` (a
relying party of a federation member, SPEC B.5) federation's
:meth:`~attest.federation.route.Federation.accept_result` decides first whether a partner's
node counts, and its committee's anchors then stand in for ``anchors.json``; ``inspect`` prints any
token of the protocol (:mod:`attest.diag`), recognising its type from its protected header.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from attest import files
from attest.cli import argtypes
from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK, read_file
from attest.diag import as_json, diagnostic, inspect_token
from attest.errors import ConfigError, DecodeError
from attest.federation.agreement import open_agreement
from attest.federation.committee import Committee, open_committee
from attest.federation.route import Federation
from attest.federation.sign import FederationError
from attest.messages.attestation import NO_CHIP_UEID
from attest.messages.content import ContentType
from attest.verify.chain import TrustAnchors
from attest.verify.reasons import reason_name
from attest.verify.results import ResultRejected, verify_result

VERIFIER_CERT_FILE = files.RESULTS_VERIFIER_CERT


def add_parser(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "inspect",
        help="print any token (result, evidence, certificate, licence ...) with named claims",
        description=(
            "Print a token of the protocol in CBOR diagnostic notation (RFC 8949 §8) with the "
            "SPEC §5 name of each claim, its message type recognised from the content type in "
            "its protected header. Nothing is verified. Exit status 0, 1 if FILE is not a "
            "COSE_Sign1 token with a deterministic CBOR payload, 2 if it cannot be read."
        ),
    )
    _inspect_options(p)
    p.set_defaults(func=cmd_inspect, only=None)

    parser = subparsers.add_parser(
        "result",
        help="verify or print a signed attestation result (a relying party's tools)",
        description="Signed attestation results (EARs, SPEC §6.8) as a relying party sees them.",
    )
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="result_command", metavar="ACTION", required=True
    )
    p = sub.add_parser(
        "verify",
        help="check a result's signature, verifier certificate and validity",
        description=(
            "Check a signed result token: a COSE_Sign1 of the result content type, signed by "
            "a verifier whose certificate the authority of --anchors signed, naming that "
            "verifier, issued while the certificate was valid and not in the future (with "
            "--max-age: not older). On success print one line: 'valid', the tier, the "
            "reasons, the chip's UEID, the verifier and the issue time. Exit status 0 valid, "
            "1 invalid (one line 'invalid: CHECK: why', CHECK naming the failed check: "
            "envelope, content-type, verifier-cert, signature, payload, issuer, revoked, "
            "expiry, freshness; with --agreement also agreement and federation, naming the "
            "federation reason of SPEC B.5), 2 usage (a missing file or option)."
        ),
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the result token (- for stdin)")
    p.add_argument(
        "--anchors",
        required=True,
        type=Path,
        metavar="ANCHORS",
        help="the authority's anchors.json",
    )
    p.add_argument(
        "--verifier-cert",
        type=Path,
        metavar="CERT",
        help=f"the verifier's certificate (default: {VERIFIER_CERT_FILE} beside FILE, as "
        "`attest chip run --out` saves it)",
    )
    p.add_argument(
        "--revocations",
        type=Path,
        metavar="LIST",
        help="a signed revocation list of the authority: a revoked verifier's results fail",
    )
    p.add_argument(
        "--max-age",
        type=argtypes.non_negative_int,
        metavar="S",
        help="refuse a result issued more than S seconds ago (default: any age)",
    )
    p.add_argument(
        "--agreement",
        type=Path,
        metavar="FILE",
        help="a federation agreement your authority (--anchors) signed: a partner's node's "
        "result is valid only if the agreement lets your authority recognise that partner's "
        "results (else exit 1 naming the federation reason)",
    )
    p.add_argument(
        "--committee",
        type=Path,
        metavar="FILE",
        help="with --agreement: your authority's committee descriptor, if it is a committee "
        "(default: the single key of --anchors)",
    )
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "inspect",
        help="print a result in diagnostic notation with named claims",
        description=(
            "`attest inspect` for a result token: exit status 1 if FILE is another kind of "
            "token (the message says which)."
        ),
    )
    _inspect_options(p)
    p.set_defaults(func=cmd_inspect, only=str(ContentType.RESULT))
    return sub


def _inspect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file", type=Path, metavar="FILE", help="a token (raw COSE_Sign1 bytes; - for stdin)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")


def _read_token(path: Path, what: str) -> bytes:
    """FILE's bytes, or standard input's for ``-`` (``curl … | attest result verify -``)."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    return read_file(path, what)


def cmd_inspect(args: argparse.Namespace) -> int:
    token = _read_token(args.file, "token")
    try:
        inspected = inspect_token(token)
    except DecodeError as exc:
        print(f"attest: {args.file}: not a token of this protocol: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    if args.only is not None and inspected.content_type != args.only:
        what = inspected.message_type or repr(inspected.content_type)
        print(f"attest: {args.file}: holds {what}, not an AttestationResult", file=sys.stderr)
        return EXIT_CHECK_FAILED
    if args.json:
        print(json.dumps(as_json(token), sort_keys=True))
    else:
        print(diagnostic(token))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    token = _read_token(args.file, "result")
    anchors = files.read_anchors(args.anchors)
    cert_path: Path = args.verifier_cert or args.file.parent / VERIFIER_CERT_FILE
    if args.verifier_cert is None and (str(args.file) == "-" or not cert_path.exists()):
        raise ConfigError(
            f"{args.file}: no {VERIFIER_CERT_FILE} beside it: give the verifier's --verifier-cert"
        )
    cert = read_file(cert_path, "verifier certificate")
    revoked: frozenset[str] = frozenset()
    if args.revocations is not None:
        revoked = files.read_revocations(args.revocations, anchors)[0].verifiers
    now = int(time.time())
    if args.agreement is not None:
        try:
            federation = _federation(args, anchors, now)
        except FederationError as exc:
            return _invalid(args, "agreement", str(exc))
        try:
            federation.accept_result(token, cert, now_s=now)
        except FederationError as exc:
            return _invalid(args, "federation", str(exc))
        partner = federation.verifier_anchors(cert, now_s=now)
        if isinstance(partner, TrustAnchors):
            anchors = partner
    elif args.committee is not None:
        raise ConfigError("--committee is given with --agreement")
    try:
        result, vc = verify_result(
            token,
            cert,
            anchors,
            now_s=now,
            max_age_s=args.max_age,
            revoked_verifiers=revoked,
        )
    except ResultRejected as exc:
        return _invalid(args, str(exc.check), exc.detail)
    tier = argtypes.tier_name(result.status)
    reasons = [reason_name(r) for r in result.reasons]
    ueid = "none (diagnostic result)" if result.ueid == NO_CHIP_UEID else result.ueid.hex()
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.issued_at))
    if args.json:
        doc = {
            "valid": True,
            "tier": tier,
            "status": result.status,
            "reasons": reasons,
            "ueid": result.ueid.hex(),
            "verifier_id": vc.verifier_id,
            "region": vc.region,
            "issued_at": result.issued_at,
            "nonce": result.nonce.hex(),
            "policy_id": result.policy_id,
            "evidence_digest": result.evidence_digest.hex(),
        }
        if result.chain is not None:
            doc["chain_authority"], doc["chain_agreement"] = result.chain
        print(json.dumps(doc, sort_keys=True))
    else:
        print(
            f"valid: {tier} reasons={','.join(reasons) or 'none'} ueid={ueid} "
            f"verifier={vc.verifier_id} issued={issued}"
            + (f" chain={result.chain[0]} agreement={result.chain[1]}" if result.chain else "")
        )
    return EXIT_OK


def _invalid(args: argparse.Namespace, check: str, detail: str) -> int:
    if args.json:
        print(json.dumps({"valid": False, "check": check, "reason": detail}))
    else:
        print(f"invalid: {check}: {detail}")
    return EXIT_CHECK_FAILED


def _federation(args: argparse.Namespace, anchors: TrustAnchors, now: int) -> Federation:
    """The relying party's federation: its authority and the agreement, taken by SPEC B.4 (its
    authority must have approved it). Raises FederationError for a refused agreement (a failed
    check, exit 1) and ConfigError for a bad --committee (usage)."""
    home = Committee.single(anchors.authority_id, anchors.authority_key)
    if args.committee is not None:
        try:
            home = open_committee(read_file(args.committee, "committee descriptor"))
        except FederationError as exc:
            raise ConfigError(f"{args.committee}: {exc}") from None
        if home.authority_id != anchors.authority_id:
            raise ConfigError(f"{args.committee}: another authority's committee")
    token = read_file(args.agreement, "federation agreement")
    agreement = open_agreement(token, home=home, in_force=None, highest=0, now_s=now)
    return Federation(home, agreement)
