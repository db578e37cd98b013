from archviz.spec.compile import compile_spec, parse_override

__all__ = ["compile_spec", "parse_override"]
