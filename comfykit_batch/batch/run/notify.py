"""Webhooks: tell someone how a batch left overnight ended, without ever slowing the batch down.

A ``Notifier`` is made from the manifest's ``notify:`` section. The runner hands it each finished job's
index record (``job``) and, once, how the run ended (``run_ended``); the session closes it (``close``).
Those calls only put a small payload on a queue: one background thread POSTs them, so a receiver that
is slow, down or hanging costs the batch nothing. Job events beyond ``Delivery.queue`` waiting are dropped
(with a warning); run events are never dropped.

Each delivery is JSON signed like GitHub's webhooks (``X-ComfyKit-Signature: sha256=<HMAC-SHA256 of the raw
body>``), retried with doubling waits after a connection error, a 5xx or a 429, within a few attempts and
a total time. A redirect is a failure, never followed: the signature goes only to the configured host.
No credential reaches a payload or a log line: every string of a payload loses the manifest's secrets (as
is, percent- and base64-encoded) and URL queries, and a log line names the webhook's host, the event and
an HTTP status or a few fixed words, never text a server or an exception sent (it could echo the secret).

Talking HTTP here, with the standard library, keeps the executors (the code that talks to ComfyUI and
RunningHub) out of the batch's reporting: a webhook is not a backend.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, quote_plus

from ...result import FAILURE_KINDS, Failure
from ...uploads import redact_urls_in_text
from ..spec.location import display_url
from ..spec.notify import RUN_EVENTS, NotifySpec
from .stall import Stall

if TYPE_CHECKING:
    from ..spec.manifest import Manifest

logger = logging.getLogger("comfykit_batch.notify")

SIGNATURE_HEADER = "X-ComfyKit-Signature"
USER_AGENT = "comfykit-batch-webhook"
#: run events list at most this many of the run's last failed jobs (a run payload stays small)
LAST_FAILURES = 5
#: an error message in a payload is cut here (a traceback never goes)
MESSAGE_CHARS = 500
#: a secret shorter than this is not scrubbed (it would mangle ordinary words)
MIN_SECRET = 4
#: what a run event takes from ``run_ended``'s summary as it is, beside counts, failures and duration
PASSED_ON = ("stalled", "interrupted", "exit_code", "shard", "test")
#: how much of a receiver's answer is read (and thrown away) so the connection closes cleanly
ANSWER_BYTES = 64 << 10

#: ``post(url, body, headers, timeout) -> HTTP status``; raises ``OSError`` (or ``http.client.HTTPException``)
#: when no HTTP answer came. Tests pass their own.
Post = Callable[[str, bytes, Mapping[str, str], float], int]


@dataclass(frozen=True)
class Delivery:
    """How hard one event is tried: a webhook that keeps failing must cost the batch nothing."""

    attempts: int = 4
    backoff: float = 1.0  # the first wait between attempts (seconds), doubling after each
    total: float = 60.0  # one event's attempts and waits end within this
    request_timeout: float = 5.0  # connect and each read
    queue: int = 256  # job events waiting at most; more are dropped (run events never are)


@dataclass(frozen=True)
class Outcome:
    """What became of one event: the receiver's HTTP status (None: no answer) and the attempts made."""

    event: str
    status: int | None
    reason: str
    attempts: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def described(self) -> str:
        """``HTTP 500``, ``HTTP 302 (a redirect, not followed)`` or the few words of a failed connection."""
        return _described(self.status, self.reason)


@dataclass
class _Item:
    event: str
    payload: dict[str, Any]
    job: bool


class SummaryLike(Protocol):
    """The parts of the runner's ``Summary`` a run event reports (kept structural: no import of the runner)."""

    done: int
    failed: int
    skipped: int
    failed_earlier: int
    not_run: int
    interrupted: bool
    wall: float
    failures: dict[str, int]
    stalled: Stall | None

    @property
    def exit_code(self) -> int: ...


# -- HTTP ------------------------------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into its 3xx answer: following it would sign a body for another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` and return the HTTP status, whatever it is (a 3xx included: never followed)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(ANSWER_BYTES)
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


