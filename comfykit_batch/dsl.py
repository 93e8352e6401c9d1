"""The parameter DSL that lives in each node's ``_meta.title``.

A title is split on ``,``; every part that starts with ``$`` is a marker:
``$[~]name[.[~]field][!][:description]``. ``!`` makes the parameter required,
``~`` marks a value that is a file to upload first, a missing ``.field`` means
the field has the parameter's own name, and ``$output.NAME`` names the node's
outputs. This module only parses; ``workflow`` applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import WorkflowError

_MARKER = re.compile(
    r"""^\$
    (?P<name_up>~?)(?P<name>[^.!:~\s]+)
    (?:\.(?P<field_up>~?)(?P<field>[^.!:~\s]+))?
    (?P<required>!?)
    (?::(?P<description>.*))?$""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class ParamMarker:
    """``$name.field!`` on one node."""

    name: str
    field: str
    required: bool
    upload: bool
    description: str | None = None


@dataclass(frozen=True)
class OutputMarker:
    """``$output.NAME``: this node's outputs are grouped under NAME."""

    name: str


Marker = ParamMarker | OutputMarker


def parse_title(title: str, node_id: str = "?") -> list[Marker]:
    """Every marker in one node title, in order; plain words are ignored."""
    markers: list[Marker] = []
    for part in title.split(","):
        part = part.strip()
        if not part.startswith("$"):
            continue
        m = _MARKER.match(part)
        if not m:
            raise WorkflowError(
                f"node {node_id}: cannot read the parameter marker {part!r} in title {title!r} "
                "(expected $name, $name.field, $~name, $name.~field, with optional ! and :description)"
            )
        name, field = m["name"], m["field"]
        description = (m["description"] or "").strip() or None
        if name == "output" and field and not m["name_up"] and not m["field_up"]:
            markers.append(OutputMarker(field))
            continue
        markers.append(
            ParamMarker(
                name=name,
                field=field or name,
                required=bool(m["required"]),
                upload=bool(m["name_up"] or m["field_up"]),
                description=description,
            )
        )
    return markers
