"""SPEC.md's CDDL, compiled by pycddl (a validator nobody here wrote), with its bugs worked around.

Everything specific to pycddl 0.6.4 lives here, so tests/test_cddl.py reads as "the vectors
satisfy the CDDL of SPEC.md". The workarounds (each checked by ``test_pycddl_bugs_still_need_
workarounds`` so we notice when a release fixes one):

1. ``.cbor`` inside an array is applied to every element of the array, so a whole COSE_Sign1
   cannot be validated against ``attest-token<…>``: :meth:`Cddl.token` validates each envelope
   element on its own (protected header, payload) and checks the two that need no CDDL
   (the unprotected header is the empty map, the signature a 64-byte byte string) directly.
   Likewise Evidence's ``[258, fw-coswid-bytes]``: ``fw-coswid-bytes`` is compiled as ``bstr``
   and the embedded CoSWID is validated against ``fw-coswid`` on its own (:data:`_EMBEDDED`);
2. ``{}`` accepts a non-empty map: the empty unprotected header is checked in Python;
3. an array of arrays checks only its first element: ``[1*1024 pod-member]`` is checked by
   validating every member against ``pod-member`` as well, and Evidence's ``[fw-measurement]``
   by counting its entries (:data:`_EMBEDDED`);
4. ``.regexp`` is not anchored, and the regular expression is handed to Rust's regex crate with
   CDDL's text escapes undecoded (``"\\\\."`` reaches it as two backslashes): the two escapes
   SPEC.md uses are translated (``\\\\.`` to ``[.]``, ``[\\\\s\\\\S]`` to ``(?s:.)``) and the
   expression is anchored, which is what RFC 8610 §3.8.3 (XSD regular expressions) means;
5. ``.ne`` on a byte string accepts the excluded value: the all-zero pod id is checked directly;
6. a bignum tag is accepted as ``uint`` (RFC 8610 has ``uint = #0``): any tag inside a payload
   or frame makes it invalid, since no rule of SPEC.md admits one there;
7. some inputs make it panic (a pyo3 ``PanicException``, a BaseException): a panic counts as a
   rejection, and :attr:`Cddl.panics` records them so a test can insist on none for valid input;
8. ``bstr .size N`` also accepts a text string of N bytes: a map member's ``bstr .size …`` (and
   the rules :data:`_MAP_ONLY` used only as map values) is compiled as ``(bstr .size …) .and
   bstr``. ``.and`` breaks array validation, so inside arrays, and for the rules used in arrays
   (``ueid``, ``digest``, ``pod-id``), a text string of the right size still passes (no vector
   depends on that case);
9. a choice between named array rules (``frame = hello / challenge-frame / …``) accepts arrays
   that none of its alternatives accepts: such a rule is checked alternative by alternative;
10. an optional trailing array element (``? grant``) is treated as required, and a choice written
    inline as an array element (``bstr / null``) tries only one alternative: the rules of SPEC.md
    that have them are compiled in an equivalent form (a choice of fixed arrays, or the inline
    choice as a named rule), listed in :data:`_SAME`;
11. a map that is an element of an array accepts keys its rule does not list (a top-level or
    map-valued map rejects them): no workaround; the vectors that depend on it are skipped by
    name in tests/test_cddl.py (:data:`PYCDDL_MISSES`).
12. a range with a negative bound (``-128..127``) is refused ("upper and lower values must be
    uint types") for every value: it is compiled as ``(int .ge -128) .and (int .le 127)``;
13. a map whose members are all optional (``trust-vector``) accepts members with other keys:
    the keys of the trustworthiness vector are checked directly (:data:`_OPEN_MAPS`);
14. generic rules are instantiated wrongly (``JC<"x", 265>`` with ``JC<J, C> = C`` yields
    ``"x"``), ``.b64u`` is not a known control, ``~`` does not unwrap a tag, and ``* $$socket``
    whose socket has several ``//=`` alternatives accepts a map only if all its members match one
    alternative: used by the EAR draft's and RFC 9711's CDDL only, these are worked around where
    those files are composed (:func:`ear_cddl`): generics are expanded (``JC`` to its CBOR
    alternative), ``tstr .b64u x`` (a JSON-only alternative) becomes ``tstr``, ``~rule`` becomes the
    tagged type, and a socket's alternatives are inlined as optional members (each claim key
    occurs at most once in a map, so this is the same set of maps).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import cbor2
import pycddl

SPEC = Path(__file__).resolve().parents[1] / "SPEC.md"

_BLOCK = re.compile(r"```cddl\n(.*?)```", re.S)
_REGEXP = re.compile(r'\.regexp\s+"((?:[^"\\]|\\.)*)"')
_BSTR_SIZE = re.compile(r"bstr \.size (\([^)]*\)|\d+)")
#: named rules whose every use is a map value (workaround 8 may rewrite them)
_MAP_ONLY = ("hwmodel", "nonce")
#: workaround 10: SPEC.md's text -> the same rule in a form pycddl validates correctly
_SAME = {
    "result-frame    = [4, result: bstr, ? grant: license-grant]": (
        "result-frame    = [4, result: bstr] / [4, result: bstr, grant: [bstr, bstr]]"
        " / [4, result: bstr, grant: [bstr, null]]"
    ),
    "license-grant   = [license: bstr, delegation: bstr / null]": (
        "license-grant   = [license: bstr, delegation: bstr] / [license: bstr, delegation: null]"
    ),
    "evidence-digest: bstr .size 0 / bstr .size 32,": "evidence-digest: pycddl-audit-digest,",
    "fw-coswid-bytes = bstr .cbor fw-coswid": "fw-coswid-bytes = bstr",  # workaround 1
    "trust-claim = -128..127": "trust-claim = (int .ge -128) .and (int .le 127)",  # workaround 12
}
#: rules the rewritten forms of :data:`_SAME` refer to
_SAME_RULES = "pycddl-audit-digest = bstr .size 0 / bstr .size 32\n"
_NAME_CHOICE = re.compile(r"^([a-z-]+)\s*=\s*([a-z-]+(?:\s*/\s*[a-z-]+)+)\s*(?:;.*)?$", re.M)
_TOKEN_RULE = re.compile(r'^([a-z-]+)-token\s*=\s*attest-token<"([^"]+)",\s*([a-z-]+)>', re.M)
#: workaround 11: vectors (by comment) whose only defect is an extra key in a map in an array
PYCDDL_MISSES = frozenset({"a model map with an unknown key 6"})
#: workaround 1: claims rule -> (the path of an embedded CBOR byte string, the rule it satisfies)
_EMBEDDED = {"evidence-claims": ((273, 0, 1), "fw-coswid")}
#: workaround 13: claims rule -> (the path of a map with only optional members, its keys)
_OPEN_MAPS = {"result-claims": ((266, "hem", 1001), frozenset(range(8)))}
POD_CERT_CLAIMS = "pod-cert-claims"
POD_MEMBERS_KEY = -70200
POD_ID_KEY = -70005


def spec_cddl(spec_text: str) -> str:
    """Every ```cddl block of SPEC.md, in order, as one CDDL document."""
    return "\n".join(_BLOCK.findall(spec_text))


def _regexp_for_pycddl(match: re.Match[str]) -> str:
    body = match.group(1).replace("[\\\\s\\\\S]", "(?s:.)").replace("\\\\.", "[.]")
    if "\\" in body:
        raise ValueError(f"no pycddl translation for the escape in {match.group(0)}")
    return f'.regexp "^(?:{body})$"'


def for_pycddl(cddl: str) -> str:
    """The CDDL with workarounds 4 and 8 applied (anchored, escape-free regular expressions;
    byte-string sizes that accept only byte strings)."""
    for spec_rule, same in _SAME.items():
        if spec_rule not in cddl:
            raise ValueError(f"SPEC.md no longer has {spec_rule!r}: update workaround 10")
        cddl = cddl.replace(spec_rule, same)
    cddl += "\n" + _SAME_RULES
    cddl = _REGEXP.sub(_regexp_for_pycddl, cddl)
    lines = []
    for line in cddl.split("\n"):
        code = line.split(";")[0]
        if "=>" in code or any(re.match(rf"{name}\s*=", code) for name in _MAP_ONLY):
            line = _BSTR_SIZE.sub(lambda m: f"(bstr .size {m.group(1)}) .and bstr", line)
        lines.append(line)
    return "\n".join(lines)


def _has_tag(data: bytes) -> bool:
    """Whether a well-formed CBOR item holds a tag anywhere (cbor2 turns bignums into ints)."""

    def walk(pos: int) -> tuple[bool, int]:
        ib = data[pos]
        major, info = ib >> 5, ib & 0x1F
        pos += 1
        if info < 24:
            arg = info
        elif info <= 27:
            n = 1 << (info - 24)
            arg, pos = int.from_bytes(data[pos : pos + n], "big"), pos + n
        else:
            raise ValueError("indefinite or reserved length")
        if major == 6:
            return True, pos
        if major in (2, 3):
            return False, pos + arg
        if major in (4, 5):
            for _ in range(arg * (2 if major == 5 else 1)):
                tagged, pos = walk(pos)
                if tagged:
                    return True, pos
        return False, pos

    try:
        return walk(0)[0]
    except (IndexError, ValueError):
        return False


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    """The item at ``path`` (map keys and array indices) inside ``value``, or None."""
    for step in path:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        else:
            return None
    return value


class Cddl:
    """Validate CBOR against one rule of SPEC.md's CDDL."""

    def __init__(self, spec_text: str) -> None:
        self.text = for_pycddl(spec_cddl(spec_text))
        #: message type content type -> (token rule name, claims rule)
        self.tokens = {ct: (name, claims) for name, ct, claims in _TOKEN_RULE.findall(self.text)}
        self.panics: list[str] = []
        self._schemas: dict[str, Any] = {}
        #: rules that are a choice of named rules (workaround 9)
        self.choices = {
            name: [a.strip() for a in alts.split("/")]
            for name, alts in _NAME_CHOICE.findall(self.text)
        }

    def _schema(self, rule: str) -> Any:
        if rule not in self._schemas:
            self._schemas[rule] = pycddl.Schema(f"attest-vectors-root = {rule}\n{self.text}")
        return self._schemas[rule]

    def valid(self, rule: str, data: bytes) -> bool:
        """True iff ``data`` is one CBOR item that satisfies ``rule`` (workarounds applied)."""
        if rule in self.choices:
            return any(self.valid(alt, data) for alt in self.choices[rule])
        try:
            value = cbor2.loads(data)
        except Exception:
            return False
        if _has_tag(data):
            return False  # workaround 6
        try:
            self._schema(rule).validate_cbor(data)
        except pycddl.ValidationError:
            return False
        except BaseException as exc:  # workaround 7: pyo3 panics are BaseExceptions
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.panics.append(f"{rule}: {data[:32].hex()}: {exc!r}")
            return False
        return self._extra_checks(rule, value)

    def _extra_checks(self, rule: str, value: Any) -> bool:
        if rule in _EMBEDDED:
            path, inner = _EMBEDDED[rule]
            data = _at(value, path)
            entries = _at(value, path[:1])
            single = isinstance(entries, list) and len(entries) == 1  # workaround 3
            return single and isinstance(data, bytes) and self.valid(inner, data)
        if rule in _OPEN_MAPS:
            path, keys = _OPEN_MAPS[rule]
            members = _at(value, path)
            return isinstance(members, dict) and set(members) <= keys
        if rule != POD_CERT_CLAIMS or not isinstance(value, dict):
            return True
        if value.get(POD_ID_KEY) == bytes(16):
            return False  # workaround 5
        members = value.get(POD_MEMBERS_KEY)
        return isinstance(members, list) and all(  # workaround 3
            self.valid("pod-member", cbor2.dumps(m)) for m in members
        )

    def token(self, data: bytes, content_type: str) -> bool:
        """Whether ``data`` satisfies the token rule of ``content_type`` (workarounds 1, 2)."""
        if not data.startswith(b"\xd2"):
            return False
        try:
            body = cbor2.loads(data[1:])
        except Exception:
            return False
        if not isinstance(body, list) or len(body) != 4:
            return False
        protected, unprotected, payload, signature = body
        _name, claims = self.tokens[content_type]
        return (
            isinstance(protected, bytes)
            and self.valid(f'protected-header<"{content_type}">', protected)
            and unprotected == {}
            and isinstance(payload, bytes)
            and self.valid(claims, payload)
            and isinstance(signature, bytes)
            and len(signature) == 64
        )


@cache
def spec_cddl_checker() -> Cddl:
    return Cddl(SPEC.read_text(encoding="utf-8"))


# -- the EAR draft's and RFC 9711's CDDL (shared/external/ear), composed for pycddl ------------

EXTERNAL_EAR = SPEC.parents[1] / "shared" / "external" / "ear"
#: the EAR profile of the published draft-ietf-rats-ear-04 (the editor's copy of -03 says #03)
EAR_PROFILE_04 = "tag:ietf.org,2026:rats/ear#04"
_EAR_PROFILE_03 = '"tag:ietf.org,2026:rats/ear#03"'
_IMPORT = re.compile(r"^;# import (\S+)(?: as (\S+))?", re.M)
_RULE_NAME = re.compile(r"^([A-Za-z@_$][\w.$@-]*)\s*(?:<[^>]*>)?\s*(?:=|/=|//=)", re.M)
#: generic rules of those files, by name: how to expand an instance (workaround 14)
_GENERICS: dict[str, Any] = {
    "JC": lambda args: args[1],  # JC<J, C>: the CBOR alternative
    "CBOR-ONLY": lambda args: args[0],
    "non-empty": lambda args: args[0],  # "at least one member" is checked in Python
}
_GENERIC_USE = re.compile(r"(?<![\w.-])(?:[\w-]+\.)?(JC|CBOR-ONLY|non-empty)\s*<")
_GENERIC_DEF = re.compile(
    r"^(?:[\w-]+\.)?(?:JC|JSON-ONLY|CBOR-ONLY|non-empty)\s*<[^>]*>\s*=.*$", re.M
)


def _strip_comments(text: str) -> str:
    out = []
    for line in text.split("\n"):
        kept, quoted = [], False
        for ch in line:
            if ch == '"':
                quoted = not quoted
            if ch == ";" and not quoted:
                break
            kept.append(ch)
        out.append("".join(kept))
    return "\n".join(out)


def _balanced(text: str, i: int, close: str) -> tuple[list[str], int]:
    """The comma-separated arguments from ``text[i]`` up to the matching ``close``."""
    depth, args, cur, quoted = 1, [], "", False
    while True:
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        if not quoted and text.startswith("=>", i):
            cur, i = cur + "=>", i + 2
            continue
        if not quoted:
            if ch in "<({[":
                depth += 1
            elif ch in ">)}]":
                depth -= 1
                if depth == 0 and ch == close:
                    return [*args, cur], i + 1
            if depth == 1 and ch == ",":
                args, cur, i = [*args, cur], "", i + 1
                continue
        cur, i = cur + ch, i + 1


def _expand_generics(text: str) -> str:
    text = _GENERIC_DEF.sub("", text)
    while (m := _GENERIC_USE.search(text)) is not None:
        args, end = _balanced(text, m.end(), ">")
        text = text[: m.start()] + _GENERICS[m.group(1)]([a.strip() for a in args]) + text[end:]
    return text


def _prefixed(text: str, prefix: str) -> str:
    """``;# import NAME as PREFIX``: every rule the file defines (not sockets) gets ``PREFIX.``."""
    names = {n for n in _RULE_NAME.findall(text) if not n.startswith("$")}
    pattern = re.compile(
        r"(?<![\w.$@-])(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")"
        r"(?![\w.@-])"
    )
    parts = re.split(r'("(?:[^"\\]|\\.)*")', text)
    return "".join(p if i % 2 else pattern.sub(rf"{prefix}.\1", p) for i, p in enumerate(parts))


def _inline_socket(text: str, socket: str) -> str:
    """``* $$socket`` with its ``//=`` alternatives written as optional members (workaround 14)."""
    alternatives = []
    head = re.compile(rf"^{re.escape(socket)}\s*//=\s*\(", re.M)
    while (m := head.search(text)) is not None:
        args, end = _balanced(text, m.end(), ")")
        alternatives.append(",".join(args).strip())
        text = text[: m.start()] + text[end:]
    members = "".join(f"  ? {a},\n" for a in alternatives)
    return re.sub(rf"\*\s*{re.escape(socket)}\s*,?", members, text)


def _external(name: str) -> str:
    return _strip_comments((EXTERNAL_EAR / f"{name}.cddl").read_text(encoding="utf-8"))


def ear_cddl(spec_text: str) -> str:
    """One CDDL document: the EAR draft (ear.cddl, ear-appraisal.cddl, ar4si.cddl), RFC 9711
    (rfc9711.cddl, untagged-coswid.cddl) with their ``;# import … as …`` prefixes resolved, and
    SPEC.md's rules, which plug attest's extensions into the drafts' sockets.

    Two bindings come from this profile: RFC 9393's ``concise-swid-tag`` (not among the external
    files) is SPEC.md's ``fw-coswid``, the one CoSWID that Evidence carries; and RFC 9711's
    ``extended-claims-label`` member (the feature a profile enables for claims of its own) admits
    negative labels only: attest's HEM claims are private-use labels below −65536 (RFC 8392
    §9.1), and every registered CWT and EAT claim label is non-negative, so a registered claim
    is checked by its own rule and nothing else.
    """
    ear = _external("ear") + _external("ear-appraisal")
    imports = dict(_IMPORT.findall((EXTERNAL_EAR / "ear.cddl").read_text(encoding="utf-8")))
    imports |= dict(_IMPORT.findall((EXTERNAL_EAR / "ear-appraisal.cddl").read_text("utf-8")))
    ar4si = re.sub(r"^\$\.start\.\$ =.*$", "", _external("ar4si"), flags=re.M)
    eat = _inline_socket(_external("rfc9711"), "$$Claims-Set-Claims")
    eat = eat.replace(
        '* Claim-Label .feature "extended-claims-label" => any',
        "* private-claim-label => any",
    )
    # workaround 1: the CoSWID inside a measurements entry is checked on its own
    eat = eat.replace(
        "$measurements-body-cbor /= bytes .cbor untagged-coswid", "$measurements-body-cbor /= bytes"
    )
    coswid = _external("untagged-coswid").split(";# import rfc9393")[-1]
    # untagged-coswid.cddl defines this rule twice (two files joined), identically
    dup = "unprotected-signed-coswid-header = {\n    * cose-label => cose-values,\n}"
    coswid = coswid.replace(dup, "", 1) if coswid.count(dup) == 2 else coswid
    ear = _inline_socket(ear.replace(_EAR_PROFILE_03, f'"{EAR_PROFILE_04}"'), "$$ear-extension")
    doc = "\n".join(
        (
            _expand_generics(ear),
            _prefixed(_expand_generics(eat), imports.get("rfc9711", "eat")),
            _prefixed(_expand_generics(ar4si), imports.get("ar4si", "ar4si")),
            _expand_generics(coswid),
            "concise-swid-tag = fw-coswid",
            "private-claim-label = nint",
            "oid = #6.111(bstr)",  # RFC 9090's tagged OID, imported by rfc9711.cddl
        )
    )
    doc = re.sub(r"tstr \.b64u [\w.-]+", "tstr", doc)  # workaround 14: JSON-only alternatives
    doc = doc.replace("-128 .. 127", "(int .ge -128) .and (int .le 127)")  # workaround 12
    spec = for_pycddl(spec_cddl(spec_text))
    # SPEC.md's socket extensions go where the draft's sockets are (workaround 14)
    for socket in ("$$ear-appraisal-extension",):
        plugged = re.findall(rf"^{re.escape(socket)}\s*//=\s*\((.*)\)\s*$", spec, re.M)
        spec = re.sub(rf"^{re.escape(socket)}\s*//=.*$", "", spec, flags=re.M)
        members = "".join(f"  ? {p},\n" for p in plugged)
        doc = re.sub(rf"\*\s*{re.escape(socket)}\s*,?", members, doc)
    tagged = dict(re.findall(r"^([\w.-]+)\s*=\s*#6\.\d+\(([^()]*)\)\s*$", doc, re.M))
    tagged |= {"uri": "tstr", "time": "number"}  # the prelude's #6.32(tstr), #6.1(number)
    doc = re.sub(r"~\s*([\w.-]+)", lambda m: tagged[m.group(1)], doc)  # workaround 14
    return doc + "\n" + spec


class StandardCddl:
    """Validate tokens against the EAR draft's ``EAR`` and RFC 9711's ``Claims-Set``."""

    def __init__(self, spec_text: str) -> None:
        self.text = ear_cddl(spec_text)
        self.prefix = dict(_IMPORT.findall((EXTERNAL_EAR / "ear.cddl").read_text("utf-8")))
        self._schemas: dict[str, Any] = {}

    def _schema(self, rule: str) -> Any:
        if rule not in self._schemas:
            self._schemas[rule] = pycddl.Schema(f"attest-standard-root = {rule}\n{self.text}")
        return self._schemas[rule]

    def errors(self, rule: str, data: bytes) -> list[str]:
        """Why ``data`` fails ``rule`` (empty if it satisfies it), workarounds applied."""
        try:
            self._schema(rule).validate_cbor(data)
        except pycddl.ValidationError as exc:
            return [str(exc)]
        value = cbor2.loads(data)
        out = []
        if rule == "EAR":  # workaround 13 and non-empty<>: the vectors' keys and size
            for name, appraisal in value[266].items():
                vector = appraisal.get(1001, {1: 0})
                if not vector or not set(vector) <= set(range(8)):
                    out.append(f"submod {name!r}: trustworthiness vector {vector!r}")
        if rule.endswith("Claims-Set") and 273 in value:  # workaround 1: the CoSWID bodies
            for entry in value[273]:
                if entry[0] == 258:
                    out += [f"measurement: {e}" for e in self.errors("untagged-coswid", entry[1])]
        return out

    def ear(self, payload: bytes) -> list[str]:
        return self.errors("EAR", payload)

    def eat(self, payload: bytes) -> list[str]:
        return self.errors(f"{self.prefix.get('rfc9711', 'eat')}.Claims-Set", payload)


@cache
def standard_cddl_checker() -> StandardCddl:
    return StandardCddl(SPEC.read_text(encoding="utf-8"))
