"""Verifier node configuration: a TOML file, every key overridable by environment variables.

Environment overrides are named ``ATTEST_<SECTION>_<KEY>`` in upper case, e.g.
``ATTEST_LISTEN_PORT=7500`` or ``ATTEST_STORE_PATH=/var/lib/attest/kl.db``; they are parsed
with the type of the setting they replace. Relative paths are resolved against the folder of
the configuration file. ``attest verifier serve --print-config`` shows the effective values.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest.errors import ConfigError
from attest.registry import MECHANISMS
from attest.verify.policy import parse_version

#: upper bound of every timeout and of the challenge lifetime (a day): a larger value is a
#: mistake (or inf in disguise) that would disable the deadline it sets
MAX_TIMEOUT_S = 86_400.0
#: upper bound of the connection limits (far above what one process can hold)
MAX_CONNECTIONS = 1_000_000


@dataclass(frozen=True, slots=True)
class NodeSection:
    """Identity files of this verifier node (written by ``attest authority certify-verifier``)."""

    #: secret key of the node (0600)
    key_file: str = "verifier.key"
    #: the node's certificate (COSE_Sign1 by the authority)
    cert_file: str = "verifier.cert"
    #: the authority's public trust-anchor file (JSON)
    anchors_file: str = "anchors.json"
    #: optional signed revocation list (COSE_Sign1 by the authority); "" for none
    revocations_file: str = ""


@dataclass(frozen=True, slots=True)
class ListenSection:
    """Attestation TCP listener."""

    #: address to listen on (0.0.0.0 or :: for every interface)
    host: str = "127.0.0.1"
    #: 0 picks a free port (it is logged and written to ``port_file`` if set)
    port: int = 7400
    #: if set, the bound port is written here once the node is ready
    port_file: str = ""


@dataclass(frozen=True, slots=True)
class HttpSection:
    """Operations HTTP endpoint: /healthz, /readyz, /metrics (Prometheus text format)."""

    #: address of the operations endpoint (keep it off the public network)
    host: str = "127.0.0.1"
    #: 0 picks a free port; -1 disables the endpoint
    port: int = 7401


@dataclass(frozen=True, slots=True)
class LimitsSection:
    """Resource limits that keep one node healthy under load or attack."""

    #: attestation connections served at once (checked against the open-file limit at start)
    max_connections: int = 4096
    #: connections from one address (IPv6: one /64) that have not yet authenticated (no
    #: round with authentic evidence); more from that address are refused with OVERLOADED
    max_connections_per_address: int = 128
    #: a new connection must send HELLO within this many seconds (else it is closed)
    hello_timeout_s: float = 5.0
    #: deadline for one whole challenge → evidence → result exchange, in seconds
    session_timeout_s: float = 10.0
    #: how long an idle keep-alive connection may wait for NEXT, in seconds
    idle_timeout_s: float = 30.0
    #: largest frame accepted, in bytes (checked before the body is read)
    max_frame_bytes: int = 65536
    #: on SIGTERM/SIGINT: how long in-flight sessions may run before they are cancelled
    drain_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class StoreSection:
    """Persistence: this node's SQLite file, or a PostgreSQL database that nodes share."""

    #: "auto" (PostgreSQL for a postgresql:// path, else SQLite), "sqlite" or "postgresql"
    backend: str = "auto"
    #: the SQLite file, or postgresql://USER@HOST:PORT/DBNAME (password: ~/.pgpass or PGPASSWORD)
    path: str = "verifier.db"
    #: sign an audit checkpoint every N entries
    checkpoint_every: int = 100
    #: PostgreSQL: connections per process = the store calls a node makes at once
    pool_size: int = 4
    #: PostgreSQL: how long a transaction waits for a lost server to come back, in seconds
    reconnect_timeout_s: float = 5.0
    #: seconds a store write waits for another process's write lock before the session fails
    #: with ERROR INTERNAL (and /readyz reports not ready until the store works again)
    busy_timeout_s: float = 2.0
    #: where the newest signed audit checkpoint is published ("": beside the store, as
    #: <path>.checkpoint); `attest audit verify` compares the store with it
    checkpoint_file: str = ""


