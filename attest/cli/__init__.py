"""Command-line interface (``attest ...``)."""
