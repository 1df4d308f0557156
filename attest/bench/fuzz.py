"""``attest bench fuzz``: coverage-guided fuzzing of every decoder with atheris (libFuzzer).

Each target is one decoder that untrusted bytes reach: deterministic CBOR, the COSE_Sign1
envelope, the frames and the state machines of both sans-I/O protocols (the chip-verifier
session in both roles, the chip-to-chip link handshake in both roles), and the payload of every
signed message type (core, Offline Licensing, Fixed Set). The rule checked is the one in
attest/errors.py: on any input a decoder either returns or raises one of attest's own error
types (:class:`~attest.errors.AttestError`); anything else (``ValueError``, ``KeyError``, a
``cbor2`` error, recursion, ...) is a finding, and libFuzzer stops with the input saved.

Every target runs in its own process (``python -m attest.bench.fuzz TARGET -runs=N ...``:
libFuzzer owns the process and exits when done), with the attest modules instrumented for
coverage and a seed corpus taken from the published vectors. The report counts the inputs
libFuzzer says it executed and the time taken.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attest.messages.schema import SignedMessage

#: the decoders fuzzed, in the order they are run
TARGETS = (
    "cbor",
    "cose",
    "session-verifier",
    "session-chip",
    "link-initiator",
    "link-responder",
    "messages",
)
_VECTORS = Path(__file__).resolve().parents[2] / "vectors"
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


def _seeds(target: str) -> list[bytes]:
    """Valid inputs from the published vectors, so the fuzzer starts inside the formats."""
    out: list[bytes] = []

    def hexes(doc: Any, keys: tuple[str, ...]) -> None:
        if isinstance(doc, dict):
            for k, v in doc.items():
                if k in keys and isinstance(v, str):
                    with contextlib.suppress(ValueError):
                        out.append(bytes.fromhex(v))
                else:
                    hexes(v, keys)
        elif isinstance(doc, list):
            for v in doc:
                hexes(v, keys)

    files = {
        "cbor": ("cbor_decoding.json", ("input",)),
        "cose": ("cose_sign1.json", ("token", "input")),
        "messages": ("evidence_appraisal.json", ("evidence", "challenge", "deviceCert")),
    }
    name, keys = files.get(target, ("", ()))
    if name and (_VECTORS / name).exists():
        hexes(json.loads((_VECTORS / name).read_text()), keys)
    if target == "messages":
        from attest.codec.cose import parse_sign1
        from attest.errors import AttestError

        payloads: list[bytes] = []
        for token in out:
            try:
                payloads.append(bytes([len(payloads) % 256]) + parse_sign1(token).payload)
            except AttestError:
                continue
        out = payloads
    return out[:200]


def _target(name: str) -> Callable[[bytes], None]:
    """The decoder under test; returns normally or raises AttestError on any input."""
    if name == "cbor":
        from attest.codec.cbor import decode

        def cbor(data: bytes) -> None:
            decode(data)

        return cbor
    if name == "cose":
        from attest.codec.cose import parse_sign1

        def cose(data: bytes) -> None:
            parse_sign1(data)

        return cose
    if name.startswith("session-"):
        from attest.protocol.connection import Connection
        from attest.protocol.events import NEED_DATA, ConnectionClosed
        from attest.protocol.machine import Role

        role = Role.VERIFIER if name == "session-verifier" else Role.CHIP

        def session(data: bytes) -> None:
            conn = Connection(role, 4096)
            conn.receive_data(data)
            for _ in range(64):
                event = conn.next_event()
                if event is NEED_DATA or isinstance(event, ConnectionClosed):
                    break
            conn.receive_data(b"")  # the peer closes
            conn.next_event()

        return session
    if name.startswith("link-"):
        from attest.pods.linkwire import LinkConnection, LinkRole
        from attest.protocol.events import NEED_DATA, ConnectionClosed

        lrole = LinkRole.INITIATOR if name == "link-initiator" else LinkRole.RESPONDER

        def link(data: bytes) -> None:
            conn = LinkConnection(lrole, 4096)
            conn.receive_data(data)
            for _ in range(64):
                event = conn.next_event()
                if event is NEED_DATA or isinstance(event, ConnectionClosed):
                    break

        return link
    if name == "messages":
        import attest.registry  # noqa: F401 - every mechanism's message types
        from attest.messages.schema import SignedMessage

        kinds = sorted(_subclasses(SignedMessage), key=lambda c: c.__qualname__)

        def messages(data: bytes) -> None:
            if not data:
                return
            kinds[data[0] % len(kinds)].from_payload(data[1:])

        return messages
    raise ValueError(f"unknown fuzz target {name!r}; use one of {', '.join(TARGETS)}")


def _subclasses(cls: type[SignedMessage]) -> set[type[SignedMessage]]:
    out: set[type[SignedMessage]] = set()
    for sub in cls.__subclasses__():
        if getattr(sub, "FIELDS", None):
            out.add(sub)
        out |= _subclasses(sub)
    return out


def _worker(argv: list[str]) -> int:
    """``python -m attest.bench.fuzz TARGET [libFuzzer flags]``: fuzz one target until done."""
    import atheris

    name = argv[0]
    with atheris.instrument_imports(include=["attest"]):
        fn = _target(name)
    from attest.errors import AttestError

    def one_input(data: bytes) -> None:
        try:
            fn(data)
        except AttestError:
            pass  # the only failure a decoder may report
        except RecursionError:
            raise AssertionError("decoder recursed without bound") from None

    atheris.Setup([sys.argv[0], *argv[1:]], one_input)
    atheris.Fuzz()
    return 0  # pragma: no cover - libFuzzer exits the process


def run_target(
    name: str, runs: int, workdir: Path, max_len: int = 4096, timeout_s: float = 3600.0
) -> dict[str, Any]:
    """Fuzz ``name`` for ``runs`` inputs in a subprocess; its counts, time and verdict."""
    corpus = workdir / f"corpus-{name}"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(_seeds(name)):
        (corpus / f"seed-{i}").write_bytes(seed)
    artifacts = workdir / f"findings-{name}"
    artifacts.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "attest.bench.fuzz", name, f"-runs={runs}"]
    cmd += [f"-max_len={max_len}", f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
    cmd += ["-rss_limit_mb=2048", "-timeout=10", str(corpus)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    elapsed = time.perf_counter() - started
    log = proc.stderr
    done = _DONE.search(log)
    findings = sorted(p.name for p in artifacts.iterdir())
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    cov = re.findall(r"cov: (\d+)", log)
    return {
        "target": name,
        "inputs": int(execs.group(1)) if execs else (int(done.group(1)) if done else 0),
        "seconds": elapsed,
        "inputs_per_s": (int(execs.group(1)) if execs else 0) / elapsed if elapsed else 0.0,
        "coverage_edges": int(cov[-1]) if cov else 0,
        "seeds": len(_seeds(name)),
        "exit_code": proc.returncode,
        "findings": findings,
        "ok": proc.returncode == 0 and not findings,
        "log_tail": "" if proc.returncode == 0 else log[-3000:],
    }


def run_fuzz(
    *,
    inputs: int,
    targets: tuple[str, ...] = TARGETS,
    workdir: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Fuzz every target with ``inputs`` split evenly; the per-target and total counts."""
    per = max(1, inputs // len(targets))
    rows = []
    with tempfile.TemporaryDirectory(prefix="attest-fuzz-", dir=workdir) as tmp:
        for name in targets:
            progress(f"{name}: {per:,} inputs")
            rows.append(run_target(name, per, Path(tmp)))
    total = sum(r["inputs"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    return {
        "targets": rows,
        "inputs": total,
        "seconds": seconds,
        "inputs_per_s": total / seconds if seconds else 0.0,
        "findings": sum(len(r["findings"]) for r in rows),
        "ok": all(r["ok"] for r in rows),
    }


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
