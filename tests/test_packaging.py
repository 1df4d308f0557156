"""The package as users install it: its name, version, licence, type hints, entry points."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from cli_support import HANG_TIMEOUT_S, clean_env

import attest
from attest.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_distribution_name_version_and_licence() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == "hem-attest"  # PyPI's "attest" is another project
    assert project["dynamic"] == ["version"] and "version" not in project  # one source
    assert metadata.version("hem-attest") == attest.__version__
    assert project["license"] == "Apache-2.0"  # an SPDX expression
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "Typing :: Typed" in project["classifiers"]
    assert (ROOT / "attest" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["attest"]
    assert f"## {attest.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_no_hint_names_the_wrong_distribution() -> None:
    """`pip install 'attest[...]'` would install the unrelated project."""
    wrong = re.compile(r"pip install[^\n]*?(?<![\w-])attest\[")
    for path in [*ROOT.joinpath("attest").rglob("*.py"), ROOT / "README.md"]:
        assert not wrong.search(path.read_text()), path


def test_python_dash_m_attest() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "attest", "--version"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
    )
    assert proc.returncode == 0 and proc.stdout == f"attest {attest.__version__}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_know_every_command(
    shell: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from attest.cli.main import main

    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert name in script, name
    assert "register-pod" in script and "--log-level" in script
    if shell == "bash":  # the script is valid bash
        check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
