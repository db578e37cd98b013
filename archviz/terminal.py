"""What the command line needs from the process it runs in: text that every console can
print, and interruption (Ctrl-C, SIGTERM, SIGHUP) that cleans up and exits with the
conventional code 128 + signal number (130 for Ctrl-C), never a traceback.

Consoles.  A console whose encoding cannot write archviz's characters (x × y, a → b,
σ, box drawing) gets ASCII instead: each such character is spelled out (× → x, → → ->,
² → ^2, σ → sigma, a box-drawing line → - | +), the others are printed as they are
(cp1252 keeps ×, ² and —).  It is done once, on the streams, so every writer (click,
rich, print) is covered.  A console that cannot even write ASCII words is not helped.

Signals.  The handlers raise an exception in the main thread (KeyboardInterrupt for
SIGINT, :class:`Terminated` for the others), so every ``finally`` runs: a temporary file
is removed, an output half written is never moved into place.  A short critical section
(:func:`deferred`, used around creating and renaming a temporary file) holds a signal
back until it ends, so no temporary file is ever created without being tracked.
"""
from __future__ import annotations

import codecs
import signal
import sys
import threading
import unicodedata
from contextlib import contextmanager

# --------------------------------------------------------------------------- consoles

ERRORS = "archviz.ascii"          # the codec error handler
ASCII_CODEC = "archviz-ascii"     # ASCII that spells out what it cannot encode

# Characters archviz prints, spelled in ASCII. Others: superscripts/subscripts, Greek
# letters, accents, box drawing and blocks by their Unicode names (see _spell).
_SPELLING = {
    "×": "x", "·": "*", "−": "-", "–": "-", "—": "-", "…": "...", "→": "->", "←": "<-",
    "↔": "<->", "⟹": "=>", "⇒": "=>", "↑": "^", "↓": "v", "≤": "<=", "≥": ">=", "≠": "!=",
    "≈": "~", "≡": "==", "±": "+/-", "∞": "inf", "√": "sqrt", "⌊": "floor(", "⌋": ")",
    "⌈": "ceil(", "⌉": ")", "Σ": "sum", "∑": "sum", "Π": "prod", "∏": "prod", "∈": " in ",
    "⊙": "(*)", "⊕": "(+)", "∘": "o", "§": "S", "‘": "'", "’": "'", "“": '"', "”": '"',
    "\u00a0": " ", "✓": "ok", "✗": "x", "•": "*", "°": "deg", "µ": "u", "½": "1/2",
}


def spell(ch: str) -> str:
    """One character in ASCII ('?' where there is no reasonable spelling)."""
    if ch in _SPELLING:
        return _SPELLING[ch]
    if ch.isascii():
        return ch
    if unicodedata.combining(ch):
        return ""
    name = unicodedata.name(ch, "")
    if 0x2500 <= ord(ch) <= 0x257F:            # box drawing
        horiz, vert = "HORIZONTAL" in name, "VERTICAL" in name
        return "-" if horiz and not vert else "|" if vert and not horiz else "+"
    if 0x2580 <= ord(ch) <= 0x259F:            # block elements (progress bars)
        return "#"
    if name.startswith("GREEK "):
        letter = name.rsplit(" ", 1)[-1].lower()
        return letter.capitalize() if "CAPITAL" in name else letter
    deco = unicodedata.decomposition(ch)
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii())
    if base:
        if deco.startswith("<super>"):
            return "^" + base
        if deco.startswith("<sub>"):
            return "_" + base
        return base
    return "?"


def _errors(exc: UnicodeError):
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(spell(c) for c in exc.object[exc.start:exc.end]), exc.end


class _Encoder(codecs.IncrementalEncoder):
    def encode(self, text, final=False):
        return codecs.ascii_encode(text, ERRORS)[0]


