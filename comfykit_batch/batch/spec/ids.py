"""Job ids and the canonical JSON they are made of.

An id names one job across runs and machines: the workflow's content, the resolved parameters and
the repeat, hashed. Every output folder depends on ids never changing, so the JSON they hash is
pinned byte for byte (``canonical``), and the same canonical JSON decides when two values are one
(``distinct``): a repeated value is one only if it would make the same id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def compact_json(*, sort_keys: bool) -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, default=str)``, the
    same output byte for byte, with its encoder made once: ``json.dumps`` builds a ``JSONEncoder`` per call,
    which builds a C encoder per call, about 1 us of a 2 us job id.
    """
    plain = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False, default=str)
    return _c_encoder(plain, sort_keys) or plain.encode


def _c_encoder(plain: json.JSONEncoder, sort_keys: bool) -> Callable[[Any], str] | None:
    """The C encoder ``plain`` would make at each call, made once; None when this Python has none, or
    calls it otherwise. It does not look for a value that contains itself (one recurses until
    ``RecursionError`` instead of raising ``ValueError``)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        chunks = make(None, str, json.encoder.encode_basestring, None, ":", ",", sort_keys, False, True)

        def encode(value: Any) -> str:
            if isinstance(value, str):
                return plain.encode(value)
            return "".join(chunks(value, 0))

        sample = {"b": [1.5, None, True, "\u00e9\n"], "a": {"c": 10**20}}
        return encode if encode(sample) == plain.encode(sample) else None
    except TypeError:
        return None


canonical = compact_json(sort_keys=True)


def job_id(fingerprint: str, params: Mapping[str, Any], repeat: int) -> str:
    """Same workflow content + same resolved parameters + same repeat = same id, across runs."""
    blob = f"{fingerprint}\n{canonical(params)}\n{repeat}"
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def distinct(items: Iterable[T]) -> list[T]:
    """``items`` with each repeat left out (the first kept): two items are one when their canonical JSON is,
    as their share of a job id is."""
    seen: set[str] = set()
    out: list[T] = []
    for item in items:
        key = canonical(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def repeats(items: Iterable[Any]) -> bool:
    """Whether two of ``items`` are one (see ``distinct``)."""
    listed = list(items)
    return len(distinct(listed)) < len(listed)
