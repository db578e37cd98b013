"""A restricted YAML loader that keeps the location of every value.

Restrictions (why: a spec is a contract people read, so every value must mean one
thing and point back to where it was written):

* duplicate keys, anchors, aliases and merge keys (``<<``) are errors;
* only ``true``/``false`` are booleans (``yes``/``no``/``on``/``off`` stay strings);
* ``1e-4`` is a float (YAML 1.1 would make it a string);
* a tag (``!!python/...``, ``!!str``, ``!foo``) is an error: a value means what it
  says (quote it to make it a string);
* integers are decimal (``08`` is 8, not the float 8.0) or ``0x`` hex;
* every mapping key is a string (a name): ``1:``, ``true:`` and ``~:`` are errors;
* nesting, file size and integer literals are bounded (MAX_DEPTH, MAX_FILE_BYTES,
  MAX_INT_DIGITS), and a file that is not a regular file or not UTF-8 text is refused.

The tree is built from the parser's event stream without recursion, so no nesting can
overflow a stack (libyaml's recursive C composer crashes the process at ~50,000 levels).

Mappings load as :class:`LocDict`, sequences as :class:`LocList`: plain ``dict`` /
``list`` subclasses that carry ``span`` (of the container), ``spans`` (of each value)
and, for mappings, ``key_spans``.  Scalars are plain Python values.
"""
from __future__ import annotations

import os
import re
import stat

import yaml

from archviz.codes import E
from archviz.errors import Span, SpecError
from archviz.spec import yamlfast
from archviz.spec.located import LocDict, LocList, span_of  # noqa: F401 (the loader's types, read from here)


_INT = re.compile(r"^[-+]?[0-9][0-9_]*$")     # YAML 1.2 core: leading zeros are decimal
_HEX = re.compile(r"^0x[0-9a-fA-F_]+$")
_FLOAT = re.compile(r"^[-+]?(\d[\d_]*\.\d*|\.\d+|\d[\d_]*)([eE][-+]?\d+)?$")
_SPECIAL_FLOAT = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"),
                  ".nan": float("nan")}


# Bounds on what a spec file may ask of the loader (each is an error that names it):
MAX_DEPTH = 64              # nesting of mappings and lists; the library's specs nest at most 6 deep
MAX_FILE_BYTES = 16 << 20   # 16 MiB: a graph of MAX_LAYERS (100,000) layers written out one per line
#                             (an imported or unrolled network) takes 4-5 MB; the library's largest
#                             spec takes a few KB. The bound keeps a mistaken file from taking minutes
MAX_INT_DIGITS = 2_000      # an integer literal; expressions bound theirs at 8,192 bits (2,467 digits)


_NUMBER_START = frozenset("0123456789+-.")


def _scalar(node):
    """The Python value of a scalar. Raises ValueError for an integer too long to convert."""
    text = node.value
    if node.style:  # quoted or block scalar: always a string
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text[0] not in _NUMBER_START:      # most scalars are names: no number pattern to try
        return text
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _HEX.match(text):
        return int(text, 16)
    if _FLOAT.match(text):
        return float(text.replace("_", ""))
    if text.lower() in _SPECIAL_FLOAT:
        return _SPECIAL_FLOAT[text.lower()]
    return text


def _span(file: str, start, end=None) -> Span:
    """The span from mark `start` to mark `end` (its end column only when on the same line)."""
    end_col = end.column + 1 if end is not None and end.line == start.line else None
    return Span(file, start.line + 1, start.column + 1, end_col)


def _event_error(filename: str, event) -> SpecError | None:
    """The error for an alias, an anchor or a tag (every tag: a value means what it says)."""
    at = Span(filename, event.start_mark.line + 1, event.start_mark.column + 1)
    if getattr(event, "tag", None) is not None:
        return SpecError(f"YAML tag '{event.tag}' is not allowed in a spec", at, code=E.YAML_TAG,
                         hint="write the plain value; quote it to make it a string")
    if isinstance(event, yaml.AliasEvent):
        return SpecError("YAML aliases (*name) are not allowed in a spec", at, code=E.YAML_ANCHOR,
                         hint="write the value out, or use a block or a param")
    if getattr(event, "anchor", None) is not None:
        return SpecError("YAML anchors (&name) are not allowed in a spec", at, code=E.YAML_ANCHOR,
                         hint="use a block or a param to share a definition")
    return None


