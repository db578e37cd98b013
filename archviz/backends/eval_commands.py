"""`archviz eval KIND`: one op evaluated on given numbers, every step printed
(archviz.backends.evaluate).  Values come from `-v NAME=VALUE` (YAML flow syntax:
`-v a=[5,8,10,6,4]`, `-v W=[[1,0],[0,1]]`) and/or a small YAML file (`--input FILE`);
what is not given takes the exam's own numbers.  Register with ``main.add_command(eval_cmd)``."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction

import click

from archviz.clikit import CONTEXT, handle_errors
from archviz.codes import E


@dataclass(frozen=True)
class Mode:
    """One way to give a kind's inputs: its names, the defaults (YAML text) and the names
    that select it when given."""
    names: tuple
    defaults: str
    selects: tuple = ()
    required: tuple = ()


def _bad(message: str):
    from archviz.backends import evaluate as EV
    return EV._bad(message)


def _lazy(module: str, name: str):
    """archviz.backends.MODULE.NAME, imported when first called (the CLI starts without them)."""
    def call(*args, **kwargs):
        import importlib
        return getattr(importlib.import_module(f"archviz.backends.{module}"), name)(*args, **kwargs)
    call.__name__ = name
    return call


@dataclass(frozen=True)
class Kind:
    fn: object
    doc: str
    modes: tuple


KINDS = {
    "lrn": Kind(_lazy("evaluate", "lrn"), "LRN on the activations at one position (the exam's U3 Q1 example by default)", (
        Mode(("a", "i", "n", "k", "alpha", "beta"), "{a: [5, 8, 10, 6, 4], i: 3, n: 5, k: 2, alpha: 0.0001, beta: 0.75}"),)),
    "attention": Kind(_lazy("evaluate", "attention"), "dot-product scores → softmax weights → context (the exam's U4 Q5 example)", (
        Mode(("query", "keys", "values", "scaled"),
             "{query: [0.5, 0.2, -0.1, 0.7], keys: [[0.3, -0.2, 0.5, 0.1], [0.5, 0.4, 0.2, -0.3], "
             "[0.7, 0.1, -0.4, 0.6]], scaled: false}"),
        Mode(("scores", "values"), "{}", ("scores",), ("scores", "values")))),
    "lstm": Kind(_lazy("evaluate", "lstm"), "one LSTM step from gate values (the exam's U4 Q2 example) or from weights", (
        Mode(("c", "f", "i", "g", "o"), "{c: [0.8, -0.5, 0.3, 0.9], f: [0.1, 0.2, 0.9, 0.3], "
             "i: [0.8, 0.3, 0.0, 1.0], g: [0.9, -0.7, 0.4, 0.6], o: [1.0, 0.5, 0.1, 0.9]}"),
        Mode(("x", "h", "c", "W", "U", "b_ih", "b_hh"), "{}", ("x", "W", "U"), ("x", "h", "c", "W", "U")))),
    "gru": Kind(_lazy("evaluate", "gru"), "one GRU step, torch's or the seed's z convention (the exam's U4 Q3 example) or from weights", (
        Mode(("h", "candidate", "z", "convention"),
             "{h: [0.5, -0.3, 0.7], candidate: [0.8, 0.4, -0.6], z: [0.7, 0.2, 0.9], convention: torch}"),
        Mode(("x", "h", "W", "U", "b_ih", "b_hh", "convention"), "{convention: torch}", ("x", "W", "U"),
             ("x", "h", "W", "U")))),
    "dice": Kind(_lazy("evaluate_grid", "dice"), "soft Dice loss, V-Net's squared form and the plain form", (
        Mode(("p", "g", "eps"), "{p: [[0.9, 0.6], [0.2, 0.1]], g: [[1, 1], [0, 0]], eps: 0}"),)),
    "cross_entropy": Kind(_lazy("evaluate_grid", "cross_entropy"), "pixel-wise binary cross-entropy", (
        Mode(("p", "g"), "{p: [[0.9, 0.6], [0.2, 0.1]], g: [[1, 1], [0, 0]]}"),)),
    "conv": Kind(_lazy("evaluate_grid", "conv"), "a 2-D convolution on a small input (the exam's 1×1 example of U3 Q4)", (
        Mode(("input", "kernel", "bias", "stride", "padding"),
             "{input: [[[100]], [[150]], [[200]]], kernel: [[[[0.5]], [[-0.3]], [[0.2]]], "
             "[[[0.1]], [[0.6]], [[-0.2]]]], stride: 1, padding: 0}"),)),
    "pool": Kind(_lazy("evaluate_grid", "pool"), "max or average pooling on a small input", (
        Mode(("input", "kernel", "stride", "padding", "kind"),
             "{input: [[1, 3, 2, 4], [5, 6, 1, 2], [7, 2, 9, 0], [3, 4, 1, 8]], kernel: 2, kind: max}"),)),
}


def exact(v):
    """YAML scalars → exact numbers: an int or a decimal as written (0.1 is 1/10, not the
    float nearest it); "1/3" is a fraction; other text (a convention, a kind) stays text."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise _bad(f"{v} is not a finite number")
        return Fraction(repr(v))
    if isinstance(v, str):
        try:
            return Fraction(v.strip())
        except (ValueError, ZeroDivisionError):
            return v
    if isinstance(v, list):
        return [exact(x) for x in v]
    if isinstance(v, dict):
        raise _bad("a value is a number or a (nested) list of numbers, not a mapping")
    if v is None:
        return None
    raise _bad(f"cannot read {v!r} as a number")


def _load(text: str, where: str):
    from archviz.spec.yamlload import load_yaml
    return load_yaml(text, where)


