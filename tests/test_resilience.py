"""Bounded runs of the resilience benchmarks: chaos (kills) on both stores, fuzzing, PG soak.

The full runs are ``attest bench chaos|fuzz|soak --store postgresql``; these keep every
harness working and its invariants held on small sizes (at least 20 kills per store). Nothing
here asserts a timing.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

from attest.bench.chaos import run_chaos
from attest.bench.e2e import run_pg_soak
from attest.bench.fuzz import TARGETS, run_fuzz
from attest.cli.main import main


def _check_chaos(report: dict[str, Any], store: str) -> None:
    assert report["store"] == store
    assert report["node_kills_total"] >= 20
    failed = [name for name, held in report["invariants"].items() if not held]
    assert not failed, (failed, report["problems"])
    assert report["final_round"]["affirmed"] == report["chips"]
    assert report["results_received"] > 0 and report["licences_issued"] > 0
    assert set(report["clean_exit_codes"].values()) == {0}
    assert report["ok"]


def test_chaos_on_sqlite_every_invariant_holds(tmp_path: Path) -> None:
    """Through the CLI: ``attest bench chaos --store sqlite``, 20 SIGKILLs of the nodes."""
    code = main(
        ["bench", "chaos", "--store", "sqlite", "--kills", "20", "--chips", "8", "--seed", "7",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    doc = json.loads((tmp_path / "chaos.json").read_text())
    (run,) = doc["result"]["runs"]
    _check_chaos(run, "sqlite")


def test_chaos_on_postgresql_every_invariant_holds(pg_cluster: Any) -> None:
    """Two nodes on one server: 20 node kills and one kill of the database server itself."""
    report = run_chaos(store="postgresql", kills=20, db_kills=1, chips=8, seed=11)
    _check_chaos(report, "postgresql")
    assert report["database_kills"] == 1
    # a restarting server is waited for, not an error that ends a node
    assert report["unexpected_node_exits"] == 0, report["unexpected_exit_reasons"]


def _atheris() -> None:
    if importlib.util.find_spec("atheris") is None:
        message = "atheris not installed (pip install -e '.[test]'); in CI (CI set) this fails"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_fuzzing_every_decoder_raises_only_attest_errors() -> None:
    _atheris()
    result = run_fuzz(inputs=len(TARGETS) * 4000)
    assert [t["target"] for t in result["targets"]] == list(TARGETS)
    for t in result["targets"]:
        assert t["ok"], t["log_tail"]
        assert t["inputs"] >= 4000 and t["coverage_edges"] > 0
    assert result["findings"] == 0 and result["inputs"] >= len(TARGETS) * 4000


def test_soak_on_postgresql_two_nodes_zero_errors_zero_lost(pg_cluster: Any) -> None:
    result = run_pg_soak(minutes=0.1, compare_seconds=2.0, chips=40, inflight=16)
    assert result["errors"] == 0, result["error_kinds"]
    assert result["lost_results"] == 0 and result["audit_entries"] >= result["results_total"]
    assert result["nodes"] == 2 and set(result["exit_codes"]) == {0}
    rows = [(c["store"], c["nodes"]) for c in result["comparison"]]
    assert rows == [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)]
    assert all(c["errors"] == 0 and c["lost_results"] == 0 for c in result["comparison"])
    assert set(result["rates"]) == {"sqlite_1", "postgresql_1", "postgresql_2"}