def _scalar_at(event, file: str):
    text = event.value
    if len(text) > MAX_INT_DIGITS and not event.style and (_INT.match(text) or _HEX.match(text)):
        raise SpecError(f"integer literal with {len(text)} digits is too large (at most {MAX_INT_DIGITS:,} digits)",
                        _value_span(file, event), code=E.YAML_SYNTAX)
    try:
        return _scalar(event)
    except ValueError:  # an integer with more digits than Python converts (sys.int_info)
        raise SpecError(f"integer literal with {len(text)} digits is too large", _value_span(file, event),
                        code=E.YAML_SYNTAX) from None


def _value_span(file: str, event) -> Span:
    """Span pointing at a scalar's content (inside the quotes of a quoted scalar)."""
    s = _span(file, event.start_mark, event.end_mark)
    if event.style in ('"', "'"):
        return Span(s.file, s.line, s.col + 1, s.end_col - 1 if s.end_col else None)
    return s


_KEY_KINDS = {bool: "a boolean", int: "an integer", float: "a number", type(None): "null"}


def _key(event, container: "LocDict", file: str):
    """The key a scalar event names in `container`, checked: a name, not yet used, not `<<`."""
    kspan = _span(file, event.start_mark, event.end_mark)
    if event.value == "<<" and not event.style:
        raise SpecError("YAML merge keys (<<) are not allowed in a spec", kspan,
                        hint="write the keys out, or use `defaults:`", code=E.YAML_ANCHOR)
    key = _scalar_at(event, file)
    if not isinstance(key, str):
        # Keys are names (of params, inputs, attributes, ports...): `1:`, `true:` or `~:` are
        # not, and every consumer of a key expects a str
        raise SpecError(f"mapping key '{event.value}' is {_KEY_KINDS.get(type(key), 'not a string')}, "
                        "not a name", kspan, code=E.BAD_KEY,
                        hint=f'keys are names; quote it to use the text as a name: "{event.value}"')
    if key in container:
        raise SpecError(f"duplicate key '{key}'", kspan, code=E.DUPLICATE_KEY,
                        notes=[f"first defined at {container.key_spans[key]}"])
    return key, kspan


_NOTHING = object()
# a plain scalar that starts with none of these and is none of those is a name (a str key)
_NOT_A_NAME_START = _NUMBER_START | {"<"}
_NOT_NAMES = frozenset(("~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE"))


def _document_start(docs: list, ev, file: str) -> None:
    docs.append(ev.start_mark.line + 1)
    if len(docs) > 1:
        raise SpecError("YAML syntax error: found a second document", _span(file, ev.start_mark),
                        code=E.YAML_SYNTAX, notes=["a spec file holds a single document (the first starts "
                                                   f"on line {docs[0]})"])


