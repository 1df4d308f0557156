"""The chip-side load generator: many simulated chips on keep-alive connections, one process.

Run by :mod:`attest.bench.e2e` as ``python -m attest.bench.loadgen`` so that the load comes from
a process other than the verifier's. It speaks the real wire protocol (frames, COSE_Sign1,
deterministic CBOR) with a hand-written epoll loop instead of trio and
:class:`~attest.protocol.connection.Connection`: on a 2-core machine every microsecond the load
generator spends is taken from the verifier under test, so the chips here do only what a chip
must do to be appraised (sign fresh Evidence for each challenge) and parse what they need from
the verifier's answers (the nonce, and the status of each result). They do not verify the
verifier's signatures (the real chip does; that cost is the chip's, not the verifier's).

Each chip opens one connection, sends HELLO, and after each RESULT waits for its turn to send
NEXT. At most ``inflight`` sessions run at once (and at most ``rate`` start per second, if
given); chips take turns in FIFO order. A warm-up round (every chip's first session, which
includes auto-enrolment or the first appraisal against its registered state) is not measured.
Output: ``phase measure`` and ``phase done`` lines when the measured window opens and closes,
then one JSON line with the counts and latencies.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import json
import select
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import cbor2
from nacl.bindings import crypto_sign

from attest.bench.fleet import FIRMWARE, Fleet, chip_keypair
from attest.codec.cbor import encode
from attest.codec.cose import parse_sign1, protected_header
from attest.hardware import simulated_firmware_measurement
from attest.messages import claims as C
from attest.messages.attestation import Firmware, fw_coswid
from attest.messages.content import ContentType

_LEN = struct.Struct(">I")
_PROTECTED = protected_header(ContentType.EVIDENCE)
_TBS_PREFIX = b"\x84\x6aSignature1" + b"\x58" + bytes((len(_PROTECTED),)) + _PROTECTED + b"\x40"
_TOKEN_PREFIX = b"\xd2\x84\x58" + bytes((len(_PROTECTED),)) + _PROTECTED + b"\xa0"
_NEXT = _LEN.pack(2) + b"\x81\x05"
_BYE = _LEN.pack(2) + b"\x81\x06"
#: EAT measurements (273): the firmware's CoSWID evidence tag, written once
_MEASUREMENTS = [
    [
        C.COAP_SWID_CBOR,
        encode(fw_coswid(Firmware(FIRMWARE, simulated_firmware_measurement(FIRMWARE)))),
    ]
]
_AFFIRMING = 2

# chip states
_CONNECTING, _AWAIT_CHALLENGE, _AWAIT_RESULT, _IDLE, _DEAD = range(5)


def _bstr(data: bytes) -> bytes:
    n = len(data)
    if n < 24:
        return bytes((0x40 + n,)) + data
    if n < 0x100:
        return bytes((0x58, n)) + data
    return b"\x59" + n.to_bytes(2, "big") + data


class _Chip:
    __slots__ = (
        "buf",
        "counter",
        "hello",
        "index",
        "nonce",
        "out",
        "sk",
        "sock",
        "source",
        "started",
        "state",
        "ueid",
    )

    def __init__(self, index: int, fleet: Fleet) -> None:
        ueid, device_cert = fleet.chips[index]
        self.index = index
        self.ueid = ueid
        self.sk = chip_keypair(fleet.seed, index)[1]
        body = cbor2.dumps([1, [1], device_cert, fleet.manufacturer_cert])
        self.hello = _LEN.pack(len(body)) + body
        self.buf = bytearray()
        self.out = b""
        self.counter = 0
        self.nonce = b""
        self.started = 0.0
        self.state = _CONNECTING
        self.sock: socket.socket | None = None
        #: the local address to connect from (None: the kernel's choice)
        self.source: str | None = None

    def evidence_frame(self, issuer: str, nonce: bytes, uptime_s: int) -> bytes:
        """A signed EVIDENCE frame answering ``nonce`` (the counter advances first)."""
        self.counter += 1
        claims = {
            C.AUD: issuer,
            C.EAT_NONCE: nonce,
            C.UEID: self.ueid,
            C.UPTIME: uptime_s,
            C.DBGSTAT: C.DBGSTAT_DISABLED_PERMANENTLY,
            C.EAT_PROFILE: C.EVIDENCE_PROFILE,
            C.BOOTCOUNT: 1,
            C.MEASUREMENTS: _MEASUREMENTS,
            C.HEM_ATTEST_COUNTER: self.counter,
            C.HEM_METERS: {C.METER_FLOPS: 0, C.METER_ENERGY_MJ: 0, C.METER_INTERCONNECT_BYTES: 0},
        }
        payload = cbor2.dumps(claims)  # keys are written in deterministic order (checked once)
        body_payload = _bstr(payload)
        signature = crypto_sign(_TBS_PREFIX + body_payload, self.sk)[:64]
        token = _TOKEN_PREFIX + body_payload + b"\x58\x40" + signature
        body = b"\x82\x03" + _bstr(token)
        return _LEN.pack(len(body)) + body


def _check_template(fleet: Fleet) -> None:
    """The hand-ordered claims map must be exactly the deterministic encoding."""
    chip = _Chip(0, fleet)
    frame = chip.evidence_frame("v", bytes(32), 1)
    token = cbor2.loads(frame[4:])[1]
    payload = parse_sign1(token).payload
    if encode(cbor2.loads(payload)) != payload:
        raise AssertionError("evidence template is not deterministic CBOR")


class LoadGenerator:
    """The epoll loop driving every chip; see the module docstring."""

    def __init__(
        self,
        fleet: Fleet,
        host: str,
        port: int | list[int],
        chips: int,
        inflight: int,
        rate: float,
        source_net: str = "",
    ) -> None:
        self.fleet = fleet
        #: chip i attests to node i % len (several nodes sharing one PostgreSQL database)
        self.addrs = [(host, p) for p in (port if isinstance(port, list) else [port])]
        #: every result received, warm-up and drain included (checked against the audit logs)
        self.results_total = 0
        self.chips = [_Chip(i, fleet) for i in range(chips)]
        if source_net:  # one loopback address per chip, as chips at many sites would have
            for chip in self.chips:
                i = chip.index
                chip.source = f"{source_net}.{(i // 250) % 256}.{i % 250 + 1}"
        self.inflight_max = inflight
        self.rate = rate
        self.epoll = select.epoll()
        self.by_fd: dict[int, _Chip] = {}
        self.ready: collections.deque[_Chip] = collections.deque()
        self.inflight = 0
        self.started_at = time.time()
        self.measuring = False
        #: (completion time, latency) of each measured session
        self.latencies: list[tuple[float, float]] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self.warmed: list[_Chip] = []
        #: latency of each chip's first session (connect, HELLO ... RESULT)
        self.warmup_latencies: list[float] = []
        self.dead = 0
        self.window_start = self.window_end = 0.0
        self.tokens = 0.0
        self.last_refill = time.perf_counter()

    # -- connections ---------------------------------------------------------------------------
    def _connect(self, chip: _Chip) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        if chip.source is not None:
            sock.bind((chip.source, 0))
        err = sock.connect_ex(self.addrs[chip.index % len(self.addrs)])
        if err not in (0, errno.EINPROGRESS):
            self._fail(chip, f"connect: {errno.errorcode.get(err, err)}")
            sock.close()
            return
        chip.sock = sock
        self.by_fd[sock.fileno()] = chip
        self.epoll.register(sock.fileno(), select.EPOLLOUT | select.EPOLLIN)

    def _fail(self, chip: _Chip, why: str) -> None:
        if chip.state in (_AWAIT_CHALLENGE, _AWAIT_RESULT, _CONNECTING):
            self.inflight -= 1
        self.errors[why] += 1
        self.dead += 1
        chip.state = _DEAD
        if chip.sock is not None:
            fd = chip.sock.fileno()
            if fd >= 0:
                self.by_fd.pop(fd, None)
                with contextlib.suppress(OSError):
                    self.epoll.unregister(fd)
            chip.sock.close()

    def _send(self, chip: _Chip, data: bytes) -> None:
        assert chip.sock is not None
        if chip.out:
            chip.out += data
            return
        try:
            sent = chip.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._fail(chip, f"send: {exc.strerror}")
            return
        if sent < len(data):
            chip.out = data[sent:]
            self.epoll.modify(chip.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)

    # -- sessions ------------------------------------------------------------------------------
    def _start(self, chip: _Chip) -> None:
        self.inflight += 1
        chip.started = time.perf_counter()
        if chip.state == _CONNECTING:
            self._connect(chip)
        else:
            chip.state = _AWAIT_CHALLENGE
            self._send(chip, _NEXT)

    def _frame(self, chip: _Chip, body: bytes) -> None:
        kind = body[1] if len(body) > 1 else -1
        if kind == 2 and chip.state == _AWAIT_CHALLENGE:
            frame = cbor2.loads(body)
            challenge = cbor2.loads(parse_sign1(frame[3]).payload)
            chip.nonce = challenge[C.EAT_NONCE]
            uptime = int(time.time() - self.started_at) + 60
            chip.state = _AWAIT_RESULT
            self._send(chip, chip.evidence_frame(challenge[C.ISS], chip.nonce, uptime))
        elif kind == 4 and chip.state == _AWAIT_RESULT:
            result = cbor2.loads(parse_sign1(cbor2.loads(body)[1]).payload)
            done = time.perf_counter()
            self.inflight -= 1
            chip.state = _IDLE
            appraisal = result[C.SUBMODS]["hem"]
            status = appraisal[C.EAR_STATUS]
            self.results_total += 1
            ok = False
            if result[C.EAT_NONCE] != chip.nonce:
                self.errors["result for another nonce"] += 1
            elif status != _AFFIRMING:
                reasons = appraisal[C.HEM_RESULT][C.HEM_REASONS]
                self.errors[f"verdict {status} reasons {reasons}"] += 1
            else:
                ok = True
            if not self.measuring:
                if ok:
                    self.warmup_latencies.append(done - chip.started)
                self.warmed.append(chip)
                return
            if ok and chip.started >= self.window_start:
                self.latencies.append((done, done - chip.started))
            self.ready.append(chip)
        elif kind == 7:
            error = cbor2.loads(body)
            self._fail(chip, f"ERROR frame {error[1]}: {error[2]}")
        else:
            self._fail(chip, f"unexpected frame type {kind}")

    def _readable(self, chip: _Chip) -> None:
        assert chip.sock is not None
        try:
            data = chip.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(chip, f"recv: {exc.strerror}")
            return
        if not data:
            self._fail(chip, "verifier closed the connection")
            return
        buf = chip.buf
        buf += data
        while len(buf) >= 4:
            (n,) = _LEN.unpack_from(buf)
            if len(buf) < 4 + n:
                break
            body = bytes(buf[4 : 4 + n])
            del buf[: 4 + n]
            self._frame(chip, body)
            if chip.state == _DEAD:
                return

    def _writable(self, chip: _Chip) -> None:
        assert chip.sock is not None
        if chip.state == _CONNECTING:
            err = chip.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._fail(chip, f"connect: {errno.errorcode.get(err, err)}")
                return
            chip.state = _AWAIT_CHALLENGE
            self.epoll.modify(chip.sock.fileno(), select.EPOLLIN)
            self._send(chip, chip.hello)
            return
        if chip.out:
            data, chip.out = chip.out, b""
            self.epoll.modify(chip.sock.fileno(), select.EPOLLIN)
            self._send(chip, data)

    def _poll(self, timeout: float) -> None:
        for fd, mask in self.epoll.poll(timeout):
            chip = self.by_fd.get(fd)
            if chip is None:
                continue
            if mask & select.EPOLLOUT:
                self._writable(chip)
            if chip.state != _DEAD and mask & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                self._readable(chip)

    def _admit(self, now: float) -> None:
        if self.rate > 0:
            self.tokens = min(
                self.tokens + (now - self.last_refill) * self.rate, max(1.0, self.rate / 100)
            )
            self.last_refill = now
        while self.ready and self.inflight < self.inflight_max:
            if self.rate > 0:
                if self.tokens < 1.0:
                    return
                self.tokens -= 1.0
            self._start(self.ready.popleft())

    # -- phases --------------------------------------------------------------------------------
    def run(self, seconds: float, warmup_timeout_s: float = 300.0) -> dict[str, Any]:
        """Warm up (every chip's first session), then measure for ``seconds``."""
        self.ready.extend(self.chips)
        rate, self.rate = self.rate, 0.0  # the warm-up runs unthrottled
        deadline = time.perf_counter() + warmup_timeout_s
        while len(self.warmed) + self.dead < len(self.chips):
            if time.perf_counter() > deadline:
                raise SystemExit(f"warm-up did not finish in {warmup_timeout_s} s")
            self._admit(time.perf_counter())
            self._poll(0.05)
        self.ready.extend(self.warmed)
        self.rate = rate
        self.last_refill = time.perf_counter()
        print("phase measure", flush=True)
        self.measuring = True
        cpu0 = time.process_time()
        self.window_start = time.perf_counter()
        end = self.window_start + seconds
        while (now := time.perf_counter()) < end:
            self._admit(now)
            self._poll(min(0.01, max(0.0, end - now)))
            if not self.ready and not self.inflight:
                break  # every chip is dead
        self.window_end = time.perf_counter()
        cpu = time.process_time() - cpu0
        print("phase done", flush=True)
        self.ready.clear()
        drain = time.perf_counter() + 15.0
        while self.inflight and time.perf_counter() < drain:
            self._poll(0.05)
        for chip in self.chips:
            if chip.state == _IDLE and chip.sock is not None:
                with contextlib.suppress(OSError):
                    chip.sock.send(_BYE)
            if chip.sock is not None:
                chip.sock.close()
        window = self.window_end - self.window_start
        completed = sum(1 for done, _ in self.latencies if done <= self.window_end)
        return {
            "chips": len(self.chips),
            "inflight": self.inflight_max,
            "rate_limit": rate,
            "window_s": window,
            "sessions": completed,
            "sessions_per_s": completed / window if window > 0 else 0.0,
            "warmup_sessions": len(self.warmed),
            "warmup_latencies_s": self.warmup_latencies,
            "loadgen_cpu_cores": cpu / window if window > 0 else 0.0,
            "errors": sum(self.errors.values()),
            "results_total": self.results_total,
            "error_kinds": dict(self.errors.most_common(10)),
            "latencies_s": [lat for _, lat in self.latencies],
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fleet", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", required=True, help="port, or ports comma-separated (chip i: i % n)")
    p.add_argument("--chips", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--inflight", type=int, default=64)
    p.add_argument("--rate", type=float, default=0.0, help="sessions started per second (0: max)")
    p.add_argument(
        "--source-net",
        default="",
        help="connect chip i from loopback address NET.(i//250).(i%%250+1), e.g. 127.1",
    )
    args = p.parse_args(argv)
    fleet = Fleet.read(args.fleet)
    if args.chips > len(fleet.chips):
        p.error(f"the fleet has only {len(fleet.chips)} chips")
    _check_template(fleet)
    ports = [int(x) for x in args.port.split(",")]
    gen = LoadGenerator(
        fleet, args.host, ports, args.chips, args.inflight, args.rate, args.source_net
    )
    result = gen.run(args.seconds)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
