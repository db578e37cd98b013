"""The spec language: YAML loader, expressions, compiler. The compiler is imported on first
use, so that light modules of this package (losses) cost nothing to the CLI's start."""

__all__ = ["compile_spec", "parse_override"]


def __getattr__(name):
    if name in __all__:
        from archviz.spec import compile as _compile
        return getattr(_compile, name)
    raise AttributeError(f"module 'archviz.spec' has no attribute {name!r}")
