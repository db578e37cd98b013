"""A restricted YAML loader that keeps the location of every value.

Restrictions (why: a spec is a contract people read, so every value must mean one
thing and point back to where it was written):

* duplicate keys, anchors, aliases and merge keys (``<<``) are errors;
* only ``true``/``false`` are booleans (``yes``/``no``/``on``/``off`` stay strings);
* ``1e-4`` is a float (YAML 1.1 would make it a string);
* a tag (``!!python/...``, ``!!str``, ``!foo``) is an error: a value means what it
  says (quote it to make it a string);
* integers are decimal (``08`` is 8, not the float 8.0) or ``0x`` hex.

Mappings load as :class:`LocDict`, sequences as :class:`LocList`: plain ``dict`` /
``list`` subclasses that carry ``span`` (of the container), ``spans`` (of each value)
and, for mappings, ``key_spans``.  Scalars are plain Python values.
"""
from __future__ import annotations

import re

import yaml

from archviz.errors import Span, SpecError


class LocDict(dict):
    span: Span | None = None

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.spans: dict = {}
        self.key_spans: dict = {}

    def span_of(self, key, default: Span | None = None) -> Span | None:
        return self.spans.get(key) or self.key_spans.get(key) or default or self.span

    def key_span(self, key) -> Span | None:
        return self.key_spans.get(key) or self.span


class LocList(list):
    span: Span | None = None

    def __init__(self, *a):
        super().__init__(*a)
        self.spans: list = []

    def span_of(self, i: int) -> Span | None:
        return self.spans[i] if 0 <= i < len(self.spans) else self.span


def span_of(container, key, fallback: Span | None = None) -> Span | None:
    """Best-known span of `container[key]` (works for plain containers too)."""
    if isinstance(container, (LocDict, LocList)):
        return container.span_of(key) or fallback
    return fallback


_INT = re.compile(r"^[-+]?[0-9][0-9_]*$")     # YAML 1.2 core: leading zeros are decimal
_HEX = re.compile(r"^0x[0-9a-fA-F_]+$")
_FLOAT = re.compile(r"^[-+]?(\d[\d_]*\.\d*|\.\d+|\d[\d_]*)([eE][-+]?\d+)?$")
_SPECIAL_FLOAT = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"),
                  ".nan": float("nan")}


def _scalar(node: yaml.ScalarNode):
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
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _HEX.match(text):
        return int(text, 16)
    if _FLOAT.match(text):
        return float(text.replace("_", ""))
    if text.lower() in _SPECIAL_FLOAT:
        return _SPECIAL_FLOAT[text.lower()]
    return text


def _span(file: str, node, content_offset: int = 0) -> Span:
    m, e = node.start_mark, node.end_mark
    end = e.column + 1 if e.line == m.line else None
    return Span(file, m.line + 1, m.column + 1 + content_offset, end)


_STD_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
             "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:map",
             "tag:yaml.org,2002:seq", "tag:yaml.org,2002:timestamp",
             "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value",
             "tag:yaml.org,2002:binary", "tag:yaml.org,2002:omap",
             "tag:yaml.org,2002:pairs", "tag:yaml.org,2002:set"}


def _tag_error(filename: str, event) -> SpecError:
    return SpecError(f"YAML tag '{event.tag}' is not allowed in a spec",
                     Span(filename, event.start_mark.line + 1, event.start_mark.column + 1), code="E0104",
                     hint="write the plain value; quote it to make it a string")


class _Loader(yaml.SafeLoader):
    """Composer that rejects aliases, anchors and tags as they are met."""

    def __init__(self, stream, filename: str):
        super().__init__(stream)
        self._file = filename

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise SpecError("YAML aliases (*name) are not allowed in a spec",
                            Span(self._file, event.start_mark.line + 1, event.start_mark.column + 1),
                            hint="write the value out, or use a block or a param", code="E0103")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise SpecError("YAML anchors (&name) are not allowed in a spec",
                            Span(self._file, event.start_mark.line + 1, event.start_mark.column + 1),
                            hint="use a block or a param to share a definition", code="E0103")
        if getattr(event, "tag", None) is not None:
            raise _tag_error(self._file, event)
        return super().compose_node(parent, index)


