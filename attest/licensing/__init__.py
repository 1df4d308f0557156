"""Offline Licensing: issuing licenses (authority and delegated verifier nodes) and renewals.

``authority`` signs delegations and licenses; ``issuer`` is a verifier node's renewal logic
(policy, the pure renewal plan, the atomic issue through the store). The chip side lives in
:mod:`attest.chip.license`, the appraisal checks in :mod:`attest.verify.license_checks`.
"""
