"""``attest federation ...``: committees and agreements, signed one officer at a time, offline.

A *draft* is the bare payload (deterministic CBOR) that officers are asked to sign; the first
officer's ``sign`` turns it into a COSE_Sign with one signature, each further ``sign`` adds one
(SPEC B.2). ``verify`` is the strict check with its reason; ``show`` prints a document without
trusting it (signatures are listed by kid, and counted only against the document's own keys).
Exit codes (attest.cli.common): 0 ok, 1 the check failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from attest import files
from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK, load_locked_chip, read_file
from attest.codec.cbor import decode
from attest.errors import AttestError, ChipRefusal, ConfigError
from attest.federation import claims as F
from attest.federation.agreement import (
    AGREEMENT_CONTENT_TYPE,
    Agreement,
    Member,
    Recognition,
    approvals,
    open_agreement,
)
from attest.federation.chip import FederationChip
from attest.federation.committee import COMMITTEE_CONTENT_TYPE, Committee, open_committee
from attest.federation.route import Federation
from attest.federation.sign import (
    TAG98,
    FederationError,
    add_signature,
    kid_of,
    parse_sign,
    sign_multi,
)
from attest.keys import parse_public_key


def add_commands(groups: dict[str, Any]) -> None:
    """Add the ``federation`` group to the CLI (attest.cli.main calls this)."""
    p = groups[""].add_parser(
        "federation",
        help="k-of-n committees and federation agreements (draft, sign, verify, show)",
        description=(
            "Authorities as committees of officer keys, and agreements between authorities. "
            "Officers sign drafts one at a time, offline; verify checks a document strictly."
        ),
    )
    sub = p.add_subparsers(dest="federation_command", metavar="GROUP", required=True)
    _committee_commands(sub)
    _agreement_commands(sub)
    # the issue's names for the agreement's life: propose, sign, inspect, verify
    _draft_parser(sub, "propose")
    _sign_command(sub, "agreement", AGREEMENT_CONTENT_TYPE)
    _show_parser(sub, "inspect")
    _verify_parser(sub, "verify")
    _authority_commands(groups["authority"])
    res = sub.add_parser(
        "result",
        help="a relying party: accept a result of a partner's node under the agreement",
        description=(
            "Verify an AttestationResult and its node's VerifierCert as a relying party of the "
            "home authority: the node must be home's or a partner's whose results the agreement "
            "recognises. Exit status 1 if not."
        ),
    )
    res.add_argument("result", type=Path, help="the result token")
    res.add_argument("--cert", type=Path, required=True, help="the node's VerifierCert")
    res.add_argument("--agreement", type=Path, required=True, help="the agreement in force")
    _home_arguments(res)
    res.add_argument("--now", type=int, help="the time (Unix seconds; default: now)")
    res.set_defaults(func=cmd_result)
    inst = sub.add_parser(
        "chip-install",
        help="give a chip the agreement its authority signed (it then answers partner nodes)",
        description=(
            "The chip takes the agreement only if its own authority approved it (a first "
            "agreement) or K members in force did (an amendment), and only above the number it "
            "holds; it answers the nodes of partners whose results the agreement recognises. "
            "Exit status 1 with the reason if the chip refuses."
        ),
    )
    inst.add_argument("file", type=Path, help="the agreement (COSE_Sign)")
    inst.add_argument("--state", type=Path, required=True, help="the chip's state folder")
    inst.add_argument("--now", type=int, help="the time (Unix seconds; default: now)")
    inst.set_defaults(func=cmd_chip_install)


def _home_arguments(p: argparse.ArgumentParser) -> None:
    home = p.add_mutually_exclusive_group(required=True)
    home.add_argument("--anchors", type=Path, help="home trust anchors (a single-key authority)")
    home.add_argument("--committee", type=Path, help="home committee descriptor (COSE_Sign)")


def _committee_commands(sub: Any) -> None:
    c = sub.add_parser("committee", help="committee descriptors: init, sign, verify")
    csub = c.add_subparsers(dest="committee_command", metavar="ACTION", required=True)
    _committee_init_parser(csub, "init").set_defaults(current=None)
    _sign_command(csub, "committee descriptor", COMMITTEE_CONTENT_TYPE)
    ver = csub.add_parser(
        "verify",
        help="check a committee descriptor (genesis, or a rotation of --current)",
        description=(
            "Genesis: signed by enough of its own officers (and equal to --digest if given). "
            "Rotation (--current): signed by enough officers of the current committee, with a "
            "greater number. Exit status 1 with the reason if refused."
        ),
    )
    ver.add_argument("file", type=Path, help="the committee descriptor (COSE_Sign)")
    ver.add_argument("--current", type=Path, help="the committee in force (its descriptor)")
    ver.add_argument("--digest", help="the committee's trust anchor (SHA-256 hex)")
    ver.add_argument("--json", action="store_true", help="print JSON")
    ver.set_defaults(func=cmd_committee_verify)


def _authority_commands(sub: Any) -> None:
    """``attest authority committee init|rotate`` and ``attest authority sign``: an authority's
    officers at work (the same commands as ``attest federation committee ...``)."""
    c = sub.add_parser("committee", help="the authority as a k-of-n committee: init, rotate")
    csub = c.add_subparsers(dest="authority_committee_command", metavar="ACTION", required=True)
    init = _committee_init_parser(csub, "init")
    init.set_defaults(current=None)
    rot = _committee_init_parser(csub, "rotate", rotation=True)
    rot.add_argument(
        "--current", type=Path, required=True, help="the committee in force (its descriptor)"
    )
    s = sub.add_parser(
        "sign",
        help="add one officer's signature to an act (a committee descriptor, an agreement ...)",
        description=(
            "Officers sign one at a time, offline: FILE is a draft (its type is recognised "
            "from its claims, or named with --content-type) or a COSE_Sign signed by other "
            "officers already. Refused if this officer signed it already."
        ),
    )
    s.add_argument("file", type=Path, help="the draft or COSE_Sign")
    s.add_argument("--officer", type=Path, required=True, help="the officer's secret key file")
    s.add_argument("--content-type", help="the act's content type (for a draft of another act)")
    s.add_argument("--out", type=Path, help="where to write it (default: FILE)")
    s.set_defaults(func=cmd_authority_sign)


def _agreement_commands(sub: Any) -> None:
    a = sub.add_parser("agreement", help="federation agreements: draft, sign, verify, show")
    asub = a.add_subparsers(dest="agreement_command", metavar="ACTION", required=True)
    _draft_parser(asub, "draft")
    _sign_command(asub, "agreement", AGREEMENT_CONTENT_TYPE)
    _verify_parser(asub, "verify")
    _show_parser(asub, "show")


def _draft_parser(asub: Any, name: str) -> None:
    draft = asub.add_parser(
        name,
        help="write an agreement draft from a JSON description",
        description=(
            'The JSON: {"id", "number", "issuedAt", "expiresAt", "threshold", "members": '
            '[{"authority", "committee": FILE or "anchors": FILE, "regions": [..]}], '
            '"recognitions": [{"by", "of", "manufacturers": [..], "results": bool, '
            '"licenceQuota": int, "pods": bool}]}; files relative to the JSON file.'
        ),
    )
    draft.add_argument("spec", type=Path, help="the JSON description")
    draft.add_argument("--out", type=Path, required=True, help="the draft file to write")
    draft.set_defaults(func=cmd_agreement_draft)


def _verify_parser(asub: Any, name: str) -> None:
    ver = asub.add_parser(
        name,
        help="check an agreement for a verifier of the home authority",
        description=(
            "The first agreement (no --in-force) must be approved by K of its own members, "
            "home among them; an amendment by K of the members of --in-force. Exit status 1 "
            "with the reason if refused."
        ),
    )
    ver.add_argument("file", type=Path, help="the agreement (COSE_Sign)")
    _home_arguments(ver)
    ver.add_argument("--in-force", type=Path, help="the agreement in force")
    ver.add_argument("--now", type=int, help="the time (Unix seconds; default: now)")
    ver.set_defaults(func=cmd_agreement_verify)


def _show_parser(asub: Any, name: str) -> None:
    show = asub.add_parser(name, help="print an agreement (not trusted: see verify)")
    show.add_argument("file", type=Path, help="the agreement (COSE_Sign or draft)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_agreement_show)


def _committee_init_parser(csub: Any, name: str, *, rotation: bool = False) -> Any:
    init = csub.add_parser(
        name,
        help="write the draft of a rotation of --current"
        if rotation
        else "write a committee descriptor draft",
        description=(
            "Write the draft of the committee that replaces --current (its authority, number "
            "+1 unless --number): k of the current officers then sign it."
            if rotation
            else "Write the draft of a committee descriptor (genesis or a rotation)."
        ),
    )
    init.add_argument("--authority", required=not rotation, help="the authority id")
    init.add_argument(
        "--officer",
        action="append",
        required=True,
        metavar="KEY",
        help="an officer's public key (64 hex digits or a public-key file); repeat per officer",
    )
    init.add_argument("--threshold", type=int, required=True, help="k: officers per act")
    init.add_argument(
        "--act",
        action="append",
        default=[],
        metavar="CONTENT_TYPE=K",
        help="a higher threshold for acts of one content type (repeatable)",
    )
    init.add_argument(
        "--number", type=int, default=None if rotation else 1, help="committee number"
    )
    init.add_argument("--issued-at", type=int, help="issue time (default: now)")
    init.add_argument("--out", type=Path, required=True, help="the draft file to write")
    init.set_defaults(func=cmd_committee_init)
    return init


def _sign_command(sub: Any, what: str, content_type: str) -> None:
    s = sub.add_parser(
        "sign",
        help=f"add one officer's signature to a {what} (or its draft)",
        description=(
            f"Sign a {what} draft (making it a COSE_Sign with one signature) or add a "
            "signature to a signed one. Refused if this officer signed it already."
        ),
    )
    s.add_argument("file", type=Path, help=f"the {what} draft or COSE_Sign")
    s.add_argument("--officer", type=Path, required=True, help="the officer's secret key file")
    s.add_argument("--out", type=Path, help="where to write it (default: FILE)")
    s.set_defaults(func=cmd_sign, content_type=content_type, what=what)


# -- helpers -----------------------------------------------------------------------------------


def _now(args: argparse.Namespace) -> int:
    return int(args.now) if getattr(args, "now", None) is not None else int(time.time())


def _public_key(text: str) -> Any:
    path = Path(text)
    try:
        return parse_public_key(path.read_bytes() if path.is_file() else text)
    except AttestError as exc:
        raise ConfigError(f"--officer {text}: {exc}") from None


def _payload_of(token: bytes) -> bytes:
    """A draft is its payload; a COSE_Sign carries it."""
    return parse_sign(token).payload if token[:2] == TAG98 else token


def _committee_file(path: Path) -> Committee:
    try:
        return Committee.from_claims(decode(_payload_of(read_file(path, "committee"))))
    except AttestError as exc:
        raise ConfigError(f"{path}: not a committee descriptor: {exc}") from None


def _home(args: argparse.Namespace) -> Committee:
    if args.anchors is not None:
        anchors = files.read_anchors(args.anchors)
        return Committee.single(anchors.authority_id, anchors.authority_key)
    try:
        return open_committee(read_file(args.committee, "home committee"))
    except FederationError as exc:
        raise ConfigError(f"{args.committee}: {exc}") from None


def _agreement_of(token: bytes, path: Path) -> Agreement:
    try:
        return Agreement.from_claims(decode(_payload_of(token)))
    except AttestError as exc:
        raise ConfigError(f"{path}: not an agreement: {exc}") from None


def committee_json(c: Committee) -> dict[str, Any]:
    return {
        "authority": c.authority_id,
        "number": c.number,
        "threshold": c.threshold,
        "actThresholds": dict(c.act_thresholds or ()),
        "officers": [{"key": k.raw.hex(), "kid": kid_of(k).hex()} for k in c.officers],
        "digest": c.digest.hex(),
        "issuedAt": c.issued_at,
    }


def agreement_json(a: Agreement) -> dict[str, Any]:
    return {
        "id": a.agreement_id,
        "number": a.number,
        "issuedAt": a.issued_at,
        "expiresAt": a.expires_at,
        "threshold": a.threshold,
        "members": [
            {"authority": m.authority_id, "regions": list(m.regions), **_brief(m.committee)}
            for m in a.members
        ],
        "recognitions": [
            {
                "by": r.by,
                "of": r.of,
                "manufacturers": list(r.manufacturers),
                "results": r.results,
                "licenceQuota": r.licence_quota,
                "pods": r.pods,
            }
            for r in a.recognitions
        ],
    }


def _brief(c: Committee) -> dict[str, Any]:
    return {"committee": f"{c.threshold} of {len(c.officers)}, number {c.number}"}


# -- commands ----------------------------------------------------------------------------------


def cmd_committee_init(args: argparse.Namespace) -> int:
    acts: dict[str, int] = {}
    for item in args.act:
        ct, sep, k = item.rpartition("=")
        if not sep or not ct or not k.isdigit():
            raise ConfigError(f"--act {item!r}: expected CONTENT_TYPE=K")
        acts[ct] = int(k)
    current = _committee_file(args.current) if args.current is not None else None
    authority, number = args.authority, args.number
    if current is not None:
        if authority not in (None, current.authority_id):
            raise ConfigError(f"--authority {authority!r}: --current is {current.authority_id}")
        authority = current.authority_id
        number = number if number is not None else current.number + 1
        if number <= current.number:
            raise ConfigError(f"--number {number}: a rotation's number exceeds {current.number}")
    try:
        c = Committee.of(
            authority,
            [_public_key(o) for o in args.officer],
            args.threshold,
            number=number,
            issued_at=args.issued_at if args.issued_at is not None else int(time.time()),
            act_thresholds=acts or None,
        )
    except ValueError as exc:
        raise ConfigError(f"committee: {exc}") from None
    files.write_bytes(args.out, c.payload())
    print(
        f"{args.out}: draft of committee {c.authority_id} number {c.number}, "
        f"{c.threshold} of {len(c.officers)}, digest {c.digest.hex()}"
    )
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    token = read_file(args.file, args.what)
    key = files.read_key(args.officer, "officer secret key")
    try:
        if token[:2] == TAG98:
            signed = add_signature(token, key)
        else:
            decode(token)  # a draft must at least be deterministic CBOR
            signed = sign_multi(args.content_type, token, [key])
        count = len(parse_sign(signed).signatures)
    except FederationError as exc:
        print(f"{args.file}: REFUSED: {exc}")
        return EXIT_CHECK_FAILED
    except AttestError as exc:
        raise ConfigError(f"{args.file}: not a {args.what} draft: {exc}") from None
    out = args.out or args.file
    files.write_bytes(out, signed)
    print(f"{out}: {count} signature(s); added kid {kid_of(key.public_key).hex()[:16]}")
    return EXIT_OK


def cmd_authority_sign(args: argparse.Namespace) -> int:
    """``attest authority sign``: cmd_sign, the act's type read from the COSE_Sign's header or
    recognised from a draft's claims (committee, agreement) unless --content-type names it."""
    token = read_file(args.file, "act")
    content_type = args.content_type
    if content_type is None and token[:2] == TAG98:
        try:
            content_type = parse_sign(token).content_type
        except FederationError as exc:
            raise ConfigError(f"{args.file}: {exc}") from None
    if content_type is None:
        try:
            claims = decode(token)
        except AttestError as exc:
            raise ConfigError(f"{args.file}: not a draft (deterministic CBOR): {exc}") from None
        keys = set(claims) if type(claims) is dict else set()
        if F.HEM_COMMITTEE_NUMBER in keys:
            content_type = COMMITTEE_CONTENT_TYPE
        elif F.HEM_AGREEMENT_ID in keys:
            content_type = AGREEMENT_CONTENT_TYPE
        else:
            raise ConfigError(f"{args.file}: which act is this draft? give --content-type")
    if type(content_type) is not str:
        raise ConfigError(f"{args.file}: the act names no content type")
    args.content_type, args.what = content_type, "act"
    return cmd_sign(args)


