"""How long the jobs left will take: one rule, shared by the live progress line and ``status``.

Both displays measure a rate their own way (the live line since its run's first dispatch, ``status``
over the last minutes of records) and turn it into an ETA here, so the two never disagree on the
arithmetic or on how an ETA is written. Pure: no clock, no I/O.
"""

from __future__ import annotations

UNKNOWN = "--:--"


def eta(left: int, rate: float) -> float | None:
    """Seconds until ``left`` jobs are finished at ``rate`` jobs/s; 0 when none is left; None while nothing finishes."""
    if left <= 0:
        return 0.0
    return left / rate if rate > 0 else None


def format_duration(seconds: float | None) -> str:
    """``12:05`` or ``3:12:05`` (hours grow past 24: an overnight ETA reads as hours); ``--:--`` when unknown."""
    if seconds is None:
        return UNKNOWN
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes:02}:{secs:02}"