def _search(name: str):
    if name.replace("-", "_") != ASCII_CODEC.replace("-", "_"):
        return None
    ascii_info = codecs.lookup("ascii")
    return codecs.CodecInfo(name=ASCII_CODEC, encode=lambda s, errors="strict": codecs.ascii_encode(s, ERRORS),
                            decode=ascii_info.decode, incrementalencoder=_Encoder,
                            incrementaldecoder=ascii_info.incrementaldecoder,
                            streamwriter=ascii_info.streamwriter, streamreader=ascii_info.streamreader)


codecs.register_error(ERRORS, _errors)
codecs.register(_search)

# what archviz prints that a limited console may lack
_PROBE = "×→—·σ²⌊─│…"


def _encodes(encoding: str, text: str) -> bool:
    """Whether `encoding` writes `text` as it is (archviz-ascii: whether it is ASCII)."""
    if encoding.lower().replace("_", "-") == ASCII_CODEC:
        return text.isascii()
    try:
        text.encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def ascii_fallback(stream) -> bool:
    """Make `stream` spell out in ASCII what its encoding cannot write. An ASCII stream
    gets the archviz-ascii codec, which keeps click from rewriting it as UTF-8 behind
    the console's back; another encoding (cp1252) keeps its own characters. Returns True
    when the stream was changed."""
    enc = getattr(stream, "encoding", None)
    if not enc or not hasattr(stream, "reconfigure") or _encodes(enc, _PROBE):
        return False
    try:
        if codecs.lookup(enc).name == "ascii":
            stream.reconfigure(encoding=ASCII_CODEC, errors=ERRORS)
        else:
            stream.reconfigure(errors=ERRORS)
    except (ValueError, OSError, LookupError):  # a stream already read from, a closed one
        return False
    return True


def ascii_text(text: str, stream) -> str:
    """`text` as `stream` will print it: unchanged where its encoding has every character,
    else spelled out as the stream's error handler would (for layout that counts widths)."""
    enc = getattr(stream, "encoding", None) or "utf-8"
    if text.isascii() or _encodes(enc, text):
        return text
    try:
        return text.encode(enc, ERRORS).decode(enc, "replace")
    except LookupError:
        return text


def setup_streams() -> None:
    for s in (sys.stdout, sys.stderr):
        if s is not None:
            ascii_fallback(s)


# --------------------------------------------------------------------------- signals

class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived. A BaseException (like KeyboardInterrupt), so code that
    catches Exception lets it through to the command line, which exits 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Interrupted(KeyboardInterrupt):
    """SIGINT, through archviz's handler (so it can be held back by `deferred`)."""
    signum = signal.SIGINT


_held = 0           # depth of deferred() sections
_pending: list = []  # signals that arrived inside one


def _raise_for(signum: int):
    if signum == signal.SIGINT:
        raise Interrupted()
    raise Terminated(signum)


def _handler(signum, frame):
    if _held:
        _pending.append(signum)
        return
    _raise_for(signum)


@contextmanager
def deferred():
    """Hold SIGINT/SIGTERM/SIGHUP back for a short critical section (creating a temporary
    file and recording it; renaming it into place): a signal arriving inside is raised
    when the section ends, never half-way through it."""
    global _held
    if threading.current_thread() is not threading.main_thread():
        yield                   # signal handlers run in the main thread only
        return
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending:
            signum = _pending[0]
            _pending.clear()
            _raise_for(signum)


def exit_code(exc: BaseException) -> int:
    """128 + the signal number, the shell's convention (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def _signals():
    out = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        out.append(signal.SIGHUP)
    return out


@contextmanager
def signals_handled():
    """Install archviz's handlers for the duration (main thread only; restored after, so
    an in-process caller such as a test runner keeps its own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {}
    for s in _signals():
        prev = signal.getsignal(s)
        if prev == signal.SIG_IGN:
            continue        # started with the signal ignored (nohup, a background job): keep it so
        old[s] = prev
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, prev in old.items():
            signal.signal(s, prev if prev is not None else signal.SIG_DFL)