def cmd_committee_verify(args: argparse.Namespace) -> int:
    token = read_file(args.file, "committee descriptor")
    current = _committee_file(args.current) if args.current else None
    try:
        digest = bytes.fromhex(args.digest) if args.digest else None
    except ValueError:
        raise ConfigError("--digest: expected hex") from None
    try:
        c = open_committee(token, current=current, digest=digest)
    except FederationError as exc:
        print(f"{args.file}: REFUSED: {exc.reason.name} ({exc})")
        return EXIT_CHECK_FAILED
    doc = committee_json(c)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        kind = f"rotation of number {current.number}" if current else "genesis"
        print(f"{args.file}: valid committee descriptor ({kind})")
        print(f"  {c.authority_id} number {c.number}: {c.threshold} of {len(c.officers)}")
        print(f"  digest {doc['digest']}")
    return EXIT_OK


def cmd_agreement_draft(args: argparse.Namespace) -> int:
    spec = files.read_json(args.spec, "agreement description")
    base = args.spec.parent
    try:
        members = []
        for m in spec["members"]:
            if "anchors" in m:
                anchors = files.read_anchors(base / m["anchors"])
                committee = Committee.single(anchors.authority_id, anchors.authority_key)
            else:
                committee = _committee_file(base / m["committee"])
            members.append(Member(m["authority"], committee, tuple(m["regions"])))
        recognitions = [
            Recognition(
                r["by"],
                r["of"],
                tuple(r.get("manufacturers", ())),
                bool(r.get("results", False)),
                int(r.get("licenceQuota", 0)),
                bool(r.get("pods", False)),
            )
            for r in spec.get("recognitions", [])
        ]
        a = Agreement(
            spec["id"],
            int(spec["number"]),
            int(spec["issuedAt"]),
            int(spec["expiresAt"]),
            tuple(members),
            int(spec["threshold"]),
            tuple(recognitions),
        )
        payload = a.payload()
        Agreement.from_claims(decode(payload))  # every bound of the wire format holds
    except (KeyError, TypeError, ValueError, AttestError) as exc:
        raise ConfigError(f"{args.spec}: not a valid agreement description: {exc!r}") from None
    files.write_bytes(args.out, payload)
    print(
        f"{args.out}: draft of agreement {a.agreement_id} number {a.number}, "
        f"{a.threshold} of {len(a.members)} members"
    )
    return EXIT_OK