def _build(events, file: str, fast: dict | None = None):
    """LocDict/LocList/scalars from a YAML event stream, without recursion (libyaml's C
    composer crashes at ~50,000 levels; past MAX_DEPTH is an error), in one pass (issue 17).
    `fast`: yamlfast's placeholders, each spliced into its sequence (see load_yaml)."""
    root = _NOTHING
    stack: list = []        # [container, pending key (or _NOTHING), key span, start mark]
    docs = []
    Scalar, MapStart, SeqStart = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
    MapEnd, SeqEnd, DocStart, Alias = yaml.MappingEndEvent, yaml.SequenceEndEvent, yaml.DocumentStartEvent, yaml.AliasEvent
    top, in_map = None, False       # stack[-1], and whether it is a LocDict
    names: dict = {}        # one str per distinct name (keys, op names: 30 MB of copies at 100k layers)
    for ev in events:
        cls = type(ev)
        if cls is Scalar:
            if ev.anchor is not None or ev.tag is not None:
                raise _event_error(file, ev)
            if in_map and top[1] is _NOTHING:
                text = ev.value
                if not ev.style and text and text[0] not in _NOT_A_NAME_START and text not in _NOT_NAMES \
                        and text not in top[0]:     # a plain name, new in its mapping: the key itself
                    sm, em = ev.start_mark, ev.end_mark
                    top[1] = names.setdefault(text, text)
                    top[2] = Span(file, sm.line + 1, sm.column + 1, em.column + 1 if em.line == sm.line else None)
                else:
                    top[1], top[2] = _key(ev, top[0], file)
                continue
            sm = ev.start_mark
            text = ev.value
            style = ev.style
            value = (int(text) if text.isdigit() and text.isascii() else _scalar(ev)) \
                if not style and len(text) <= 64 else _scalar_at(ev, file)     # short and plain: no digit limit
            if type(value) is str:
                value = names.setdefault(value, value)
            em = ev.end_mark
            if style != '"' and style != "'":
                vspan = Span(file, sm.line + 1, sm.column + 1, em.column + 1 if em.line == sm.line else None)
            else:
                vspan = _value_span(file, ev)
        elif cls is MapStart or cls is SeqStart:
            if ev.anchor is not None or ev.tag is not None:
                raise _event_error(file, ev)
            if in_map and top[1] is _NOTHING:
                raise SpecError("mapping keys must be plain scalars", _span(file, ev.start_mark), code=E.BAD_KEY)
            if len(stack) >= MAX_DEPTH:
                raise _too_deep(_span(file, ev.start_mark))
            in_map = cls is MapStart
            top = [LocDict() if in_map else LocList(), _NOTHING, None, ev.start_mark]
            stack.append(top)
            continue
        elif cls is MapEnd or cls is SeqEnd:
            value, _, _, start = stack.pop()
            value.span = vspan = _span(file, start, ev.end_mark)
            if stack:
                top = stack[-1]
                in_map = type(top[0]) is LocDict
            else:
                top, in_map = None, False
            if fast and not value and (start.line, start.column) in fast:   # a fast run's placeholder {}
                _splice(fast, (start.line, start.column), top, in_map, len(stack))
                continue
        elif cls is Alias:
            raise _event_error(file, ev)
        elif cls is DocStart:
            _document_start(docs, ev, file)
            continue
        else:       # stream start / end, document end
            continue
        if top is None:
            root = value
        elif in_map:
            c = top[0]
            key = top[1]
            c[key] = value
            c.spans[key] = vspan
            c.key_spans[key] = top[2]
            top[1] = _NOTHING
        else:
            top[0].append(value)
            top[0].spans.append(vspan)
    return None if root is _NOTHING else root


def _splice(fast: dict, at: tuple, top, in_map: bool, depth: int) -> None:
    """The mappings of a fast run, in place of its placeholder item `{}` (which must be an
    item of a sequence, read once), with their spans."""
    run = fast[at]
    if run is None or top is None or in_map or depth + 2 >= MAX_DEPTH:
        raise yamlfast.NotFast("a placeholder out of place")
    fast[at] = None
    top[0].extend(run[0])
    top[0].spans.extend(run[1])


def _reread(line_text: str, file: str, line: int) -> LocDict:
    """The slow reading of one line that holds `- {...}` (yamlfast's lazy locations): its
    mapping, with every span moved to line `line` of `file`."""
    d = _build(_events(line_text), file)[0]
    return _moved(d, line - 1)


def _moved(v, lines: int):
    def mv(s: Span | None) -> Span | None:
        return None if s is None else Span(s.file, s.line + lines, s.col, s.end_col)
    if isinstance(v, LocDict):
        for k in v:
            _moved(v[k], lines)
        v.span, v.spans, v.key_spans = mv(v.span), {k: mv(s) for k, s in v.spans.items()}, \
            {k: mv(s) for k, s in v.key_spans.items()}
    elif isinstance(v, LocList):
        for x in v:
            _moved(x, lines)
        v.span, v.spans = mv(v.span), [mv(s) for s in v.spans]
    return v