@dataclass(frozen=True, slots=True)
class PolicySection:
    """Appraisal policy."""

    #: the policy's name, carried in every result (EAR `ear.appraisal-policy-id`)
    policy_id: str = "attest-default-v1"
    #: seconds a challenge stays valid
    challenge_ttl_s: int = 30
    #: lowest firmware version that earns an affirming verdict (lower gets a warning)
    min_firmware: str = "1.1.0"
    #: enrol unknown chips whose certificate chain verifies (else they are refused)
    auto_enroll: bool = True


@dataclass(frozen=True, slots=True)
class LogSection:
    """Daemon logs on stderr (the global ``--log-level`` overrides the level)."""

    #: DEBUG, INFO, WARNING or ERROR
    level: str = "INFO"
    #: "json" (one object per line) or "text"
    format: str = "json"


def _mechanism_defaults() -> dict[str, Any]:
    return {m.name: m.config() for m in MECHANISMS if m.config is not None}


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node: NodeSection = field(default_factory=NodeSection)
    listen: ListenSection = field(default_factory=ListenSection)
    http: HttpSection = field(default_factory=HttpSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    store: StoreSection = field(default_factory=StoreSection)
    policy: PolicySection = field(default_factory=PolicySection)
    log: LogSection = field(default_factory=LogSection)
    #: each registered mechanism's section (``[licensing]`` ...), by mechanism name
    mechanisms: Mapping[str, Any] = field(default_factory=_mechanism_defaults)
    #: folder that relative paths are resolved against
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """Resolve a configured path relative to the configuration file's folder."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def store_backend(self) -> str:
        """ "sqlite" or "postgresql", as ``[store] backend`` and ``path`` say."""
        if self.store.backend != "auto":
            return self.store.backend
        return "postgresql" if is_database_url(self.store.path) else "sqlite"

    def store_location(self) -> str:
        """The PostgreSQL URL as configured, or the SQLite file's resolved path."""
        if is_database_url(self.store.path):
            return self.store.path
        return str(self.path(self.store.path))

    def section(self, name: str) -> Any:
        """The section ``[name]`` (a core section or a mechanism's)."""
        if name in _CORE:
            return getattr(self, name)
        return self.mechanisms[name]

    def sections(self) -> dict[str, Any]:
        """Every section by name, in file order (core first, then the mechanisms')."""
        return {name: self.section(name) for name in _section_types()}

    def as_dict(self) -> dict[str, Any]:
        return {name: dataclasses.asdict(sec) for name, sec in self.sections().items()}


_CORE = ("node", "listen", "http", "limits", "store", "policy", "log")


def _section_types() -> dict[str, type]:
    """Section name -> its dataclass: the core's, then each mechanism's (registry order)."""
    core = {f.name: f.default_factory for f in dataclasses.fields(NodeConfig) if f.name in _CORE}
    types: dict[str, type] = {name: factory for name, factory in core.items()}  # type: ignore[misc]
    for m in MECHANISMS:
        if m.config is not None:
            types[m.name] = m.config
    return types


def _coerce(section: str, key: str, current: Any, value: Any) -> Any:
    expected = type(current)
    if isinstance(value, str) and expected is not str:
        try:
            if expected is bool:
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes")
            value = expected(value)
        except ValueError:
            raise ConfigError(
                f"{section}.{key}: cannot read {value!r} as {expected.__name__}"
            ) from None
    if expected is float and type(value) is int:
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{section}.{key}: {value} is out of range") from None
    if type(value) is not expected:
        raise ConfigError(
            f"{section}.{key}: expected {expected.__name__}, got {type(value).__name__}"
        )
    if expected is float and not math.isfinite(value):
        raise ConfigError(f"{section}.{key}: must be a finite number, not {value!r}")
    if expected is int and not -(1 << 63) <= value < 1 << 63:
        raise ConfigError(f"{section}.{key}: {value} is out of range")
    return value


def load_config(
    path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> NodeConfig:
    """Read ``path`` (or defaults if None), then apply ``ATTEST_*`` environment overrides."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    base_dir = "."
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such file") from None
        except IsADirectoryError:
            raise ConfigError(f"{p}: is a directory, not a configuration file") from None
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{p}: not UTF-8 text (byte {exc.start}); a configuration file is TOML"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: {exc}") from None
        base_dir = str(p.resolve().parent)
    kinds = _section_types()
    _check_environment(env, kinds)
    unknown = set(raw) - set(kinds)
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    sections: dict[str, Any] = {}
    for name, kind in kinds.items():
        default = kind()
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}] must be a table")
        known = {f.name for f in dataclasses.fields(default)}
        bad = set(values) - known
        if bad:
            raise ConfigError(f"[{name}]: unknown key(s): {', '.join(sorted(bad))}")
        merged: dict[str, Any] = {}
        for key in known:
            current = getattr(default, key)
            value = values.get(key, current)
            env_value = env.get(env_name(name, key))
            if env_value is not None:
                value = env_value
            merged[key] = _coerce(name, key, current, value)
        sections[name] = type(default)(**merged)
    core = {name: sections.pop(name) for name in _CORE}
    config = NodeConfig(**core, mechanisms=sections, base_dir=base_dir)
    _validate(config)
    return config


#: ``ATTEST_*`` variables that are not node settings: the fast-path switch (attest.speed), the
#: licensing crash test's hook (attest.licensing.cli) and the test suite's long-run switch
OTHER_VARIABLES = frozenset(
    {"ATTEST_FAST_PATHS", "ATTEST_TEST_PAUSE_AFTER_ACCEPT_S", "ATTEST_SLOW"}
)


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides ``[section] key``."""
    return f"ATTEST_{section.upper()}_{key.upper()}"


def _check_environment(env: Mapping[str, str], kinds: Mapping[str, type]) -> None:
    """A mistyped ``ATTEST_*`` variable is refused like an unknown TOML key, not ignored."""
    known = {
        env_name(name, f.name): f"{name}.{f.name}"
        for name, kind in kinds.items()
        for f in dataclasses.fields(kind)
    }
    unknown = sorted(k for k in env if k.startswith("ATTEST_") and k not in known)
    unknown = [k for k in unknown if k not in OTHER_VARIABLES]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean {close[0]}, for {known[close[0]]}?)" if close else ""
        raise ConfigError(
            f"environment: unknown variable(s) {', '.join(unknown)}{hint}; a setting "
            "[section] key is overridden by ATTEST_<SECTION>_<KEY>"
        )


def is_database_url(value: str) -> bool:
    """Whether a ``[store] path`` names a PostgreSQL server rather than an SQLite file."""
    return value.startswith(("postgresql://", "postgres://"))


def _validate(c: NodeConfig) -> None:
    backend = c.store.backend
    if backend not in ("auto", "sqlite", "postgresql"):
        raise ConfigError(
            f"store.backend: unsupported backend {backend!r} (use auto, sqlite or postgresql)"
        )
    url = is_database_url(c.store.path)
    if backend == "sqlite" and url:
        raise ConfigError("store.backend is sqlite but store.path is a postgresql:// URL")
    if backend == "postgresql" and not url:
        raise ConfigError("store.backend is postgresql: store.path must be a postgresql:// URL")
    if not 1 <= c.store.pool_size <= 64:
        raise ConfigError("store.pool_size must be 1..64")
    if not 0 < c.store.reconnect_timeout_s <= 300:  # also refuses nan
        raise ConfigError("store.reconnect_timeout_s must be > 0 and <= 300")
    if not 0 <= c.listen.port <= 65535:
        raise ConfigError("listen.port must be 0..65535")
    if not -1 <= c.http.port <= 65535:
        raise ConfigError("http.port must be -1..65535")
    if not 1 <= c.limits.max_connections <= MAX_CONNECTIONS:
        raise ConfigError(f"limits.max_connections must be 1..{MAX_CONNECTIONS}")
    if not 1 <= c.limits.max_connections_per_address <= MAX_CONNECTIONS:
        raise ConfigError(f"limits.max_connections_per_address must be 1..{MAX_CONNECTIONS}")
    for key in ("hello_timeout_s", "session_timeout_s", "idle_timeout_s", "drain_timeout_s"):
        if not 0 < getattr(c.limits, key) <= MAX_TIMEOUT_S:
            raise ConfigError(f"limits.{key} must be > 0 and <= {MAX_TIMEOUT_S:g} (seconds)")
    if c.limits.hello_timeout_s > c.limits.session_timeout_s:
        raise ConfigError("limits.hello_timeout_s must not exceed limits.session_timeout_s")
    if not 0 <= c.store.busy_timeout_s <= 60:
        raise ConfigError("store.busy_timeout_s must be within 0..60 (seconds)")
    if not 64 <= c.limits.max_frame_bytes <= 16 * 1024 * 1024:
        raise ConfigError("limits.max_frame_bytes must be 64..16777216")
    if not 1 <= c.store.checkpoint_every <= 1 << 31:
        raise ConfigError("store.checkpoint_every must be 1..2^31")
    if not 1 <= c.policy.challenge_ttl_s <= MAX_TIMEOUT_S:
        raise ConfigError(f"policy.challenge_ttl_s must be 1..{MAX_TIMEOUT_S:g} (seconds)")
    if c.log.level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log.level must be DEBUG, INFO, WARNING or ERROR")
    if c.log.format not in ("json", "text"):
        raise ConfigError("log.format must be 'json' or 'text'")
    try:
        parse_version(c.policy.min_firmware)
    except ValueError as exc:
        raise ConfigError(f"policy.min_firmware: {exc}") from None
    for m in MECHANISMS:
        if m.check_config is not None:
            m.check_config(c.section(m.name))


def example_toml() -> str:
    """A complete, commented configuration file with every setting at its default.

    Each section is introduced by its dataclass's docstring and each key by its ``#:`` comment
    in the source (the one place a setting is documented), with its environment override.
    """
    lines = ["# attest verifier node configuration (all settings shown at their defaults)", ""]
    for name, section in NodeConfig().sections().items():
        kind = type(section)
        doc = (kind.__doc__ or "").strip()
        if doc and not doc.startswith(kind.__name__ + "("):  # not the dataclass's own repr
            lines += [f"# {_plain(line)}".rstrip() for line in doc.split("\n\n")[0].splitlines()]
        lines.append(f"[{name}]")
        docs = field_docs(kind)
        for f in dataclasses.fields(section):
            lines += [f"# {_plain(line)}" for line in docs.get(f.name, [])]
            lines.append(f"# env: {env_name(name, f.name)}")
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)


def field_docs(kind: type) -> dict[str, list[str]]:
    """Field name → the lines of its ``#:`` comment in the class source (none if unreadable)."""
    try:
        source = inspect.getsource(kind)
    except (OSError, TypeError):  # no source shipped: the file is still complete without docs
        return {}
    docs: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("#:"):
            pending.append(text[2:].strip())
            continue
        match = re.match(r"(\w+)\s*:", text)
        if match and pending:
            docs[match.group(1)] = pending
        pending = []
    return docs


def _plain(text: str) -> str:
    """Docstring markup as a reader of a TOML comment wants it: ``x`` becomes `x`."""
    return re.sub(r"``([^`]+)``", r"`\1`", text.strip())


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string for these values
    if isinstance(value, int) and abs(value) >= 1_000_000:
        return f"{value:_}"  # TOML integers may group digits: 1_000_000_000_000_000_000
    return repr(value)