def cmd_agreement_verify(args: argparse.Namespace) -> int:
    token = read_file(args.file, "agreement")
    home = _home(args)
    in_force = None
    if args.in_force is not None:
        in_force = _agreement_of(read_file(args.in_force, "agreement in force"), args.in_force)
    try:
        a = open_agreement(
            token,
            home=home,
            in_force=in_force,
            highest=in_force.number if in_force else 0,
            now_s=_now(args),
        )
    except FederationError as exc:
        print(f"{args.file}: REFUSED: {exc.reason.name} ({exc})")
        return EXIT_CHECK_FAILED
    print(
        f"{args.file}: valid agreement {a.agreement_id} number {a.number} for {home.authority_id}"
    )
    return EXIT_OK


def cmd_agreement_show(args: argparse.Namespace) -> int:
    token = read_file(args.file, "agreement")
    a = _agreement_of(token, args.file)
    doc = agreement_json(a)
    if token[:2] == TAG98:
        committees = {m.authority_id: m.committee for m in a.members}
        try:
            _payload, approved = approvals(token, committees)
            doc["approvedBy"] = sorted(approved)
        except FederationError as exc:
            doc["approvedBy"] = f"not counted: {exc}"
        doc["signatures"] = len(parse_sign(token).signatures)
    else:
        doc["signatures"] = 0
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(
        f"agreement {a.agreement_id} number {a.number}: {a.threshold} of {len(a.members)} "
        f"members, valid {a.issued_at}..{a.expires_at}"
    )
    for m in doc["members"]:
        print(
            f"  member {m['authority']:<24} {m['committee']:<24} regions {', '.join(m['regions'])}"
        )
    for r in doc["recognitions"]:
        what = [f"endorsements of {', '.join(r['manufacturers'])}"] if r["manufacturers"] else []
        what += ["results"] if r["results"] else []
        what += [f"licences up to {r['licenceQuota']} FLOPs"] if r["licenceQuota"] else []
        what += ["pod certificates"] if r["pods"] else []
        print(f"  {r['by']} recognises of {r['of']}: {'; '.join(what) or 'nothing'}")
    print(
        f"  {doc['signatures']} signature(s); approved by (as its own members): "
        f"{doc.get('approvedBy', [])} (not verified against any agreement in force)"
    )
    return EXIT_OK


