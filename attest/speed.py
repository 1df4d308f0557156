"""The one switch for the fast paths.

Two hot spots have a fast path beside the reference code: parsing COSE_Sign1 tokens of our own
profile (:mod:`attest.codec._fast`) and turning claim maps into message objects
(:mod:`attest.messages._fast`). Each fast path may only ever accept what the reference path
accepts, with the same result, and hands everything else to it; ``tests/test_fastpaths.py``
checks this differentially on every published vector and on mutations of real tokens.

They are on by default. ``ATTEST_FAST_PATHS=0`` in the environment turns both off for the whole
process (set it before ``attest`` is imported): useful to rule them out when debugging, and to
measure what they buy (``attest bench core``).
"""

from __future__ import annotations

import os

#: True unless ATTEST_FAST_PATHS=0 was set when this module was first imported
FAST: bool = os.environ.get("ATTEST_FAST_PATHS", "1") != "0"
