"""SPEC.md's CDDL, compiled by pycddl (a validator nobody here wrote), with its bugs worked around.

Everything specific to pycddl 0.6.4 lives here, so tests/test_cddl.py reads as "the vectors
satisfy the CDDL of SPEC.md". The workarounds (each checked by ``test_pycddl_bugs_still_need_
workarounds`` so we notice when a release fixes one):

1. ``.cbor`` inside an array is applied to every element of the array, so a whole COSE_Sign1
   cannot be validated against ``attest-token<…>``: :meth:`Cddl.token` validates each envelope
   element on its own (protected header, payload) and checks the two that need no CDDL
   (the unprotected header is the empty map, the signature a 64-byte byte string) directly;
2. ``{}`` accepts a non-empty map: the empty unprotected header is checked in Python;
3. an array of arrays checks only its first element: ``[1*1024 pod-member]`` is checked by
   validating every member against ``pod-member`` as well;
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
}
#: rules the rewritten forms of :data:`_SAME` refer to
_SAME_RULES = "pycddl-audit-digest = bstr .size 0 / bstr .size 32\n"
_NAME_CHOICE = re.compile(r"^([a-z-]+)\s*=\s*([a-z-]+(?:\s*/\s*[a-z-]+)+)\s*(?:;.*)?$", re.M)
_TOKEN_RULE = re.compile(r'^([a-z-]+)-token\s*=\s*attest-token<"([^"]+)",\s*([a-z-]+)>', re.M)
#: workaround 11: vectors (by comment) whose only defect is an extra key in a map in an array
PYCDDL_MISSES = frozenset({"a model map with an unknown key 6"})
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