yamlfast.REREAD = _reread


def _events(text: str):
    """The YAML event stream: libyaml's C parser when PyYAML has it (about 10x faster on big
    specs), else the pure-Python one. Neither recurses on nesting."""
    loader = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
    return yaml.parse(text, Loader=loader)


def _too_deep(span) -> SpecError:
    return SpecError(f"YAML nesting is deeper than {MAX_DEPTH} levels", span, code=E.TOO_DEEP,
                     hint="a spec nests a few levels (nodes, a node, a list of dims); "
                          "check the brackets and the indentation")


# an unquoted reference with brackets (enc[3], enc[3].skip) inside a flow collection
_BRACKET_REF = re.compile(r"(?<![\"'\w.])([A-Za-z_][\w.]*\[[^\]\[]*\](?:\.\w+)?)")


def _syntax_hint(text: str, mark, msg: str) -> str | None:
    """A hint for the YAML traps a spec writer falls into: a tab where YAML wants spaces,
    and `stage[3]` unquoted inside {...} or [...], where YAML reads '[' as a new list."""
    if not mark:
        return None
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    if _char_at(text, mark.line, mark.column) == "\t" or "\t" in line[:len(line) - len(line.lstrip())]:
        return "YAML indents with spaces, not tabs"
    if "expected ','" in msg or "expected ',' or" in msg or "flow" in msg:
        for m in _BRACKET_REF.finditer(line):
            if m.start() <= mark.column <= m.end() + 1:
                return (f"inside {{...}} or [...], YAML reads '[' as the start of a list: quote the "
                        f"reference, \"{m.group(1)}\"")
    if "\t" in line:
        return "a tab in this line: YAML separates with spaces"
    return None


def load_yaml(text: str, filename: str, fast: bool = True):
    """Parse `text` (from `filename`) into LocDict/LocList/scalars. Raises SpecError.
    `fast`: the runs of one-line node mappings are read by archviz.spec.yamlfast (the same
    reading, faster); False: every line by the YAML parser."""
    try:
        if fast:
            try:
                runs = yamlfast.Runs(text, filename)
                if runs.items:
                    doc = _build(_events(runs.parser_text), filename, runs.items)
                    if any(runs.items.values()):
                        raise yamlfast.NotFast("a placeholder the parser did not read as an item")
                    runs.parser_text = runs.items = None    # the mappings keep the file's text only
                    return doc
            except (yamlfast.NotFast, SpecError, yaml.YAMLError):
                pass        # read the slow way: it says what is wrong, where
        return _build(_events(text), filename)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        span = Span(filename, mark.line + 1, mark.column + 1) if mark else None
        msg = (e.problem or e.context or "invalid YAML").strip()
        if "maximum nesting depth" in msg:      # libyaml >= 0.2.6 stops far nesting itself, while scanning
            raise _too_deep(span) from None
        hint = _syntax_hint(text, mark, msg)
        raise SpecError(f"YAML syntax error: {msg}", span, code=E.YAML_SYNTAX, hint=hint,
                        notes=[f"{e.context} (line {e.context_mark.line + 1})"]
                        if e.context and e.context_mark and e.problem else None) from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow (control characters)
        pos = e.position if isinstance(e.position, int) and e.position >= 0 else 0
        if e.encoding != "unicode":  # libyaml counts bytes of the UTF-8 text, the pure reader characters
            pos = len(text.encode("utf-8")[:pos].decode("utf-8", "ignore"))
        pos = min(pos, len(text))
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        code = e.character if isinstance(e.character, int) else ord(str(e.character)[:1] or "?")
        hint = None
        if code == 0 and text.count("\0") * 4 >= len(text):     # every other byte NUL: UTF-16 read as UTF-8
            hint = "the file looks like UTF-16 text; save it as UTF-8"
        raise SpecError(f"YAML error: character #x{code:04x} is not allowed in a spec ({e.reason})",
                        Span(filename, line, col), code=E.YAML_SYNTAX, hint=hint) from None
    except yaml.YAMLError as e:  # pragma: no cover - other reader errors
        raise SpecError(f"YAML error: {e}", Span(filename, 1, 1), code=E.YAML_SYNTAX) from None


