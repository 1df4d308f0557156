"""The architecture as checked facts: layer contracts (import-linter) and types (mypy --strict).

Both read their configuration from pyproject.toml. The layer contracts say: the CLI sits on top
and nothing imports it; demo and benchmarks above the vectors, the node and the chip; those
above the mechanism registry; mechanisms (independent of each other) above the seam; then the
store, identity and files; verify and protocol; messages; codec; keys. No package has an import
cycle inside it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_layer_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = _run(str(lint), "--no-logo", "--no-cache")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_the_package_type_checks_strictly() -> None:
    run = _run(sys.executable, "-m", "mypy", "--no-incremental", "attest")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_nothing_below_the_cli_imports_it() -> None:
    """A plain grep backs the contract: only attest/cli, the mechanisms' CLI modules (cli.py,
    *_cli.py) and ``python -m attest`` (attest/__main__.py, the command itself) may."""
    offenders = []
    for path in (ROOT / "attest").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("attest/cli/") or rel.endswith(("/cli.py", "_cli.py")):
            continue
        if rel == "attest/__main__.py":
            continue
        text = path.read_text()
        if "from attest.cli" in text or "import attest.cli" in text:
            offenders.append(rel)
    assert offenders == []
