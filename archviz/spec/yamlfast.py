"""The YAML loader's fast path: runs of one-line node mappings read without the YAML parser.

A large spec (imported, unrolled or generated: 100,000 layers) is mostly lines such as

    - {id: c3, op: conv2d, in: a2, out: 8, kernel: [3, 3], padding: 1}

libyaml turns each into a dozen events and the loader a dozen located values: about
16 µs a line, most of a large spec's load (issue 17). Here every such line of the file is
found by one regular expression, and the mappings of all of them are read by the json
module's C decoder (their names quoted first). The rest of the file goes to the YAML
parser as before, each run of these lines standing as one placeholder item ``- {}`` on its
first line (the rest of its lines left blank), so that every line and column the parser
reports is the file's own, and the parser is in the state the run's last ``}`` left.

What counts as such a line is narrow on purpose: a grammar on which YAML and JSON read
the same values. Keys are names; values are names (``[A-Za-z_][A-Za-z0-9_.]*``),
decimal numbers without exponent or leading zero, ``true``, ``false``, ``null``, or a
flow list of those; no quotes, comments, anchors, tags, ``${...}`` or nested braces.
``True``, ``NULL`` and the like, a duplicate key, a placeholder the parser did not read
as a plain item of a block sequence (inside a block scalar, say), or nesting near
MAX_DEPTH: the whole file is read again the slow way, which reports what is wrong with
its location. Nothing is read differently (tests/test_yaml_fast.py compares the two
readings, values, types and locations, on every bundled spec and on random documents).

The locations of a fast line's keys and values are worked out when first read
(:class:`~archviz.errors.LazySpan`), by reading that one line the slow way: only an error
reads one.
"""
from __future__ import annotations

import json
import re

from archviz.errors import LazySpan, Span
from archviz.spec.located import LocDict, LocList, located_dict, located_list

_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_NUM = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?"
_SCALAR = rf"(?:{_NAME}|{_NUM})"
_VALUE = rf"(?:{_SCALAR}|\[ *(?:{_SCALAR}(?: *, *{_SCALAR})*)? *\])"
_PAIR = rf"{_NAME}: +{_VALUE}"
# group 1: the indentation, group 2: the mapping {...}
LINE = re.compile(rf"^( *)- (\{{ *{_PAIR}(?: *, *{_PAIR})* *\}}) *$", re.M)
_QUOTE = re.compile(f"({_NAME})")     # split on names: the parts alternate text, name, text, ...
# YAML reads these as booleans or null, which quoting would turn into strings
_OTHER_WORDS = re.compile(r'"(?:True|TRUE|False|FALSE|Null|NULL)"')
_OTHER_BREAKS = re.compile("[\r\x85\u2028\u2029]")
MIN_LINES = 64      # a file with fewer such lines is read the slow way: nothing to win


class NotFast(Exception):
    """The fast reading does not apply: read the file the slow way."""


class LineDict(LocDict):
    """A mapping read from one line by the fast path. `span` (of the braces) is set; `spans`
    and `key_spans` are the slow reading of its line, made when first asked for."""

    __slots__ = ("_runs", "_at")    # the Runs it came from, and where its line starts; once
    #                                 read, _at is the slow reading of the line (a LocDict)
    __init__ = dict.__init__    # spans and key_spans stay unset until read

    def __getattr__(self, name):        # `spans` or `key_spans`, not yet set: read the line
        if name not in ("spans", "key_spans"):
            raise AttributeError(name)
        full = self._full()
        self.spans, self.key_spans = full.spans, full.key_spans
        return getattr(self, name)

    def _full(self) -> LocDict:
        at = self._at
        if type(at) is int:                 # read the line the slow way, once
            text = self._runs.text
            end = text.find("\n", at)
            at = self._at = REREAD(text[at:end if end >= 0 else len(text)], self.span.file, self.span.line)
        return at

    def span_of(self, key, default: Span | None = None) -> Span | None:
        return LazySpan(self, key) if key in self else default or self.span

    def key_span(self, key) -> Span | None:
        return LazySpan(self, (key,)) if key in self else self.span

    def __reduce__(self):       # pickled (or copied) as a LocDict, with its spans, not its file
        return located_dict, (list(self.items()), self.span, self.spans, self.key_spans)

    def lazy_span(self, key) -> Span:
        """The span of the value of `key`, or of the key itself for `(key,)` (LazySpan)."""
        full = self._full()
        return full.key_spans[key[0]] if type(key) is tuple else full.spans[key]