def _char_at(text: str, line: int, column: int) -> str:
    """The character at 0-based (line, column) of `text`, or ''."""
    start = 0
    for _ in range(line):
        start = text.find("\n", start) + 1
        if start == 0:
            return ""
    pos = start + column
    return text[pos] if pos < len(text) and text[pos] != "\n" else ""


# -- files ---------------------------------------------------------------------------
_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
         (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def show_path(path: str) -> str:
    """A path as it can be printed: control characters (a NUL, an escape) are escaped."""
    return path if path.isprintable() else repr(path)[1:-1]


def read_spec_text(path: str) -> str:
    """The text of a spec file. Refused (SpecError E0106): a missing file, a folder, anything
    that is not a regular file (a device such as /dev/zero, a FIFO, a socket: reading one may
    never end), a file over MAX_FILE_BYTES, text that is not UTF-8 (located at the first bad
    byte)."""
    shown = show_path(path)
    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer; it is refused just below
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {shown}", code=E.UNREADABLE_SPEC) from None
    except IsADirectoryError:
        raise _is_a_directory(shown) from None
    except ValueError:      # a NUL in the path
        raise SpecError(f"cannot read spec file {shown}: a file name cannot contain a NUL character",
                        code=E.UNREADABLE_SPEC) from None
    except OSError as e:
        raise SpecError(f"cannot read spec file {shown}: {e.strerror or e}", code=E.UNREADABLE_SPEC) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _is_a_directory(shown)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(f"{shown} is not a regular file (a device, a pipe or a socket), not a spec file",
                            code=E.UNREADABLE_SPEC, hint="a spec is a text file")
        if st.st_size > MAX_FILE_BYTES:
            raise _too_large(shown, st.st_size)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)      # /proc files say size 0: read no more than the limit
    except OSError as e:
        raise SpecError(f"cannot read spec file {shown}: {e.strerror or e}", code=E.UNREADABLE_SPEC) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(shown, None)
    return _decode(data, path)


def _is_a_directory(shown: str) -> SpecError:
    return SpecError(f"{shown} is a directory, not a spec file", code=E.UNREADABLE_SPEC,
                     hint="give one .yaml file; `archviz report DIR` and `archviz gallery` take a folder")


def _too_large(shown: str, size: int | None) -> SpecError:
    got = f" ({size:,} bytes)" if size is not None else ""
    return SpecError(f"spec file {shown} is too large{got}: at most {MAX_FILE_BYTES:,} bytes", code=E.UNREADABLE_SPEC,
                     hint="the largest spec of the library is a few KB; a spec describes a network, "
                          "it does not list its weights")


def _decode(data: bytes, path: str) -> str:
    """UTF-8 text; else an error at the line and column of the first byte that is not UTF-8."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise SpecError(f"spec file is {name} text (it starts with a {name} byte-order mark); "
                            "archviz reads utf-8", Span(path, 1, 1), code=E.UNREADABLE_SPEC,
                            hint=f"save the file as UTF-8 (e.g. iconv -f {name} -t UTF-8)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        pos = e.start
        start = data.rfind(b"\n", 0, pos) + 1
        line = data.count(b"\n", 0, pos) + 1
        col = len(data[start:pos].decode("utf-8", "replace")) + 1
        raise SpecError(f"spec file is not UTF-8 text: byte 0x{data[pos]:02x} is not valid utf-8",
                        Span(path, line, col), code=E.UNREADABLE_SPEC,
                        hint="save the file as UTF-8 (an editor's \"save with encoding\")") from None


def load_yaml_file(path: str):
    return load_yaml(read_spec_text(path), path)
