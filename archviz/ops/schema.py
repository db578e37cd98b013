"""Checking and normalising a node's attributes against its op's schema."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from archviz.codes import E
from archviz.errors import SpecError, did_you_mean
from archviz.ir.body import Body


class _Required:
    def __repr__(self):
        return "required"


REQUIRED = _Required()


# attribute types: name -> (doc string for `archviz ops`)
ATTR_TYPES = {
    "int": "integer", "pos_int": "integer >= 1", "nonneg_int": "integer >= 0",
    "float": "number", "bool": "true/false", "str": "string",
    "int2": "integer or [h, w]", "pos_int2": "integer >= 1 or [h, w]",
    "padding2": "integer, [h, w], [top, bottom, left, right]... see docs, or 'same'/'valid'",
    "int1": "integer or [l]", "padding1": "integer, 'same' or 'valid'", "ints": "list of integers", "axes": "axis or [axes] (negative from the end)", "scale2": "number or [h, w]",
    "int2_opt": "integer, [h, w] or null",
    "block": "{op: BLOCK or OP, its params...}: a sub-network, written as a node without id and in",
}


@dataclass(frozen=True)
class Attr:
    type: str
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple | None = None
    max: int | None = None        # an upper bound archviz sets (torch may set none): see MAX_LAYERS

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class Attrs(dict):
    """Normalised attributes; read as `a.kernel` or `a['kernel']`."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None



def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, Fraction)) and not isinstance(v, bool)


def _type_name(v) -> str:
    if isinstance(v, Fraction):
        return "a fraction"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(type(v), "a list" if isinstance(v, list) else
                                    "a mapping" if isinstance(v, dict) else type(v).__name__)


def coerce(attr: Attr, v, n2: int = 2):
    """Return the normalised value or raise ValueError with a message."""
    t = attr.type
    if t in ("int", "pos_int", "nonneg_int"):
        if not _is_int(v):
            if isinstance(v, Fraction):
                raise ValueError(f"expected an integer, got the fraction {v} (use // for integer division)")
            raise ValueError(f"expected an integer, got {_type_name(v)} {v!r}")
        lo = {"int": None, "pos_int": 1, "nonneg_int": 0}[t]
        if lo is not None and v < lo:
            raise ValueError(f"must be >= {lo}, got {v}")
        if attr.max is not None and v > attr.max:
            raise ValueError(f"{v} is more than archviz's limit of {attr.max} (a bound that keeps the "
                             f"analysis fast and small; torch sets none)")
        return v
    if t == "float":
        if not _is_num(v):
            raise ValueError(f"expected a number, got {_type_name(v)} {v!r}")
        return v
    if t == "bool":
        if not isinstance(v, bool):
            raise ValueError(f"expected true or false, got {_type_name(v)} {v!r}")
        return v
    if t == "str":
        if not isinstance(v, str):
            raise ValueError(f"expected a string, got {_type_name(v)} {v!r}")
        if attr.choices and v not in attr.choices:
            raise ValueError(f"must be one of {', '.join(map(repr, attr.choices))}, got {v!r}"
                             + (f" ({did_you_mean(v, attr.choices)})" if did_you_mean(v, attr.choices) else ""))
        return v
    if t in ("int2", "pos_int2", "int1", "int2_opt"):
        if t == "int2_opt" and v is None:
            return None
        n = 1 if t == "int1" else 2
        vals = list(v) if isinstance(v, list) else [v] * n
        if len(vals) != n or not all(_is_int(x) for x in vals):
            raise ValueError(f"expected an integer or a list of {n} integers, got {v!r}")
        lo = 1 if t in ("pos_int2", "int1") else 0
        if t == "int2_opt":
            lo = 1
        if any(x < lo for x in vals):
            raise ValueError(f"values must be >= {lo}, got {v!r}")
        return tuple(vals)
    if t in ("padding2", "padding1"):
        n = 1 if t == "padding1" else 2
        if isinstance(v, str):
            if v not in ("same", "valid"):
                raise ValueError(f"padding must be an integer, a list of {n}, 'same' or 'valid', got {v!r}")
            return v
        vals = list(v) if isinstance(v, list) else [v] * n
        if len(vals) != n or not all(_is_int(x) and x >= 0 for x in vals):
            raise ValueError(f"padding must be integers >= 0 (one or a list of {n}), got {v!r}")
        return tuple(vals)
    if t == "ints":
        if not isinstance(v, list) or not all(_is_int(x) for x in v):
            raise ValueError(f"expected a list of integers, got {v!r}")
        return tuple(v)
    if t == "axes":
        vals = v if isinstance(v, list) else [v]
        if not vals or not all(_is_int(x) for x in vals):
            raise ValueError(f"expected an axis or a list of axes (integers), got {v!r}")
        return tuple(vals)
    if t == "scale2":
        vals = list(v) if isinstance(v, list) else [v, v]
        if len(vals) != 2 or not all(_is_num(x) and x > 0 for x in vals):
            raise ValueError(f"expected a positive number or a list of 2, got {v!r}")
        return tuple(vals)
    if t == "block":
        if isinstance(v, Body):
            return v
        if not isinstance(v, dict) or not isinstance(v.get("op"), str):
            raise ValueError(f"expected a mapping {{op: BLOCK, its params...}}, got {_type_name(v)} {v!r}")
        return Body(v)
    if t == "any":
        return v
    raise ValueError(f"unknown attribute type {t}")


def normalise(op, raw: dict, spans: dict, node_span, node_desc: str) -> tuple[Attrs, list]:
    """Check `raw` against `op.attrs`. Returns (attrs, errors); collects every problem."""
    errors = []
    out = Attrs()
    for key, v in raw.items():
        if key not in op.attrs:
            hint = did_you_mean(key, op.attrs)
            known = ", ".join(op.attrs) or "none"
            errors.append(SpecError(f"unknown attribute '{key}' for op '{op.name}'",
                                    spans.get(key, node_span), code=E.UNKNOWN_ATTR,
                                    hint=hint or f"attributes of {op.name}: {known}"))
            continue
        try:
            out[key] = coerce(op.attrs[key], v)
        except ValueError as e:
            errors.append(SpecError(f"attribute '{key}' of {node_desc}: {e}", spans.get(key, node_span),
                                    code=E.BAD_ATTR))
    for key, attr in op.attrs.items():
        if key in out or key in raw:
            continue
        if attr.default is REQUIRED:
            errors.append(SpecError(f"{node_desc} is missing required attribute '{key}'", node_span,
                                    code=E.MISSING_ATTR, hint=f"{key}: {attr.doc}" if attr.doc else None))
        else:
            out[key] = coerce(attr, attr.default) if attr.default is not None else None
    return out, errors