#: a failed attempt's words for the log, by exception type (the first row that matches; never the exception's text)
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (TimeoutError, "timed out"),
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (ssl.SSLError, "TLS error"),
    (socket.gaierror, "unknown host"),
    (http.client.HTTPException, "not an HTTP answer"),
    (OSError, "could not connect"),
)


def _reason(exc: BaseException) -> str:
    """A few fixed words for a failed attempt: an exception's own text may quote what the server sent."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    return next((words for kind, words in _REASONS if isinstance(exc, kind)), type(exc).__name__)


def _retryable(status: int | None) -> bool:
    """No answer, a 5xx or a 429 may pass on a later attempt; any other answer will not."""
    return status is None or status == 429 or status >= 500


def _described(status: int | None, reason: str) -> str:
    if status is None:
        return reason
    return f"HTTP {status} (a redirect, not followed)" if 300 <= status < 400 else f"HTTP {status}"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the raw body with the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- secrets ---------------------------------------------------------------------------------------------
def _forms(secret: str) -> set[str]:
    """The forms a secret may be echoed in: as is, percent-encoded, base64-encoded (padded or not)."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    for whole in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {whole, whole.rstrip("=")}
    return forms


class Scrubber:
    """Takes every secret (in each of its ``_forms``) and every URL query out of a payload's text."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        found = {f for s in secrets if s and len(s) >= MIN_SECRET for f in _forms(s)}
        self._forms = sorted(found, key=len, reverse=True)  # longest first: a secret containing another

    def text(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, "***")
        return redact_urls_in_text(text)

    def __call__(self, node: Any) -> Any:
        """``node`` rebuilt with every string (keys too) scrubbed; numbers and booleans as they are."""
        if isinstance(node, str):
            return self.text(node)
        if isinstance(node, Mapping):
            return {self.text(str(k)): self(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [self(v) for v in node]
        return node


def manifest_secrets(manifest: Manifest) -> Iterator[str]:
    """Every credential a manifest holds: backends' API keys and cookies (each cookie value too), the webhook's secret."""
    for backend in manifest.backends:
        yield from (s for s in (backend.api_key, backend.cookies) if s)
        for pair in (backend.cookies or "").split(";"):
            yield pair.partition("=")[2].strip()
    if manifest.notify is not None and manifest.notify.secret:
        yield manifest.notify.secret


# -- payloads --------------------------------------------------------------------------------------------
def _error(error: Any) -> dict[str, Any] | None:
    """A failed job's error as a payload shows it: kind, node, a cut message; never a traceback."""
    if not isinstance(error, Mapping):
        return None
    out = {k: error[k] for k in ("kind", "node_id", "node_type", "exception_type", "transient") if error.get(k) is not None}
    out["message"] = str(error.get("message") or "")[:MESSAGE_CHARS]
    return out


def _reason_of(error: Mapping[str, Any] | None) -> str:
    """The key a failure is counted under, as the run's summary counts it (``Failure.reason``)."""
    if not error or error.get("kind") not in FAILURE_KINDS:
        return str((error or {}).get("kind") or "unknown")
    return Failure(error["kind"], str(error.get("message") or ""), node_id=error.get("node_id"),
                   node_type=error.get("node_type"), exception_type=error.get("exception_type")).reason


def job_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """A finished job as a job event shows it: id, params, status, its files (path, sha256), its error."""
    files = [{k: f.get(k) for k in ("var", "path", "sha256")} for f in record.get("files") or [] if isinstance(f, Mapping)]
    view = {k: record.get(k) for k in ("id", "workflow", "params", "status", "backend", "attempts", "duration")}
    return {**view, "files": files, "error": _error(record.get("error"))}


def run_counts(summary: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(summary.get(k) or 0) for k in ("done", "failed", "skipped", "failed_earlier", "not_run")}


def run_event(summary: SummaryLike) -> str:
    """Which run event a summary is: stalled, failed (stopped, or any job failed or could not run), finished."""
    if summary.stalled is not None:
        return "run.stalled"
    stopped = summary.interrupted or summary.failed or summary.failed_earlier or summary.not_run
    return "run.failed" if stopped else "run.finished"


