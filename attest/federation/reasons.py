"""Reason codes of federation (190-219): why a partner authority's act is not accepted.

A verifier node of authority A that is given a chip whose chain leads to authority B judges it
under B's committee only when the federation agreement in force lets A recognise B's
endorsements (attest.federation.route). When it does not, the core reports CERT_CHAIN_INVALID
(the chain does not reach A's own anchors) and federation adds *why*: one of these.

The same codes name why a committee descriptor, a rotation or an agreement is refused
(:class:`attest.federation.sign.FederationError`): a document of a committee fails for the same
reasons as any act of it.

AR4SI: every one speaks for the endorsement path of the hardware: ``hardware`` 99
(cryptographic validation failed) when signatures do not make the act valid, 97 (unrecognized)
when the act may be genuine but no agreement in force lets this verifier recognise it.
"""

from __future__ import annotations

from attest.verify.reasons import ReasonCode, Trust

FIRST, LAST = 190, 219


class FederationReason(ReasonCode):
    #: the chain leads to an authority that is not a member of the agreement in force, or the
    #: agreement does not let this verifier's authority recognise its (manufacturer's)
    #: endorsements
    AUTHORITY_NOT_RECOGNISED = 190, Trust.HARDWARE, 97
    #: the agreement that would recognise the chain has expired
    AGREEMENT_EXPIRED = 191, Trust.HARDWARE, 97
    #: the agreement offered is not newer than one already accepted (a rollback), or the node
    #: holds a newer agreement number durably than the agreement it judges with
    AGREEMENT_STALE = 192, Trust.HARDWARE, 97
    #: a committee descriptor not newer than the one held (a rollback), or the agreement's
    #: description of the chain's authority is older than a committee the node accepted
    COMMITTEE_STALE = 193, Trust.HARDWARE, 97
    #: the act is not a COSE_Sign of the profile (SPEC B.2), or its payload is malformed
    ACT_MALFORMED = 194, Trust.HARDWARE, 99
    #: the act's body header is not the expected content type (domain separation)
    ACT_WRONG_CONTENT_TYPE = 195, Trust.HARDWARE, 99
    #: an officer's signature does not verify
    ACT_BAD_SIGNATURE = 196, Trust.HARDWARE, 99
    #: a signature's kid names no officer of the committee (a rotated-out or foreign key)
    ACT_UNKNOWN_OFFICER = 197, Trust.HARDWARE, 99
    #: two signatures of one officer
    ACT_DUPLICATE_OFFICER = 198, Trust.HARDWARE, 99
    #: fewer distinct valid officer signatures (or approving members) than the threshold
    ACT_TOO_FEW_SIGNATURES = 199, Trust.HARDWARE, 99


#: reasons that refuse documents (a rotation, an agreement) and never reach a verdict: a node
#: always judges chains with the newest committee and agreement it accepted (SPEC B.3, B.4)
DOCUMENT_ONLY: frozenset[FederationReason] = frozenset(
    {FederationReason.AGREEMENT_STALE, FederationReason.COMMITTEE_STALE}
)
