"""The vector files as a product: self-describing, schema-valid, tied to SPEC.md, runnable by
anyone through ``attest vectors check --impl`` (SPEC §16, vectors/README.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from attest.testvectors.check import FILES
from attest.testvectors.format import SPEC_REVISION, compare_outputs, json_equal

REPO = Path(__file__).resolve().parents[1]
VECTORS = REPO / "vectors"
SCHEMA = VECTORS / "schema" / "vectors.schema.json"
ADAPTER = VECTORS / "impl" / "example_adapter.py"
SPEC_TEXT = (REPO / "SPEC.md").read_text(encoding="utf-8")
CLI = [sys.executable, "-m", "attest.cli.main", "vectors", "check"]


def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )


@pytest.mark.parametrize("name", FILES)
def test_every_file_validates_against_the_json_schema(name: str) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(_load(name)))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5]]


def test_the_schema_rejects_what_it_should() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    doc = _load("revocation.json")
    assert validator.is_valid(doc)
    for broken in (
        {k: v for k, v in doc.items() if k != "version"},
        {**doc, "testGroups": [{**doc["testGroups"][0], "outputs": []}]},
        {**doc, "testGroups": [{**doc["testGroups"][0], "tests": [{"tcId": 1}]}]},
    ):
        assert not validator.is_valid(broken)


def _spec_sections() -> set[str]:
    # numbered sections (§4.1) and appendix sections (B.2)
    pattern = r"^#{2,3} (?:Appendix )?((?:\d+|[A-Z])(?:\.\d+)?)\.? "
    return {m.group(1) for m in re.finditer(pattern, SPEC_TEXT, re.M)}


def test_every_test_names_spec_sections_that_exist() -> None:
    sections = _spec_sections()
    assert {"4.1", "7.10", "7.12", "11.4", "12", "16.10"} <= sections
    for name in FILES:
        for g in _load(name)["testGroups"]:
            for t in g["tests"]:
                assert t["sections"] and set(t["sections"]) <= sections, (name, t["tcId"])


def test_files_carry_the_spec_revision_and_every_output() -> None:
    revision = re.search(r"document revision (\d+)\*\*", SPEC_TEXT)
    assert revision is not None and int(revision.group(1)) == SPEC_REVISION
    for name in FILES:
        doc = _load(name)
        assert doc["version"] == SPEC_REVISION, name
        for g in doc["testGroups"]:
            for t in g["tests"]:
                missing = [o for o in g["outputs"] if o not in t]
                assert not missing, (name, t["tcId"], missing)


def test_json_equality_is_strict_about_types() -> None:
    assert json_equal({"a": [1, None]}, {"a": [1, None]})
    assert not json_equal(True, 1)
    assert not json_equal(1, True)
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal("1", 1)
    assert json_equal({"x": 1, "y": 2}, {"y": 2, "x": 1})
    assert compare_outputs(["a"], {"a": 1}, {}) == ["no 'a' given"]


# -- attest vectors check, and the --impl protocol ---------------------------------------------


def test_check_refuses_a_folder_without_vector_files(tmp_path: Path) -> None:
    for folder in (tmp_path, tmp_path / "absent"):
        proc = _check("--dir", str(folder))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "no vector files" in proc.stderr
        assert "passed" not in proc.stdout


def test_example_adapter_passes_what_it_implements() -> None:
    proc = _check("--impl", f"{sys.executable} {ADAPTER}", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert re.fullmatch(r"\d+ passed, 0 failed, \d+ skipped", lines[-1]), lines[-1]
    counts = {Path(line.split(":")[0]).name: line.split(": ")[1] for line in lines[:-1]}
    cbor = _load("cbor_decoding.json")["numberOfTests"]
    assert counts["cbor_decoding.json"] == f"{cbor} passed, 0 failed"
    session = _load("session.json")
    transcripts = sum(
        len(g["tests"])
        for g in session["testGroups"]
        if g["type"] in ("SessionTranscript", "VersionNegotiation")
    )
    skipped = session["numberOfTests"] - transcripts
    assert counts["session.json"] == f"{transcripts} passed, 0 failed, {skipped} skipped"
    n = _load("pods.json")["numberOfTests"]
    assert counts["pods.json"] == f"0 passed, 0 failed, {n} skipped"


def test_example_adapter_imports_nothing_from_attest() -> None:
    source = ADAPTER.read_text(encoding="utf-8")
    imports = re.findall(r"^\s*(?:from|import) (\S+)", source, re.M)
    assert imports and not [m for m in imports if m.split(".")[0] == "attest"]


def _adapter(tmp_path: Path, body: str) -> str:
    path = tmp_path / "adapter.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return f"{sys.executable} {path}"


def _one_file(tmp_path: Path, name: str = "cbor_decoding.json") -> Path:
    folder = tmp_path / "vectors"
    folder.mkdir()
    (folder / name).write_bytes((VECTORS / name).read_bytes())
    return folder


def test_impl_that_gets_a_value_wrong_fails_that_test(tmp_path: Path) -> None:
    folder = _one_file(tmp_path)
    impl = _adapter(
        tmp_path,
        f"""
        import json, subprocess, sys
        request = sys.stdin.read()
        answer = json.loads(subprocess.run([sys.executable, {str(ADAPTER)!r}], input=request,
                                           capture_output=True, text=True).stdout)
        answer["results"][0]["outputs"]["result"] = "valid?"
        del answer["results"][1]
        print(json.dumps(answer))
        """,
    )
    proc = _check("--dir", str(folder), "--impl", impl)
    assert proc.returncode == 1
    n = _load("cbor_decoding.json")["numberOfTests"]
    assert f"cbor_decoding.json: {n - 2} passed, 2 failed" in proc.stdout
    assert "tcId 1 " in proc.stdout and "tcId 2 " in proc.stdout and "no result" in proc.stdout
    # the other expected files are missing: each counts as one failure
    assert proc.stdout.splitlines()[-1] == f"{n - 2} passed, {2 + len(FILES) - 1} failed"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("import sys; sys.exit(3)", "exited with status 3"),
        ("print('not json')", "not JSON"),
        ("print('[1, 2]')", "not a JSON object"),
        ("print('{}')", "no results list"),
    ],
)
def test_impl_that_breaks_the_protocol_fails_every_test(
    tmp_path: Path, body: str, why: str
) -> None:
    folder = _one_file(tmp_path, "revocation.json")
    proc = _check("--dir", str(folder), "--impl", _adapter(tmp_path, body))
    assert proc.returncode == 1
    n = _load("revocation.json")["numberOfTests"]
    assert f"revocation.json: 0 passed, {n} failed" in proc.stdout
    assert why in proc.stdout


def test_impl_protocol_request_and_unsupported_answer(tmp_path: Path) -> None:
    folder = _one_file(tmp_path, "audit.json")
    seen = tmp_path / "request.json"
    impl = _adapter(
        tmp_path,
        f"""
        import json, sys
        request = json.loads(sys.stdin.read())
        open({str(seen)!r}, "w").write(json.dumps(request))
        print(json.dumps({{"unsupported": "not today"}}))
        """,
    )
    proc = _check("--dir", str(folder), "--impl", impl)
    n = _load("audit.json")["numberOfTests"]
    assert f"audit.json: 0 passed, 0 failed, {n} skipped" in proc.stdout
    request = json.loads(seen.read_text(encoding="utf-8"))
    assert request["protocol"] == "attest-vectors-impl/1"
    assert request["file"] == "audit.json"
    assert request["document"] == _load("audit.json")


def test_check_reads_a_family_it_does_not_know_with_impl(tmp_path: Path) -> None:
    """A later mechanism's file (e.g. escrow.json) runs through --impl unchanged."""
    folder = _one_file(tmp_path, "revocation.json")
    doc = _load("revocation.json")
    doc["algorithm"] = "attest-escrow"
    (folder / "escrow.json").write_text(json.dumps(doc), encoding="utf-8")
    impl = _adapter(tmp_path, 'print(\'{"unsupported": "no"}\')')
    proc = _check("--dir", str(folder), "--impl", impl)
    assert "escrow.json: 0 passed, 0 failed" in proc.stdout
    own = _check("--dir", str(folder))  # this build has no checker for it: a failure, not a crash
    assert own.returncode == 1 and "unknown algorithm 'attest-escrow'" in own.stdout
