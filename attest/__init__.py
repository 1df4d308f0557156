"""attest: reference implementation of an attestation protocol for governing AI chips.

The layers, bottom-up: ``attest.codec`` (deterministic CBOR, COSE_Sign1), ``attest.keys``,
``attest.messages`` (message types), ``attest.verify`` (the pure verification core),
``attest.protocol`` (sans-I/O session state machines), ``attest.chip`` (the simulated chip),
``attest.store`` (persistence), ``attest.node`` (the trio verifier daemon), ``attest.cli``.
"""

__version__ = "0.1.0"
