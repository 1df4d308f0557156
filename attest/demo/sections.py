"""Optional demo sections contributed by mechanisms (Offline Licensing, Fixed Set ...).

A section module defines ``SECTION``, an object with a ``name``, an async ``run(world, nodes)``
returning a :class:`SectionResult`, and ``render(console, result)`` for the human summary. The
demo runs every available section after the fleet phase, while the nodes are still up; a
section's attacks join the demo's ``attacks`` list and its summary appears under its name in
the JSON output.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.console import Console

from attest.demo.world import RunningNode, World

#: modules that may provide a section, in the order they run
SECTION_MODULES = (
    "attest.demo.licensing",
    "attest.demo.pods",
    "attest.demo.location",
    "attest.demo.federation",
)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 chip", "3 chips": what a person reads in a summary line."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def listing(counts: Mapping[str, Any]) -> str:
    """A mapping as "A 1, B 12" (not a Python dict repr); "none" if empty."""
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


@dataclass
class SectionResult:
    #: JSON-ready summary, shown under the section's name
    summary: dict[str, Any] = field(default_factory=dict)
    #: entries like {"name", "expected_reason", "detected", ...}
    attacks: list[dict[str, Any]] = field(default_factory=list)
    #: verdict tiers of the sessions the section ran ("affirming": n, ...)
    verdicts: dict[str, int] = field(default_factory=dict)
    #: False if honest behaviour in the section did not come out as expected
    ok: bool = True
    errors: list[str] = field(default_factory=list)


class Section(Protocol):
    name: str

    async def run(self, world: World, nodes: list[RunningNode]) -> SectionResult: ...

    def render(self, console: Console, result: SectionResult) -> None: ...


def available_sections() -> list[Section]:
    sections = []
    for name in SECTION_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        sections.append(module.SECTION)
    return sections
