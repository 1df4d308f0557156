"""The verifier node: built from its configuration by :mod:`attest.node.app`, served by
:mod:`attest.node.server` (trio), one session at a time concluded by :mod:`attest.node.service`."""
