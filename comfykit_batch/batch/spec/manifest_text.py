"""Reading a manifest's text, and every message about it: key paths, "did you mean", secrets kept out.

``Context`` carries the file being read, where ``${VAR}`` was filled in and the
secret values no message may contain; every ``ManifestError`` is made by
``Context.error`` so it passes through one redaction step. YAML errors give the
line, the column, the line itself with a caret, and a hint for the usual causes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from ...errors import ManifestError
from ...uploads import redact_url, redact_urls_in_text

#: a key path inside the document: keys and list indices
Path_ = tuple[Any, ...]
#: keys whose values (and everything under them) are secrets
SECRET_KEY = re.compile(r"api_?key|cookie|token|secret|passw|(?:^|_)key$", re.IGNORECASE)


def key_path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def did_you_mean(name: str, choices: Any) -> str:
    """`` (did you mean 'grid'?)`` when ``name`` looks like a typo of one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- secrets and error messages -----------------------------------------------------------------
def is_secret_path(where: Path_) -> bool:
    return any(isinstance(p, str) and SECRET_KEY.search(p) for p in where)


def secret_values(node: Any, where: Path_ = ()) -> Iterator[str]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from secret_values(v, (*where, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from secret_values(v, (*where, i))
    elif node is not None and is_secret_path(where) and len(str(node)) >= 3 and "${" not in str(node):
        yield str(node)  # a ${VAR} template is not a secret; the value it is filled with is (see _fill_string)


class Context:
    """The file being read, where ``${VAR}`` was filled in, and the secrets no message may contain."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.text = text
        self.base = file.resolve().parent
        self.filled: dict[Path_, str] = {}  # key path -> the template written there
        self.secrets: set[str] = set()

    def redact(self, message: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        return redact_urls_in_text(message, query_mark="")

    def error(self, where: Path_ | str, what: str) -> ManifestError:
        path = where if isinstance(where, str) else key_path(where)
        return ManifestError(self.redact(f"{self.file}: {path}: {what}"))

    def shown(self, where: Path_, value: Any, *, source: bool = True) -> str:
        """A value for a message: hidden under a secret key, without credentials when a URL, named by its ${VAR}."""
        if is_secret_path(where):
            return "(hidden)"
        text = redact_url(value, query_mark="") if isinstance(value, str) else value
        template = self.filled.get(tuple(where)) if source else None
        return f"{text!r} (from {template})" if template else repr(text)


# -- step 1: YAML ---------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice (YAML would keep the last one silently)."""


def _unique_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:  # an unhashable key: the constructor below says so
            continue
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first written on line {first + 1})", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _yaml_hint(line: str, previous: str, problem: str) -> str:
    if "duplicate key" in problem:
        return "a key written twice: merge the two, or make one of them a separate sweep block"
    if "\t" in line or "\t" in previous:
        return "a tab: YAML indents with spaces only"
    for text in (line, previous):
        if re.match(r"^\s*(?:-\s+)?[A-Za-z_][\w.-]*:(?![\s/]|$)", text):
            return "a missing space after ':' (write 'key: value')"
    if re.search(r"[{\[][^}\]]*\$\{", line):
        return 'inside { } or [ ], a ${VAR} value must be quoted: "${VAR}"'
    if re.search(r"(?::|-)\s+[{\[]", line) or line.lstrip().startswith(("{", "[")):
        return "a value starting with { or [ is read as a mapping or list: quote it if it is text (\"{...}\")"
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted"
    if re.search(r":\s+[*&!%@`|>]", line):
        return "a value starting with * & ! % @ ` | or > must be quoted"
    return "check the indentation and quoting of this line and the one above"


_SECRET_ON_LINE = re.compile(
    r"""((?<![\w-])(?:[\w-]*(?:api_?key|cookie|token|secret|passw)[\w-]*|(?:[\w-]*_)?key)\s*:\s*)("[^"]*"|'[^']*'|[^,}\]#]*)""",
    re.IGNORECASE)
#: a token-like run of letters and digits (an API key's shape), hidden even when the line's key is mangled
_TOKEN = re.compile(r"(?=[\w+=-]*\d)(?=[\w+=-]*[A-Za-z])[\w+=-]{16,}")


def _show_yaml_line(line: str) -> str:
    """The offending line for a message: a secret-looking key's value and anything shaped like a key are masked."""
    line = _SECRET_ON_LINE.sub(lambda m: m[1] + "***" if m[2].strip() else m[0], line)
    return _TOKEN.sub("***", line)


def read_yaml(ctx: Context) -> Any:
    try:
        return yaml.load(ctx.text, Loader=_Loader)  # _Loader is a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or exc.context or "syntax error")
        if mark is None:
            raise ctx.error("(top level)", f"not valid YAML ({problem})") from None
        lines = ctx.text.splitlines() or [""]
        if exc.context_mark is not None and (mark.line >= len(lines) or not lines[mark.line].strip()):
            mark = exc.context_mark  # the file ended inside a bracket: show where it opened
        row = min(mark.line, len(lines) - 1)
        line, previous = lines[row], (lines[row - 1] if row else "")
        shown = _show_yaml_line(line).replace("\t", " ")
        caret = " " * min(mark.column, len(shown)) + "^"
        message = (f"{ctx.file}: line {row + 1}, column {mark.column + 1}: not valid YAML ({problem})\n"
                   f"    {shown}\n    {caret}\n  hint: {_yaml_hint(line, previous, problem)}")
        raise ManifestError(ctx.redact(message)) from None
    except yaml.YAMLError as exc:
        raise ctx.error("(top level)", f"not valid YAML ({exc})") from None