class LineList(LocList):
    """A flow list in a fast line (`in: [a, b]`): its locations come from its mapping's line."""

    __slots__ = ("_owner", "_key")

    __init__ = list.__init__

    def __getattr__(self, name):
        if name not in ("span", "spans"):
            raise AttributeError(name)
        full = self._owner._full()[self._key]
        self.span, self.spans = full.span, full.spans
        return getattr(self, name)

    def span_of(self, i: int) -> Span | None:
        return LazySpan(self, i) if 0 <= i < len(self) else self.span

    def lazy_span(self, i: int) -> Span:
        return self._owner._full()[self._key].spans[i]

    def __reduce__(self):
        return located_list, (list(self), self.span, self.spans)


class Runs:
    """The fast lines of a file, in runs of consecutive lines of one indentation, read: the
    text for the YAML parser (each run one placeholder item), and for each placeholder the
    mappings and their spans."""

    def __init__(self, text: str, file: str):
        self.file, self.text = file, text
        self.items: dict = {}   # (line, column) of a placeholder `{}` (0-based) -> ([mappings], [their spans])
        self.parser_text = text
        if _OTHER_BREAKS.search(text):
            return      # (YAML counts \r, NEL, LS and PS as line breaks: its lines would not be ours)
        found = list(LINE.finditer(text))
        if len(found) < MIN_LINES:
            return
        self._read(found)

    def _read(self, found) -> None:
        text, file = self.text, self.file
        texts = [m.group(2) for m in found]
        body = '"'.join(_QUOTE.split(",".join(texts)))     # every name quoted, at C speed
        if _OTHER_WORDS.search(body):
            raise NotFast("True, NULL, ...")
        for word in ("true", "false", "null"):      # a quoted key would fail JSON: then NotFast
            body = body.replace(f'"{word}"', word)
        try:
            maps = json.loads(f"[{body}]", object_pairs_hook=LineDict)
        except ValueError:
            raise NotFast("not JSON") from None
        pieces, pos, line, cut = [], 0, 1, 0
        prev_end = width = -2
        run = None
        for m, d, t in zip(found, maps, texts):
            if len(d) != t.count(":"):      # a key twice (a line's only colons end its keys)
                raise NotFast("a duplicate key")
            start, end = m.span()
            b0, b1 = m.span(2)
            if start == prev_end + 1 and b0 - start == width:    # the next line of the run
                line += 1
                d.span = sp = Span(file, line, b0 - start + 1, b1 - start + 1)
                run[0].append(d)
                run[1].append(sp)
                pieces.append("\n")        # the line stays, blank: the parser's lines are the file's
            else:                           # a new run: its placeholder item on its first line
                line += text.count("\n", pos, start)
                d.span = sp = Span(file, line, b0 - start + 1, b1 - start + 1)
                # an empty mapping where the run's first mapping was: the parser ends it in the
                # state a `}` leaves (a plain scalar would take the lines after it as its own)
                run = self.items[(line - 1, b0 - start)] = ([d], [sp])
                width = b0 - start          # the indentation and "- "
                pieces.append(text[cut:start])
                pieces.append(f"{m.group(1)}- {{}}")
            pos = prev_end = cut = end
            d._runs, d._at = self, start
            if "[" in t:
                for k, v in d.items():
                    if type(v) is list:
                        d[k] = lst = LineList(v)
                        lst._owner, lst._key = d, k
        pieces.append(text[cut:])
        self.parser_text = "".join(pieces)


# the slow reading of one line `- {...}` (file, line number): its mapping, located in the
# file (archviz.spec.yamlload sets it: the loader imports this module, not the reverse)
REREAD = None
