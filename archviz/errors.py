"""One error hierarchy, by meaning.

Every error carries an optional source span (file:line:col), a stable code, a
hint and notes.  Op rules raise the plain :class:`OpError` with a local message;
the pass driver turns it into a :class:`ShapeError` that names the node, its op,
its spec location and the block expansion stack.
"""
from __future__ import annotations

import difflib
from functools import lru_cache

from archviz.codes import E


class Span:
    """A location in a spec file: 1-based line and column, optional end column. Immutable
    by convention, hashable, compared by value (a plain class with slots: a frozen dataclass
    sets each field through object.__setattr__, 3x as slow to make, and a spec has one per
    value: 100,000s in a large one, issue 17)."""

    __slots__ = ("file", "line", "col", "end_col")

    def __init__(self, file: str, line: int, col: int, end_col: int | None = None):
        self.file = file
        self.line = line
        self.col = col
        self.end_col = end_col

    def _key(self) -> tuple:
        return self.file, self.line, self.col, self.end_col

    def __eq__(self, other):
        return self._key() == other._key() if isinstance(other, Span) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Span(file={self.file!r}, line={self.line!r}, col={self.col!r}, end_col={self.end_col!r})"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, cols: int, width: int | None = None) -> "Span":
        """The span `cols` columns further right on the same line (inside a value)."""
        col = self.col + cols
        return Span(self.file, self.line, col, None if width is None else col + width)


class LazySpan(Span):
    """A Span worked out when it is first read: `owner.lazy_span(key)` gives the real one.
    The YAML loader's fast path (archviz.spec.yamlfast) hands these out for the values of
    the lines it reads without the YAML parser: a spec of 100,000 layers names a million
    locations, and only an error reads one (issue 17)."""

    __slots__ = ("_owner", "_what")

    def __init__(self, owner, what):
        self._owner = owner
        self._what = what

    def __getattr__(self, name):        # only for a field not yet set: the first read
        if name not in Span.__slots__:
            raise AttributeError(name)
        real = self._owner.lazy_span(self._what)
        self.file, self.line, self.col, self.end_col = real.file, real.line, real.col, real.end_col
        return getattr(self, name)

    def __reduce__(self):               # pickled (a report's worker) as the Span it is
        return Span, (self.file, self.line, self.col, self.end_col)


class ArchvizError(Exception):
    """Base of every error a user can cause. Carries span, code, hint and notes."""

    code = E.ERROR
    kind = "error"

    def __init__(self, message: str, span: Span | None = None, *, hint: str | None = None,
                 notes: list[str] | None = None, code: str | None = None):
        message = clip(message)
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = clip(hint) if hint else hint
        self.notes = [clip(n) for n in notes or []]
        self.follows = False    # True: only a consequence of an error reported already (not shown)
        if code:
            self.code = code

    def __str__(self) -> str:  # plain one-line form, used by tests and logs
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.message}"


class SpecError(ArchvizError):
    """YAML syntax, document structure, schema (unknown / missing / mistyped attributes)."""
    code = E.SPEC


class ImportSpecError(SpecError):
    code = E.IMPORT


class ExpressionError(ArchvizError):
    """A malformed `${...}` expression, an unknown name, a forbidden construct."""
    code = E.EXPRESSION


class RefError(ArchvizError):
    """A reference to an unknown node, port or repeat index; a cycle."""
    code = E.REFERENCE


class ShapeError(ArchvizError):
    """Shape inference failed at a node (mismatch, window too large, ...)."""
    code = E.SHAPE


class ExpectError(ArchvizError):
    """An `expect:` shape assertion did not hold."""
    code = E.EXPECT


class UnsupportedError(ArchvizError):
    """A rule an op does not have (e.g. no torch lowering)."""
    code = E.UNSUPPORTED


class LoweringError(ArchvizError):
    code = E.LOWERING


class TorchImportError(ArchvizError):
    """A torch module that cannot be imported as a spec (archviz import, archviz.from_torch)."""
    code = E.TORCH_IMPORT


class SpecWarning(ArchvizError):
    """Not an error: the spec compiles, but probably not to what its author meant (e.g. a
    layer whose output reaches no graph output). Printed like an error, never raised."""
    code = E.WARNING
    kind = "warning"


class OutputError(ArchvizError):
    """An output file cannot be written (the path, then the OS's reason)."""
    code = E.OUTPUT