def run_summary(summary: SummaryLike) -> dict[str, Any]:
    """The mapping ``Notifier.run_ended`` takes, read from the runner's ``Summary``."""
    out: dict[str, Any] = {k: getattr(summary, k) for k in ("done", "failed", "skipped", "failed_earlier", "not_run")}
    out.update(failures=dict(summary.failures), duration=round(summary.wall, 3), interrupted=summary.interrupted,
               exit_code=summary.exit_code)
    if summary.stalled is not None:
        out["stalled"] = {"kind": summary.stalled.kind, "node": summary.stalled.node, "message": summary.stalled.message}
    return out


# -- the notifier ----------------------------------------------------------------------------------------
@dataclass
class _Tally:
    """What the notifier has seen of this run, for job events' running counts and run events' last failures."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    last_failed: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LAST_FAILURES))


class Notifier:
    """Sends a run's events to one webhook from a background thread (see the module's docstring).

    ``job``, ``run_ended`` and ``close`` are what the runner and the session call; none of them blocks on
    the network, and none raises for anything the webhook does. ``outcomes`` counts what became of each
    event; ``last`` is the last event's fate (what ``notify-test`` prints).
    """

    def __init__(self, spec: NotifySpec, *, batch: str, output: str, secrets: Iterable[str | None] = (),
                 delivery: Delivery | None = None, post: Post = post_json) -> None:
        self.spec, self.batch, self.output = spec, batch, display_url(output)
        self.delivery = delivery or Delivery()
        self.last: Outcome | None = None
        self.outcomes: Counter[str] = Counter()  # "delivered", "failed", "dropped"
        self._post = post
        self._scrub = Scrubber([spec.secret, *secrets])
        self._started = time.monotonic()
        self._tally = _Tally()
        self._queue: deque[_Item] = deque()
        self._waiting_jobs = 0
        self._closing = False
        self._failing = False  # the last event failed: job events get one attempt until one is delivered
        self._abandon = threading.Event()
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="comfykit-notify", daemon=True)
        self._thread.start()

    @classmethod
    def for_manifest(cls, manifest: Manifest, *, delivery: Delivery | None = None, post: Post = post_json) -> Notifier | None:
        """The manifest's notifier (None without ``notify:``), scrubbing every credential the manifest holds."""
        if manifest.notify is None:
            return None
        return cls(manifest.notify, batch=manifest.name, output=str(manifest.destination),
                   secrets=manifest_secrets(manifest), delivery=delivery, post=post)

    # -- what the runner calls --------------------------------------------------------------------------
    def job(self, record: Mapping[str, Any]) -> None:
        """A finished job's index record: counted (always), sent as job.completed/job.failed when subscribed."""
        status = record.get("status")
        event = {"completed": "job.completed", "failed": "job.failed"}.get(str(status))
        with self._cv:
            self._count(record, status)
            if event is None or not self.spec.wants(event):
                return
            payload = self._payload(event, {k: int(v) for k, v in self._tally.counts.items()})
            payload["job"] = job_view(record)
            self._put(_Item(event, payload, job=True))

    def run_ended(self, event: str, summary: Mapping[str, Any]) -> None:
        """How the run ended (``run.finished``, ``run.failed`` or ``run.stalled``); never dropped.

        A stalled run goes as ``run.failed`` to a webhook subscribed to that but not to ``run.stalled``.
        """
        if event not in RUN_EVENTS:
            raise ValueError(f"not a run event: {event!r}")
        if not self.spec.wants(event) and event == "run.stalled":
            event = "run.failed"
        if not self.spec.wants(event):
            return
        with self._cv:
            payload = self._payload(event, run_counts(summary), dict(summary.get("failures") or {}))
            payload["duration"] = summary.get("duration", payload["duration"])
            payload.update({k: summary[k] for k in PASSED_ON if summary.get(k) is not None})
            payload["last_failures"] = list(self._tally.last_failed)
            self._put(_Item(event, payload, job=False))

    def close(self, timeout: float = 10.0) -> None:
        """Wait up to ``timeout`` seconds for the events still waiting; then leave the rest (the thread is a daemon)."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandon.set()
            with self._cv:
                left = len(self._queue) + 1
            logger.warning("webhook %s: %d event(s) not delivered within %gs; left", self.spec.host, left, timeout)
        if self.outcomes["dropped"]:
            logger.warning("webhook %s: %d job event(s) dropped while the webhook was behind", self.spec.host,
                           self.outcomes["dropped"])

    # -- inside --------------------------------------------------------------------------------------------
    def _count(self, record: Mapping[str, Any], status: Any) -> None:
        self._tally.counts["done" if status == "completed" else str(status)] += 1
        if status == "failed":
            error = record.get("error") if isinstance(record.get("error"), Mapping) else None
            self._tally.failures[_reason_of(error)] += 1
            self._tally.last_failed.append({"id": record.get("id"), "params": record.get("params"), "error": _error(error)})

    def _payload(self, event: str, counts: Mapping[str, int], failures: Mapping[str, int] | None = None) -> dict[str, Any]:
        return {"event": event, "delivery": uuid.uuid4().hex, "time": round(time.time(), 3), "batch": self.batch,
                "output": self.output, "counts": dict(counts),
                "failures": dict(self._tally.failures if failures is None else failures),
                "duration": round(time.monotonic() - self._started, 3)}

    def _put(self, item: _Item) -> None:
        """Queue an event (the lock held): a job event past the queue's bound is dropped, a run event never."""
        if item.job and self._waiting_jobs >= self.delivery.queue:
            if not self.outcomes["dropped"]:
                logger.warning("webhook %s: too many job events waiting; dropping job events until it catches up", self.spec.host)
            self.outcomes["dropped"] += 1
            return
        self._waiting_jobs += item.job
        self._queue.append(item)
        self._cv.notify_all()

    def _next(self) -> _Item | None:
        with self._cv:
            while not self._queue and not self._closing:
                self._cv.wait()
            if not self._queue:
                return None
            item = self._queue.popleft()
            self._waiting_jobs -= item.job
            return item

    def _work(self) -> None:
        while (item := self._next()) is not None:
            if self._abandon.is_set():
                return
            try:
                self._deliver(item)
            except Exception:  # noqa: BLE001 - a webhook never stops a batch; the text could hold what a server sent
                logger.warning("webhook %s: %s not delivered (internal error)", self.spec.host, item.event)

    def _deliver(self, item: _Item) -> None:
        body = json.dumps(self._scrub(item.payload), default=str, separators=(",", ":")).encode()
        headers = self._headers(item, body)
        attempts = 1 if item.job and self._failing else self.delivery.attempts
        deadline = time.monotonic() + self.delivery.total
        status, reason, attempt = None, "", 0
        for attempt in range(1, attempts + 1):
            status, reason = self._attempt(body, headers)
            if not _retryable(status) or attempt == attempts:
                break
            delay = self.delivery.backoff * 2 ** (attempt - 1)
            logger.debug("webhook %s: %s attempt %d: %s; again in %gs", self.spec.host, item.event, attempt,
                          _described(status, reason), delay)
            if time.monotonic() + delay > deadline or self._abandon.wait(delay):
                break
        self._done(Outcome(item.event, status, reason, attempt), job=item.job)

    def _headers(self, item: _Item, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-ComfyKit-Event": item.event,
                   "X-ComfyKit-Delivery": str(item.payload["delivery"])}
        if self.spec.secret:
            headers[SIGNATURE_HEADER] = signature(self.spec.secret, body)
        return headers

    def _attempt(self, body: bytes, headers: Mapping[str, str]) -> tuple[int | None, str]:
        try:
            return self._post(self.spec.url, body, headers, self.delivery.request_timeout), ""
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return None, _reason(exc)

    def _done(self, outcome: Outcome, *, job: bool) -> None:
        """Record an event's fate; a failure is a warning (once while the webhook keeps failing job events)."""
        self.last = outcome
        if outcome.ok:
            self.outcomes["delivered"] += 1
            self._failing = False
            logger.debug("webhook %s: %s delivered (HTTP %s)", self.spec.host, outcome.event, outcome.status)
            return
        self.outcomes["failed"] += 1
        log = logger.debug if job and self._failing else logger.warning
        log("webhook %s: %s not delivered (%s, %d attempt(s)); the batch goes on", self.spec.host, outcome.event,
            outcome.described, outcome.attempts)
        self._failing = True
