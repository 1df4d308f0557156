"""A description of the machine and software a benchmark ran on (printed with every report)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

from attest import __version__


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: cores this process could use when attest.bench was imported (before any pinning)
_USABLE_AT_START = _affinity()


def describe() -> dict[str, Any]:
    """CPU model, cores, Python and the versions of the libraries on the measured paths.

    PyNaCl's wheel bundles libsodium but does not export its version string, so libsodium is
    named by the PyNaCl release that ships it.
    """
    usable = _USABLE_AT_START
    pynacl = _version("pynacl")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "libsodium": f"bundled with PyNaCl {pynacl}",
        "pynacl": pynacl,
        "cbor2": _version("cbor2"),
        "pycose": _version("pycose"),
        "cwt": _version("cwt"),
        "attest": __version__,
        "executable": sys.executable,
    }


def one_line(info: dict[str, Any]) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"{info['python']}, libsodium {info['libsodium']}, cbor2 {info['cbor2']}"
    )