class MultipleErrors(ArchvizError):
    """Several problems found in one validation run."""
    code = E.MULTIPLE

    def __init__(self, errors: list[ArchvizError]):
        super().__init__(f"{len(errors)} problem(s) found")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class OpError(Exception):
    """Raised by an op rule with a local message; the pass driver adds the context."""

    def __init__(self, message: str, *, hint: str | None = None, attr: str | None = None,
                 input_index: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.attr = attr            # attribute the problem is about (for a better span)
        self.input_index = input_index


class MissingRuleError(UnsupportedError):
    """An op lacks a rule. Never silently counted as 0."""
    code = E.MISSING_RULE


def did_you_mean(name: str, candidates) -> str | None:
    close = difflib.get_close_matches(str(name), sorted(map(str, candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


# Files whose text an error may show under its location: the spec a user named, and the
# imports that loaded as specs (a YAML mapping). An error about any other file (an import of
# /proc/self/environ, of a .env, of a binary) gives its location and never its content.
_SPEC_SOURCES: set = set()


def mark_spec_source(path: str) -> None:
    """Let errors show lines of `path` (the spec loader calls it once a file is a spec)."""
    _SPEC_SOURCES.add(path)


def _source_lines(path: str) -> tuple[str, ...]:
    """The lines of a spec file, cached per (path, mtime, size): a file edited between two
    errors in one process (a notebook, a test) shows its current text under the caret.
    Only a file marked as a spec is read, and only a regular file of a bounded size."""
    import os
    import stat
    if path not in _SPEC_SOURCES:
        return ()
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return ()
    if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_SHOWN_FILE:
        return ()
    return _read_lines(path, st.st_mtime_ns, st.st_size)


_MAX_SHOWN_FILE = 16 << 20     # above the loader's own bound (4 MiB): a spec that loaded is shown
_MAX_SHOWN_LINE = 160          # characters of a source line shown around the caret
_MAX_FIELD = 2_000             # characters of a message, hint or note (a huge value is cut)


@lru_cache(maxsize=64)
def _read_lines(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    import os
    try:    # without blocking: a file swapped for a FIFO since it loaded shows nothing
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            return tuple(f.read(_MAX_SHOWN_FILE).decode("utf-8").splitlines())
    except (OSError, ValueError, UnicodeDecodeError):
        return ()


def clip(text: str, limit: int = _MAX_FIELD) -> str:
    """`text`, with its middle left out when longer than `limit` characters: an error never
    prints a value of a million items."""
    text = str(text)
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]} … [{len(text) - 2 * keep:,} characters left out] … {text[-keep:]}"


def short_repr(value, limit: int = 80) -> str:
    """repr(value) for a message, cut to `limit` characters. A long list is cut before it is
    turned into text, so this is fast for any value an expression can build."""
    if isinstance(value, (list, tuple)) and len(value) > limit:
        value = type(value)(value[:limit])
        text = repr(value)[:-1] + ", ...]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _window(text: str, col: int, width: int) -> tuple[str, int]:
    """A long source line cut to a window around the caret: (shown text, caret column).
    A control character (a NUL, an escape) shows as one '�', so the caret stays aligned
    and nothing is sent to the terminal that it would act on."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() or ch == "\t" else "\ufffd" for ch in text)
    if len(text) <= _MAX_SHOWN_LINE:
        return text, col
    start = max(0, min(col - 1 - _MAX_SHOWN_LINE // 3, len(text) - _MAX_SHOWN_LINE))
    shown = text[start:start + _MAX_SHOWN_LINE]
    lead = "..." if start > 0 else ""
    tail = "..." if start + _MAX_SHOWN_LINE < len(text) else ""
    return lead + shown + tail, col - start + len(lead)


def format_error(err: ArchvizError) -> str:
    """Compiler-style rendering: location, message, the source line, a caret, hint, notes."""
    if isinstance(err, MultipleErrors):
        return "\n\n".join(format_error(e) for e in err.errors) + \
            f"\n\n{len(err.errors)} error(s) found"
    head = f"{err.kind}[{err.code}]: {err.message}"
    out = []
    if err.span:
        out.append(f"{err.span}: {head}")
        lines = _source_lines(err.span.file)
        if 0 < err.span.line <= len(lines):
            num = str(err.span.line)
            pad = " " * len(num)
            width = 1
            if err.span.end_col and err.span.end_col > err.span.col:
                width = min(err.span.end_col - err.span.col, _MAX_SHOWN_LINE)
            text, col = _window(lines[err.span.line - 1], err.span.col, width)
            out.append(f"{pad} |")
            out.append(f"{num} | {text}")
            lead = "".join("\t" if ch == "\t" else " " for ch in text[:col - 1])  # tabs stay tabs
            out.append(f"{pad} | {lead}{'^' * width}")
    else:
        out.append(head)
    pad = " " * (len(str(err.span.line)) if err.span else 1)
    if err.hint:
        out.append(f"{pad} = help: {err.hint}")
    for n in err.notes:
        out.append(f"{pad} = note: {n}")
    return "\n".join(out)