def cmd_result(args: argparse.Namespace) -> int:
    home = _home(args)
    agreement = _agreement_of(read_file(args.agreement, "agreement"), args.agreement)
    fed = Federation(home, agreement)
    try:
        res, cert = fed.accept_result(
            read_file(args.result, "result"),
            read_file(args.cert, "verifier certificate"),
            now_s=_now(args),
        )
    except FederationError as exc:
        print(f"{args.result}: REFUSED: {exc.reason.name} ({exc})")
        return EXIT_CHECK_FAILED
    print(
        f"{args.result}: accepted result of {cert.verifier_id} ({cert.issuer}), "
        f"status {res.status}, reasons {list(res.reasons)}"
    )
    return EXIT_OK


def cmd_chip_install(args: argparse.Namespace) -> int:
    token = read_file(args.file, "agreement")
    chip, fd = load_locked_chip(args.state)
    try:
        part = next((p for p in chip.parts if isinstance(p, FederationChip)), None)
        if part is None:
            raise ConfigError(f"{args.state}: this chip has no federation part")
        try:
            a = part.install(token, now_s=_now(args))
        except ChipRefusal as exc:
            print(f"{args.state}: REFUSED: {exc}")
            return EXIT_CHECK_FAILED
    finally:
        os.close(fd)
    print(f"{args.state}: holds agreement {a.agreement_id} number {a.number}")
    return EXIT_OK