def parse_values(kind: str, pairs, input_file: str | None) -> dict:
    """Given values (file first, then -v) merged over the defaults of the mode they select."""
    k = KINDS[kind]
    allowed = sorted({n for m in k.modes for n in m.names})
    given: dict = {}
    if input_file:
        from archviz.spec.yamlload import load_yaml_file
        data = load_yaml_file(input_file)
        if not isinstance(data, dict):
            from archviz.errors import SpecError
            raise SpecError(f"{input_file}: expected a mapping of names to values, e.g. `a: [5, 8, 10]`",
                            code=E.EVAL_FILE)
        for name, val in data.items():
            if name not in allowed:
                from archviz.errors import SpecError, did_you_mean
                raise SpecError(f"'{kind}' takes no value '{name}'", getattr(data, "key_spans", {}).get(name),
                                code=E.EVAL_NAME, hint=did_you_mean(name, allowed) or f"one of: {', '.join(allowed)}")
            given[name] = exact(val)
    for p in pairs:
        name, sep, text = p.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {p!r}", param_hint="-v/--value")
        if name not in allowed:
            from archviz.errors import did_you_mean
            raise click.BadParameter(f"'{kind}' takes no value '{name}'. "
                                     + (did_you_mean(name, allowed) or f"One of: {', '.join(allowed)}."),
                                     param_hint="-v/--value")
        try:
            given[name] = exact(_load(text, f"-v {name}"))
        except Exception as e:      # a YAML or number error in a command-line value: a usage error
            msg = getattr(e, "message", str(e))
            raise click.BadParameter(f"{name}={text}: {msg}", param_hint="-v/--value") from None
    mode = next((m for m in k.modes[1:] if set(m.selects) & set(given)), k.modes[0])
    out = {n: exact(v) for n, v in _load(mode.defaults, f"defaults of {kind}").items()}
    stray = sorted(set(given) - set(mode.names))
    if stray:
        raise click.BadParameter(f"{', '.join(stray)} cannot be combined with {', '.join(sorted(set(given) - set(stray)))}"
                                 f" (give either {' / '.join(', '.join(m.names) for m in k.modes)})",
                                 param_hint="-v/--value")
    out.update(given)
    missing = [n for n in mode.required if out.get(n) is None]
    if missing:
        raise click.BadParameter(f"'{kind}' from {', '.join(mode.selects)} also needs: {', '.join(missing)}",
                                 param_hint="-v/--value")
    return out


_FLOAT64 = ("a float64 step is past float64's range (about ±1.8e308): eval computes in float64 where it "
            "needs exp, log, tanh, σ or a power")


def _finite(v) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, (list, tuple)):
        return all(_finite(x) for x in v)
    return True


def evaluate(kind: str, values: dict) -> "Evaluation":
    """The kind evaluated; a float64 step that overflows (an OverflowError, or an inf or a
    NaN left in a value) is an error, never a traceback or an 'inf' passed off as a result."""
    try:
        ev = KINDS[kind].fn(values)
    except OverflowError:
        raise _bad(_FLOAT64) from None
    if not all(_finite(v) for v in ev.values.values()):
        raise _bad(_FLOAT64)
    return ev


def _jsonable(v):
    if isinstance(v, Fraction):
        try:
            return {"exact": str(v), "value": float(v)}
        except OverflowError:       # past float64: JSON has no number for it
            return {"exact": str(v), "value": None}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


_EPILOG = "\b\nKinds:\n" + "\n".join(f"  {k:<14} {v.doc}" for k, v in KINDS.items())


@click.command("eval", context_settings=CONTEXT, epilog=_EPILOG)
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.option("-v", "--value", "values", multiple=True, metavar="NAME=VALUE",
              help="A value (repeatable), YAML flow syntax: -v a=[5,8,10,6,4] -v W=[[1,0],[0,1]] -v alpha=1e-4.")
@click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False), default=None,
              help="A small YAML file of values (name: value); -v values override it.")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def eval_cmd(kind, values, input_file, fmt):
    """A worked numeric example: evaluate one op on given numbers and print every step of the
    arithmetic. Exact fractions where the arithmetic allows (sums, products, ratios, Dice,
    convolution, pooling); float64 where it needs exp, log, tanh, σ or a power, and each
    such step says so. Values not given take the exam's own numbers; `-i FILE.yaml` reads
    them from a small YAML file (a: [5, 8, 10, 6, 4] on one line, i: 3 on the next).

    \b
    Examples:
      archviz eval lrn                                   # the exam's LRN example, step by step
      archviz eval lrn -v a=[1,2,3,4,5] -v i=2
      archviz eval attention                             # scores → weights → context
      archviz eval gru -v convention=seed                # z takes the candidate, as in the exam
      archviz eval lstm -v x=[1] -v h=[0] -v c=[0] -v W=[[1],[1],[1],[1]] -v U=[[0],[0],[0],[0]]
      archviz eval dice -v p=[0.9,0.2] -v g=[1,0]        # V-Net's and the plain form
      archviz eval conv -v input=[[1,2,3],[4,5,6],[7,8,9]] -v kernel=[[1,0],[0,-1]]
      archviz eval pool -v kind=avg -v kernel=3 -v stride=2 -v padding=1
    """
    vals = parse_values(kind, values, input_file)
    ev = evaluate(kind, vals)
    if fmt == "json":
        click.echo(json.dumps({"kind": kind, "title": ev.title, "formula": ev.formula, "given": ev.given,
                               "steps": ev.steps, "result": ev.result, "notes": ev.notes,
                               "values": {k: _jsonable(v) for k, v in ev.values.items()}}, indent=2,
                              ensure_ascii=False))
        return
    from archviz.clikit import _console
    _console().print(ev.text(), markup=False, highlight=False, end="", soft_wrap=True)
