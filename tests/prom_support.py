"""Helpers shared by the tests of metrics and of deploy/: promtool and the dashboard's queries."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def promtool() -> str:
    """The promtool binary; skipped without it, except in CI (``.ci/run`` installs it)."""
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)
    return path


def dashboard_exprs() -> list[str]:
    """Every query of the Grafana dashboard (panel targets and template variables)."""
    dashboard = json.loads((DEPLOY / "grafana" / "attest-verifier.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs
