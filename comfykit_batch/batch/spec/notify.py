"""The manifest's ``notify:`` section: where a batch left overnight reports, and what it reports.

Typed once here so the run room reads a ``NotifySpec``, never the document. The URL and the signing
secret usually come from ``${VAR}``; neither is ever shown in a ``repr`` (a webhook's path often is its
token, as with chat services), and ``host`` is the only form of the URL a message may name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: every event a webhook may subscribe to, in the order a run sends them
EVENTS = ("job.completed", "job.failed", "run.finished", "run.failed", "run.stalled")
RUN_EVENTS = ("run.finished", "run.failed", "run.stalled")
JOB_EVENTS = ("job.completed", "job.failed")
#: what a ``notify:`` without ``events:`` subscribes to: how each run ended, never each job
DEFAULT_EVENTS = RUN_EVENTS


@dataclass(frozen=True)
class NotifySpec:
    """One webhook: its URL, the secret its deliveries are signed with (none: unsigned), its events."""

    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    events: tuple[str, ...] = DEFAULT_EVENTS

    @property
    def host(self) -> str:
        """``scheme://host[:port]``: the URL as a log line may show it (its path and query may be the token)."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}"

    def wants(self, event: str) -> bool:
        return event in self.events


def parse_notify(section: Mapping[str, Any] | None) -> NotifySpec | None:
    """The typed spec of a ``notify:`` section already checked against the schema (events kept once each)."""
    if not section:
        return None
    events = tuple(dict.fromkeys(section.get("events") or DEFAULT_EVENTS))
    return NotifySpec(url=str(section["url"]), secret=section.get("secret") or None, events=events)
