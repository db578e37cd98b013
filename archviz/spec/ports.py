"""What a node reads: its `in:` (a name, a list, or a mapping of port to name) bound to
input slots, and, for a node that `when:` bypasses, which of them it passes instead.
"""
from __future__ import annotations

from archviz.codes import E
from archviz.errors import SpecError


class PortBinder:
    """Mixin of :class:`archviz.spec.compile.Compiler`: a node's inputs, ports and bypass."""

    def _inputs(self, nd, scope, prev, kind, target) -> list:
        raw = nd.get("in")
        sp = nd.span_of("in")
        if raw is None:
            if prev is None:
                raise SpecError(f"node '{nd['id']}' has no input: give it `in:` (there is no previous node)",
                                nd.span, code=E.NO_INPUT)
            return [prev]
        if isinstance(raw, str):
            s = self.parse_ref(raw, scope, sp)
            return [s] if s else []
        if isinstance(raw, list):
            out = []
            for i, r in enumerate(raw):
                s = self.parse_ref(r, scope, raw.span_of(i))
                if s:
                    out.append(s)
            return out
        if isinstance(raw, dict):
            ports = (target.input_ports if kind == "op" else target.inputs) or ()
            for k in raw:
                if k not in ports:
                    raise SpecError(f"'{nd['op']}' has no input port '{k}'", raw.key_span(k), code=E.BAD_PORTS,
                                    hint="input ports: " + (", ".join(ports) or "none (use a list)"))
            missing = [p for p in ports if p not in raw]
            if kind == "block" and missing:
                raise SpecError(f"block '{target.name}' needs input(s) {', '.join(missing)}", sp, code=E.BAD_PORTS)
            return self._bind_ports(nd, raw, ports, target, scope) if kind == "op" else \
                [s for s in (self.parse_ref(raw[p], scope, raw.span_of(p)) for p in ports) if s]
        raise SpecError("`in` is a node name, a list of names, or a mapping of port to name", sp, code=E.BAD_REFERENCE)

    def _bind_ports(self, nd, raw, ports, op, scope) -> list:
        """Named inputs by slot: ins[i] is port ports[i].  Required ports (the first
        `min_inputs`) must be given, and an optional port cannot be left out before a given
        one: a slot is never filled by the next port's input, nor by a guess (torch's
        MultiheadAttention has no default key for a given value)."""
        required = ports[:op.min_inputs]
        need = [p for p in required if p not in raw]
        if need:
            given = ", ".join(p for p in ports if p in raw)
            raise SpecError(f"'{op.name}' needs input port{'s' if len(need) > 1 else ''} "
                            f"{', '.join(repr(p) for p in need)} (given: {given or 'none'})", nd.span_of("in"),
                            code=E.BAD_PORTS, hint=f"input ports, in order: {', '.join(ports)}; "
                            f"required: {', '.join(required)}")
        last = max((i for i, p in enumerate(ports) if p in raw), default=-1)
        for p in ports[:last]:
            if p not in raw:
                later = [q for q in ports[ports.index(p) + 1:] if q in raw]
                raise SpecError(f"'{op.name}' input port '{later[0]}' is given without '{p}'",
                                raw.key_span(later[0]), code=E.BAD_PORTS,
                                hint=f"give '{p}' too (input ports, in order: {', '.join(ports)})")
        syms = [self.parse_ref(raw[p], scope, raw.span_of(p)) for p in ports[:last + 1]]
        return [] if None in syms else syms     # a reference that failed (reported): no arity error on top

    def _when(self, nd, nid, vars_k, scope, ins) -> bool:
        """`when:` of one copy (it may use the repeat variable); false = bypassed."""
        sp = nd.span_of("when")
        w = self._eval(nd["when"], vars_k, sp, scope)
        if not isinstance(w, bool):
            raise SpecError(f"'when' must be true or false, got {w!r}", sp, code=E.BAD_WHEN)
        if not w and not ins:
            raise SpecError(f"node '{nid}' is bypassed (when: false) but has no input to stand for it",
                            sp, code=E.BAD_WHEN)
        return w

    def _bypass_index(self, nd, ins, kind, target) -> int | None:
        """The input slot a bypassed node passes, from `bypass:` (a port name of a mapping
        `in:`, or one of the references written in `in:`), or None when it is not given."""
        if "bypass" not in nd:
            return None
        sp = nd.span_of("bypass")
        if "when" not in nd:
            raise SpecError("`bypass` names the input a node passes when its `when:` is false; this node "
                            "has no `when:`", sp, code=E.BAD_BYPASS)
        want, raw = nd["bypass"], nd.get("in")
        if isinstance(raw, dict):
            slots = list((target.input_ports if kind == "op" else target.inputs) or ())
            for p, ref in raw.items():
                if want in (p, ref) and p in slots:
                    return slots.index(p)
            names = [f"{p} ({ref})" for p, ref in raw.items()]
        else:
            names = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else \
                [s.text for s in ins]
            if want in names:
                return names.index(want)
        raise SpecError(f"`bypass: {want}` is not one of the node's inputs", sp, code=E.BAD_BYPASS,
                        hint="inputs: " + ", ".join(map(str, names)))

    def _need_bypass(self, nd, nid, ins, through) -> None:
        if len(ins) > 1 and through is None:
            written = nd.get("in")
            first = list(written)[0] if isinstance(written, (list, dict)) and written else "x"
            raise SpecError(f"node '{nid}' has {len(ins)} inputs and is bypassed (when: false): say which "
                            "input it passes", nd.span_of("when"), code=E.BAD_BYPASS,
                            hint=f"add `bypass: {first}` (it used to pass the first input silently, "
                                 "which drops the others)")
