"""Fixed Set: certified pods of chips and full-bandwidth links only between their members.

* :mod:`attest.messages.pod` — the PodCert and the two signed link proofs (wire formats);
* :mod:`attest.pods.cert` — verifying pod certificates, the chip's acceptance rules;
* :mod:`attest.pods.link` — the link handshake: sans-I/O state machine and its decisions;
* :mod:`attest.pods.links` — a chip's link table (full vs capped, re-verification, refusals);
* :mod:`attest.pods.driver` — the trio driver that runs handshakes over real streams;
* :mod:`attest.pods.monitor` — the verifier node's pod registry, reports and graph hook;
* :mod:`attest.verify.graph` — the pure appraisal of the reported link graph.
"""

from attest.pods.names import Refusal

__all__ = ["Refusal"]
