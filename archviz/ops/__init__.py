"""The op registry. Importing this package registers every built-in op."""
from archviz.ops.base import (REQUIRED, Attr, Attrs, Line, Op, Params, conv_out_len, register_op,
                              registry)
from archviz.ops import activation, conv, merge, norm, parts, pool, shape, tensor  # noqa: F401  (registration)
from archviz.ops import attention, cells, decoder, recurrent, sequence, transformer  # noqa: F401  (registration: sequence models)
from archviz.ops import moe  # noqa: F401  (registration: mixture of experts)

__all__ = ["REQUIRED", "Attr", "Attrs", "Line", "Op", "Params", "conv_out_len", "register_op", "registry"]
