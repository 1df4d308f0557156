"""The clone check of a session: one device key, two different Evidence for one counter value.

A chip MUST never sign two Evidence tokens with the same attestation counter (SPEC §7.11: the
new value is durable before it signs). So when an authentic Evidence answering *our* fresh
challenge carries exactly the counter of the chip's last accepted Evidence, from the same boot
or a later one, yet is not that Evidence (its digest differs), the key has signed two different
Evidence with one counter: its state was copied (a cloned chip, or a state folder restored from
a copy) and two instances now run. The core already rejects it (COUNTER_ROLLBACK: the counter
did not grow); this check names the cause, CLONE_SUSPECTED (SPEC §9.11).

Why an honest chip never gets it: its counter values are all distinct, so an equal counter is
either the very Evidence accepted before (same digest: EVIDENCE_REPLAY, not a clone) or not
from this chip's one line of counters. Evidence with a *lower* counter is deliberately left to
COUNTER_ROLLBACK alone: an honest chip attesting to two nodes at once produces it (its two
Evidence race, and the one with the higher counter may commit first, SPEC §9.8). An older boot
count is BOOTCOUNT_ROLLBACK's (a state restored from before a reboot).

This is a judgement over the session's stored state, made where the core's verdict is combined
with the mechanisms' (:func:`attest.mechanism.appraise_session`), and not inside
:func:`attest.verify.core.appraise`: the core's reasons for each input are pinned by the
published vectors of document revision 2, in which an equal counter is COUNTER_ROLLBACK only.
"""

from __future__ import annotations

from attest.keys import ct_equal
from attest.verify.core import Appraisal
from attest.verify.state import ChipState

_NO_DIGEST = bytes(32)


def clone_suspected(core: Appraisal, state: ChipState | None) -> bool:
    """Whether ``core`` (one session's appraisal against ``state``) shows a forked counter."""
    ev = core.evidence  # set only when the Evidence was authentic
    if ev is None or state is None:
        return False
    accepted_before = not ct_equal(state.last_evidence_digest, _NO_DIGEST)
    same_counter = ev.attest_counter == state.attest_counter
    other_evidence = not ct_equal(core.evidence_digest, state.last_evidence_digest)
    return accepted_before & same_counter & other_evidence & (ev.bootcount >= state.bootcount)
