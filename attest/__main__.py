"""``python -m attest``: the ``attest`` command, for when the console script is not on PATH."""

import sys

from attest.cli.main import main

sys.exit(main())