def _convert(node, file: str):
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _STD_TAGS and node.tag != "!":
            raise SpecError(f"YAML tag '{node.tag}' is not allowed in a spec", _span(file, node),
                            code="E0104")
        return _scalar_at(node, file)
    if isinstance(node, yaml.SequenceNode):
        out = LocList()
        out.span = _span(file, node)
        for item in node.value:
            out.append(_convert(item, file))
            out.spans.append(_value_span(file, item))
        return out
    if isinstance(node, yaml.MappingNode):
        out = LocDict()
        out.span = _span(file, node)
        for knode, vnode in node.value:
            if knode.tag == "tag:yaml.org,2002:merge" or (isinstance(knode, yaml.ScalarNode)
                                                         and knode.value == "<<" and not knode.style):
                raise SpecError("YAML merge keys (<<) are not allowed in a spec", _span(file, knode),
                                hint="write the keys out, or use `defaults:`", code="E0103")
            if not isinstance(knode, yaml.ScalarNode):
                raise SpecError("mapping keys must be plain scalars", _span(file, knode), code="E0105")
            key = _scalar_at(knode, file)
            if isinstance(key, (list, dict)):
                raise SpecError("mapping keys must be scalars", _span(file, knode), code="E0105")
            if key in out:
                first = out.key_spans[key]
                raise SpecError(f"duplicate key '{key}'", _span(file, knode), code="E0102",
                                notes=[f"first defined at {first}"])
            out[key] = _convert(vnode, file)
            out.spans[key] = _value_span(file, vnode)
            out.key_spans[key] = _span(file, knode)
        return out
    raise SpecError(f"unsupported YAML node {type(node).__name__}", _span(file, node))


def _scalar_at(node, file: str):
    try:
        return _scalar(node)
    except ValueError:  # an integer with more digits than Python converts (sys.int_info)
        raise SpecError(f"integer literal with {len(node.value)} digits is too large", _value_span(file, node),
                        code="E0101") from None


def _value_span(file: str, node) -> Span:
    """Span pointing at a value's content (inside the quotes of a quoted scalar)."""
    if isinstance(node, yaml.ScalarNode) and node.style in ('"', "'"):
        s = _span(file, node)
        end = s.end_col - 1 if s.end_col else None
        return Span(s.file, s.line, s.col + 1, end)
    return _span(file, node)


def _reject_anchors(text: str, filename: str, loader_cls) -> None:
    """Anchors, aliases and tags are errors; the C composer resolves them silently, so look
    at the event stream first (fast: libyaml) and report the first one with its location."""
    for event in yaml.parse(text, Loader=loader_cls):
        if getattr(event, "tag", None) is not None:
            raise _tag_error(filename, event)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            what = "aliases (*name)" if isinstance(event, yaml.AliasEvent) else "anchors (&name)"
            raise SpecError(f"YAML {what} are not allowed in a spec",
                            Span(filename, event.start_mark.line + 1, event.start_mark.column + 1),
                            hint="write the value out, or use a block or a param", code="E0103")


def _compose(text: str, filename: str):
    """The YAML node tree. With libyaml: its C parser (about 10x faster on big specs),
    after an event pass that rejects anchors/aliases; otherwise the pure-Python composer
    that rejects them as it goes."""
    if getattr(yaml, "__with_libyaml__", False):
        _reject_anchors(text, filename, yaml.CSafeLoader)
        return yaml.compose(text, Loader=yaml.CSafeLoader)
    loader = _Loader(text, filename)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def load_yaml(text: str, filename: str):
    """Parse `text` (from `filename`) into LocDict/LocList/scalars. Raises SpecError."""
    try:
        node = _compose(text, filename)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        span = Span(filename, mark.line + 1, mark.column + 1) if mark else None
        msg = (e.problem or e.context or "invalid YAML").strip()
        raise SpecError(f"YAML syntax error: {msg}", span, code="E0101",
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
        raise SpecError(f"YAML error: character #x{code:04x} is not allowed in a spec ({e.reason})",
                        Span(filename, line, col), code="E0101") from None
    except yaml.YAMLError as e:  # pragma: no cover - other reader errors
        raise SpecError(f"YAML error: {e}", Span(filename, 1, 1), code="E0101") from None
    if node is None:
        return None
    return _convert(node, filename)


def load_yaml_file(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}", code="E0106") from None
    except IsADirectoryError:
        raise SpecError(f"{path} is a directory, not a spec file", code="E0106",
                        hint="give one .yaml file; `archviz report DIR` and `archviz gallery` take a folder") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read spec file {path}: {e}", code="E0106") from None
    return load_yaml(text, path)
