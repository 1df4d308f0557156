"""Published test vectors: a deterministic world, the generator and an independent checker.

``world`` builds the fixed keys, certificates and chips; ``generate`` writes the vector files;
``check`` re-verifies them from the JSON alone, as an independent implementer would.
"""
