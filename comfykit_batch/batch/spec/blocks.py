"""A sweep block as typed data: its axes, fixed parameters, exclude rules, repeat and workflows, read once.

``load_manifest`` makes one ``Block`` per block of ``sweep:``; the sweep, its count, the plan and the checks
of swept values read its parts, never the dict. A block stays a read-only mapping of what it was made
from (value files read, repeated values folded): the sweep's signature is that mapping's ``repr``, so it
must be at hand, and a library caller reading ``manifest.blocks[0]["grid"]`` keeps working.

A block's keys are spelt here (the ones that are not axes) and in ``axes`` (each kind its own section),
nowhere else; the functions on a block as written (``named_mappings``, ``read_files``, ``problems``,
``fold_repeats``, ``listed_values``) go through every kind, so a new kind needs nothing here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .axes import KINDS, Axis, Fold
from .ids import canonical
from .manifest_text import Context, Path_
from .value_files import one_value_in

FIXED, RULES, REPEAT, WORKFLOW = "params", "exclude", "repeat", "workflow"


@dataclass(frozen=True, eq=False, repr=False)
class Block(Mapping[str, Any]):
    """One sweep block: the product of ``axes`` over the ``fixed`` parameters, times ``repeat``, minus ``rules``,
    for ``workflows`` (None: every workflow). As a mapping, it is the block as written (``raw``)."""

    raw: Mapping[str, Any]
    axes: tuple[Axis, ...]
    fixed: Mapping[str, Any]
    rules: tuple[Mapping[str, Any], ...]
    repeat: int
    workflows: tuple[str, ...] | None

    @classmethod
    def of(cls, block: Mapping[str, Any]) -> Block:
        """The typed block of a block as written (value files read, schema-valid); a ``Block`` as it is."""
        if isinstance(block, Block):
            return block
        raw = dict(block)
        axes = tuple(axis for kind in KINDS if raw.get(kind.section) for axis in kind.parse(raw[kind.section]))
        return cls(raw, axes, dict(raw.get(FIXED) or {}), tuple(raw.get(RULES) or ()), raw.get(REPEAT, 1), workflows_of(raw))

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __repr__(self) -> str:
        return f"Block({self.raw!r})"

    @property
    def size(self) -> int:
        """Combinations before ``exclude``, for one workflow and one repeat: arithmetic, instant for any size."""
        return math.prod(axis.size for axis in self.axes)

    @property
    def names(self) -> tuple[str, ...]:
        """Every parameter name the block sets, in the order written."""
        return tuple(dict.fromkeys(itertools.chain(self.fixed, *(axis.names for axis in self.axes))))

    @property
    def sampled(self) -> bool:
        """Whether any axis draws with Python's ``random`` (see ``Sweep.signature``)."""
        return any(axis.sampled for axis in self.axes)

    def shapes(self) -> list[frozenset[str]]:
        """The sets of parameter names the block's jobs have (several where combinations set different names)."""
        fixed = frozenset(self.fixed)
        return list(dict.fromkeys(fixed.union(*shape) for shape in itertools.product(*(a.shapes() for a in self.axes))))

    def swept(self) -> Iterator[tuple[str, Any, Path_]]:
        """(parameter, value, key path in the block) for every value the block can give (a range: its ends)."""
        yield from ((name, value, (FIXED, name)) for name, value in self.fixed.items())
        for axis in self.axes:
            yield from axis.swept()

    def may_repeat(self) -> bool:
        """Whether two combinations could make the same parameters: an axis that may repeat itself, or a parameter
        set by two axes (the later hides the earlier's values)."""
        names = [name for axis in self.axes for name in axis.names]
        return len(names) != len(set(names)) or any(axis.may_repeat(self.fixed) for axis in self.axes)

    def domain(self) -> dict[str, set[str] | None]:
        """Every value (canonical JSON) each parameter may take; None where a range makes them too many to list."""
        out: dict[str, set[str] | None] = {name: {canonical(value)} for name, value in self.fixed.items()}
        for axis in self.axes:
            out.update(dict.fromkeys(axis.ranged))
            for name, value, _ in axis.swept():
                known = out.setdefault(name, set())
                if known is not None:
                    known.add(canonical(value))
        return out


def workflows_of(block: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The workflows a block as written names (None: every workflow)."""
    named = block.get(WORKFLOW)
    return None if named is None else (named,) if isinstance(named, str) else tuple(named)


def swept_names(blocks: Iterable[Block]) -> list[str]:
    """Every parameter name the sweep sets, in the order first written."""
    return list(dict.fromkeys(name for block in blocks for name in block.names))


# -- a block as written, before it is typed --------------------------------------------------------------
def _sections(block: Mapping[str, Any]) -> Iterator[tuple[type[Axis], Any]]:
    """(kind, section) for each axis section the block writes (an empty one makes no axis)."""
    return ((kind, block[kind.section]) for kind in KINDS if block.get(kind.section))


def named_mappings(block: Mapping[str, Any]) -> Iterator[tuple[Path_, Any]]:
    """(key path, mapping) for every mapping whose keys are parameter names: fixed ones, each kind's, each rule."""
    yield (FIXED,), block.get(FIXED)
    for kind in KINDS:
        if kind.section in block:
            yield from kind.named(block[kind.section])
    yield from (((RULES, i), rule) for i, rule in enumerate(block.get(RULES) or []))


def read_files(block: Mapping[str, Any], where: Path_, ctx: Context) -> dict[str, Any]:
    """The block with every ``{from: FILE}`` replaced by the values it holds, so the sweep sees plain lists."""
    out = dict(block)
    if block.get(FIXED):
        out[FIXED] = {k: one_value_in(v, (*where, FIXED, k), ctx) for k, v in block[FIXED].items()}
    for kind, section in _sections(block):
        out[kind.section] = kind.read_files(section, where, ctx)
    return out


def problems(block: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    """(key path, message) for what the schema cannot say is wrong with a block's axes (value files read)."""
    for kind, section in _sections(block):
        yield from kind.problems(section)


def fold_repeats(block: Mapping[str, Any], fold: Fold) -> dict[str, Any]:
    """The block with each value repeated within one axis left out (the first kept): one distinct combination is
    one job, and two jobs with one id would run at once."""
    out = dict(block)
    for kind, section in _sections(block):
        out[kind.section] = kind.fold(section, fold)
    return out


def listed_values(block: Any) -> Iterator[tuple[Any, Any]]:
    """(parameter, value) in the order a block of a manifest's YAML lists them, read as written (no schema, no
    environment, no value files): for ordering a report's records as the manifest orders its values."""
    if not isinstance(block, dict):
        return
    fixed = block.get(FIXED)
    yield from fixed.items() if isinstance(fixed, dict) else ()
    for kind in KINDS:
        yield from kind.listed(block.get(kind.section))
