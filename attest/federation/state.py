"""What a verifier of federation keeps durably: the agreement in force and partners' committees.

Anti-rollback (SPEC B.4, B.3): a verifier accepts an agreement only above the highest number it
accepted, and a committee rotation only above the number it holds; so that a restart, an older
configuration file or a restored folder cannot take it back, the accepted documents themselves
are kept in one state file, replaced crash-safely (:func:`attest.durable.atomic_write`) *before*
the node uses them. The file holds the tokens; on loading they are parsed again (they were
verified when accepted, and the file is the node's own).

Loading (:func:`load_federation`): the agreement in force is the state's; a configured agreement
file with a higher number is an amendment, accepted under the one in force (or as the first
agreement when the state holds none); one with a lower number is refused (AGREEMENT_STALE) and
the node keeps the newer agreement it holds. Partners' rotation files likewise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest.codec.cbor import decode
from attest.durable import atomic_write
from attest.errors import AttestError, ConfigError
from attest.federation.agreement import Agreement, open_agreement, parse_agreement
from attest.federation.committee import Committee, open_committee
from attest.federation.route import Federation, peek_issuer
from attest.federation.sign import FederationError, parse_sign

STATE_FORMAT = "attest-federation-state-v1"


@dataclass(frozen=True)
class Loaded:
    """The outcome of loading: the federation and what was refused on the way (for logs)."""

    federation: Federation
    #: one line per configured file that was refused, with its reason
    refused: tuple[str, ...] = ()
    #: what was newly accepted (and written to the state file)
    accepted: tuple[str, ...] = ()


@dataclass
class _State:
    agreement: bytes | None = None
    committees: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> _State:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the federation state: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise ConfigError(f"{path}: not a {STATE_FORMAT} file")
        try:
            agreement = bytes.fromhex(doc["agreement"]) if doc.get("agreement") else None
            committees = {k: bytes.fromhex(v) for k, v in doc.get("committees", {}).items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path}: malformed federation state ({exc})") from None
        return cls(agreement, committees)

    def write(self, path: Path) -> None:
        doc: dict[str, Any] = {
            "format": STATE_FORMAT,
            "agreement": self.agreement.hex() if self.agreement else None,
            "committees": {k: v.hex() for k, v in sorted(self.committees.items())},
        }
        atomic_write(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def _stored_committee(token: bytes) -> Committee:
    return Committee.from_claims(decode(parse_sign(token).payload))


def load_federation(
    *,
    home: Committee,
    state_path: Path,
    agreement_token: bytes | None,
    rotations: Sequence[bytes] = (),
    now_s: int,
    judge_home: bool = False,
) -> Loaded:
    """The federation a verifier of ``home`` holds after taking the configured documents.

    Raises ConfigError when it holds no agreement at all (none stored, the configured one
    refused); a refused document beside a stored agreement is reported in ``refused``.
    """
    state = _State.read(state_path)
    refused: list[str] = []
    accepted: list[str] = []
    try:
        in_force = parse_agreement(parse_sign(state.agreement).payload) if state.agreement else None
        committees = {k: _stored_committee(v) for k, v in state.committees.items()}
    except AttestError as exc:
        raise ConfigError(f"{state_path}: a stored document does not parse: {exc}") from None
    changed = False
    if agreement_token is not None and agreement_token != state.agreement:
        try:
            new = open_agreement(
                agreement_token,
                home=home,
                in_force=in_force,
                highest=in_force.number if in_force else 0,
                now_s=now_s,
                committees=committees,
            )
        except FederationError as exc:
            refused.append(f"agreement: {exc}")
        else:
            in_force, state.agreement, changed = new, agreement_token, True
            accepted.append(f"agreement {new.agreement_id} number {new.number}")
    if in_force is None:
        raise ConfigError("federation: no agreement in force (" + "; ".join(refused) + ")")
    for token in rotations:
        outcome = _rotate(token, in_force, committees)
        if isinstance(outcome, str):
            refused.append(outcome)
            continue
        committees[outcome.authority_id] = outcome
        state.committees[outcome.authority_id] = token
        changed = True
        accepted.append(f"committee {outcome.authority_id} number {outcome.number}")
    if changed:
        state.write(state_path)  # durable before anything is judged with it
    federation = Federation(home, in_force, committees, judge_home)
    return Loaded(federation, tuple(refused), tuple(accepted))


def _rotate(token: bytes, agreement: Agreement, held: dict[str, Committee]) -> Committee | str:
    """A partner's rotation accepted under the newest committee known for it, or why not."""
    issuer = peek_issuer(token)
    member = agreement.member(issuer) if issuer else None
    if member is None:
        return f"rotation of {issuer!r}: not a member of the agreement"
    current = held.get(member.authority_id)
    if current is None or current.number < member.committee.number:
        current = member.committee
    try:
        return open_committee(token, current=current)
    except FederationError as exc:
        return f"rotation of {issuer}: {exc}"
