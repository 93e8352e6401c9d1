"""The kinds of sweep axis, each stated once: its section of a block, how it is read, what it sets.

A block is a product of axes (``blocks.Block``); an axis is one dimension of that product: ``size``
combinations, the ``i``-th setting the parameters ``value(i)``, shown in the plan as ``label``. The jobs,
the count, the checks of swept values, the plan and the fold of repeated values all read a sweep through
this one interface, so a new sweep kind is one class here, added to ``KINDS`` (whose order is the order of
a block's axes, slowest-varying first), plus its entry in the manifest schema.

A kind's class methods read its section as the manifest writes it (one section may make several axes: a
grid makes one per key); an instance is one axis, made once when the manifest loads. Key paths a kind
gives are relative to its block and start with its section, so no other module spells a section's name.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from .ids import repeats
from .manifest_text import Context, Path_
from .value_files import cases_in, is_value_file, values_in

#: ``fold(items, path)``: ``items`` without repeated values (the first kept), noting ``path`` where any were
Fold = Callable[[list[Any], Path_], list[Any]]


class Axis(ABC):
    """One dimension of a block: ``size`` combinations; combination ``i`` sets the parameters ``value(i)``."""

    #: the block's key this kind is written under
    section: ClassVar[str]
    #: drawn with Python's ``random``, whose methods may change between Python versions (see ``Sweep.signature``)
    sampled: ClassVar[bool] = False

    label: str
    #: the parameters it sets, in the order written
    names: tuple[str, ...]
    size: int
    #: parameters whose values are a range too wide to list (``swept`` gives its ends)
    ranged: frozenset[str] = frozenset()

    @abstractmethod
    def value(self, i: int) -> dict[str, Any]:
        """The parameters combination ``i`` sets (a new dict: the caller may keep it)."""

    @abstractmethod
    def swept(self) -> Iterator[tuple[str, Any, Path_]]:
        """(parameter, value, key path) for every value the axis can give, so each is checked before the first job;
        a range gives its two ends."""

    @abstractmethod
    def may_repeat(self, fixed: Mapping[str, Any]) -> bool:
        """Whether two of its combinations could make the same parameters (over the block's ``fixed`` ones)."""

    def shapes(self) -> list[frozenset[str]]:
        """The sets of names its combinations set: one, unless combinations differ in the names they set."""
        return [frozenset(self.names)]

    @classmethod
    @abstractmethod
    def parse(cls, section: Any) -> list[Axis]:
        """The axes a section makes (files read, repeats folded, checked against the schema)."""

    @classmethod
    def named(cls, section: Any) -> Iterator[tuple[Path_, Any]]:
        """(key path, mapping) for each mapping of the section whose keys are parameter names, which must be text."""
        return iter(())

    @classmethod
    def read_files(cls, section: Any, where: Path_, ctx: Context) -> Any:
        """The section with each ``{from: FILE}`` it allows replaced by the file's values (``where`` is the block's path)."""
        return section

    @classmethod
    def problems(cls, section: Any) -> Iterator[tuple[Path_, str]]:
        """(key path, message) for what the schema cannot say is wrong (files already read)."""
        return iter(())

    @classmethod
    def fold(cls, section: Any, fold: Fold) -> Any:
        """The section with each value repeated within one axis left out, so one combination is one job."""
        return section

    @classmethod
    def listed(cls, section: Any) -> Iterator[tuple[Any, Any]]:
        """(parameter, value) in the order the YAML lists them, for ordering a report's records; read as written
        (no schema, no environment), so a part of unexpected shape gives nothing, or itself as one value."""
        return iter(())


class _Lists(Axis):
    """A section written as parameter name -> list of values (each list may be read from a file)."""

    @classmethod
    def named(cls, section: Any) -> Iterator[tuple[Path_, Any]]:
        yield (cls.section,), section

    @classmethod
    def read_files(cls, section: Any, where: Path_, ctx: Context) -> Any:
        return {k: values_in(v, (*where, cls.section, k), ctx) for k, v in section.items()}

    @classmethod
    def listed(cls, section: Any) -> Iterator[tuple[Any, Any]]:
        for name, values in section.items() if isinstance(section, dict) else ():
            for v in values if isinstance(values, list) else [values]:
                yield name, v


class Grid(_Lists):
    """One axis per key of ``grid``, the first key varying slowest."""

    section = "grid"

    def __init__(self, name: str, values: list[Any]) -> None:
        self.name, self.list = name, values
        self.label, self.names, self.size = f"{self.section}.{name}", (name,), len(values)

    def value(self, i: int) -> dict[str, Any]:
        return {self.name: self.list[i]}

    def swept(self) -> Iterator[tuple[str, Any, Path_]]:
        return ((self.name, v, (self.section, self.name)) for v in self.list)

    def may_repeat(self, fixed: Mapping[str, Any]) -> bool:
        return repeats(self.list)

    @classmethod
    def parse(cls, section: Any) -> list[Axis]:
        return [cls(name, values) for name, values in section.items()]

    @classmethod
    def fold(cls, section: Any, fold: Fold) -> Any:
        return {k: fold(v, (cls.section, k)) for k, v in section.items()}


class Zip(_Lists):
    """The lists of ``zip`` advanced together: the i-th values of every list form one combination."""

    section = "zip"

    def __init__(self, zipped: Mapping[str, list[Any]]) -> None:
        self.zipped = zipped
        self.names = tuple(zipped)
        self.label, self.size = f"{self.section}({', '.join(self.names)})", len(next(iter(zipped.values())))

    def value(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.zipped.items()}

    def swept(self) -> Iterator[tuple[str, Any, Path_]]:
        return ((name, v, (self.section, name)) for name, values in self.zipped.items() for v in values)

    def may_repeat(self, fixed: Mapping[str, Any]) -> bool:
        return repeats(zip(*self.zipped.values(), strict=False))

    @classmethod
    def parse(cls, section: Any) -> list[Axis]:
        return [cls(section)]

    @classmethod
    def read_files(cls, section: Any, where: Path_, ctx: Context) -> Any:
        if not is_value_file(section):
            return super().read_files(section, where, ctx)
        rows = cases_in(section, (*where, cls.section), ctx, keep_empty=True)
        return {k: [r.get(k) for r in rows] for k in rows[0]}

    @classmethod
    def problems(cls, section: Any) -> Iterator[tuple[Path_, str]]:
        if len({len(v) for v in section.values()}) > 1:
            yield (cls.section,), f"lists must have equal lengths ({', '.join(f'{k}={len(v)}' for k, v in section.items())})"

    @classmethod
    def fold(cls, section: Any, fold: Fold) -> Any:
        rows = [list(r) for r in zip(*section.values(), strict=True)]
        kept = fold(rows, (cls.section,))
        return section if kept is rows else {k: [r[i] for r in kept] for i, k in enumerate(section)}


class Cases(Axis):
    """``cases``: explicit combinations, each a mapping of its own names."""

    section = "cases"
    label = section

    def __init__(self, cases: list[Mapping[str, Any]]) -> None:
        self.cases = cases
        self.names, self.size = tuple(dict.fromkeys(k for case in cases for k in case)), len(cases)

    def value(self, i: int) -> dict[str, Any]:
        return dict(self.cases[i])

    def swept(self) -> Iterator[tuple[str, Any, Path_]]:
        return ((name, v, (self.section, i, name)) for i, case in enumerate(self.cases) for name, v in case.items())

    def may_repeat(self, fixed: Mapping[str, Any]) -> bool:
        return repeats({**fixed, **case} for case in self.cases)

    def shapes(self) -> list[frozenset[str]]:
        return [frozenset(case) for case in self.cases]

    @classmethod
    def parse(cls, section: Any) -> list[Axis]:
        return [cls(section)]

    @classmethod
    def named(cls, section: Any) -> Iterator[tuple[Path_, Any]]:
        for i, case in enumerate(section if isinstance(section, list) else []):
            yield (cls.section, i), case

    @classmethod
    def read_files(cls, section: Any, where: Path_, ctx: Context) -> Any:
        return cases_in(section, (*where, cls.section), ctx)

    @classmethod
    def fold(cls, section: Any, fold: Fold) -> Any:
        return fold(section, (cls.section,))

    @classmethod
    def listed(cls, section: Any) -> Iterator[tuple[Any, Any]]:
        for case in section if isinstance(section, list) else ():
            yield from case.items() if isinstance(case, dict) else ()


def int_range(p: Mapping[str, Any]) -> bool:
    """A random parameter's ``range`` draws integers: both ends are, unless ``type: float`` says otherwise."""
    lo, hi = p["range"]
    return p.get("type", "int" if isinstance(lo, int) and isinstance(hi, int) else "float") == "int"


class Random(Axis):
    """``random``: ``samples`` reproducible draws; sample i depends only on the seed and i."""

    section = "random"
    sampled = True

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.seed, self.params = spec.get("seed", 0), spec["params"]
        self.names, self.size = tuple(self.params), spec["samples"]
        self.label = f"{self.section}({', '.join(sorted(self.params))})"
        self.ranged = frozenset(name for name, p in self.params.items() if "choice" not in p)

    def value(self, i: int) -> dict[str, Any]:
        rng = random.Random(f"{self.seed}/{i}")  # sample i does not depend on samples before it
        out: dict[str, Any] = {}
        for name in sorted(self.params):
            p = self.params[name]
            if "choice" in p:
                out[name] = rng.choice(p["choice"])
            else:
                lo, hi = p["range"]
                out[name] = rng.randint(int(lo), int(hi)) if int_range(p) else rng.uniform(lo, hi)
        return out

    def swept(self) -> Iterator[tuple[str, Any, Path_]]:
        return ((name, v, (self.section, "params", name))
                for name, p in self.params.items() for v in p.get("choice") or p.get("range") or [])

    def may_repeat(self, fixed: Mapping[str, Any]) -> bool:
        """Samples may coincide, unless one parameter is drawn from a float range: 53 random bits, never in practice."""
        floats = any("range" in p and not int_range(p) and p["range"][0] < p["range"][1] for p in self.params.values())
        return self.size >= 2 and not floats

    @classmethod
    def parse(cls, section: Any) -> list[Axis]:
        return [cls(section)]

    @classmethod
    def named(cls, section: Any) -> Iterator[tuple[Path_, Any]]:
        yield (cls.section, "params"), section.get("params") if isinstance(section, dict) else None

    @classmethod
    def problems(cls, section: Any) -> Iterator[tuple[Path_, str]]:
        for name, p in (section.get("params") or {}).items():
            if "range" in p and p["range"][0] > p["range"][1]:
                yield (cls.section, "params", name, "range"), "expected [low, high] with low <= high"


class Seeds(Axis):
    """``seeds``: one parameter's explicit seeds, or ``count`` seeds from ``base``."""

    section = "seeds"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.param, self.list = spec["param"], spec.get("values") or None
        self.base, self.names, self.label = spec.get("base", 0), (self.param,), f"{self.section}.{self.param}"
        self.size = len(self.list) if self.list else spec["count"]
        self.ranged = frozenset() if self.list else frozenset(self.names)

    def value(self, i: int) -> dict[str, Any]:
        return {self.param: self.list[i] if self.list else self.base + i}

    def swept(self) -> Iterator[tuple[str, Any, Path_]]:
        ends = self.list or [self.base, self.base + self.size - 1]
        return ((self.param, v, (self.section,)) for v in ends)

    def may_repeat(self, fixed: Mapping[str, Any]) -> bool:
        return repeats(self.list or [])

    @classmethod
    def parse(cls, section: Any) -> list[Axis]:
        return [cls(section)]

    @classmethod
    def fold(cls, section: Any, fold: Fold) -> Any:
        if not section.get("values"):
            return section
        return {**section, "values": fold(section["values"], (cls.section, "values"))}

    @classmethod
    def listed(cls, section: Any) -> Iterator[tuple[Any, Any]]:
        if not isinstance(section, dict):
            return
        values = section.get("values")
        count, base = section.get("count"), section.get("base", 0)
        if not isinstance(values, list) and isinstance(count, int) and isinstance(base, int):
            values = range(base, base + min(count, 100_000))
        for v in values if isinstance(values, (list, range)) else ():
            yield section.get("param", "seed"), v


#: every kind of axis, in the order a block's axes vary (the first slowest): the one list of sections that are axes
KINDS: tuple[type[Axis], ...] = (Grid, Zip, Cases, Random, Seeds)


__all__ = ["KINDS", "Axis", "Cases", "Fold", "Grid", "Random", "Seeds", "Zip", "int_range"]
