"""Finding and building an import TARGET: `package.module:callable` or `path/to/file.py:callable`
(a factory or a class), built on the meta device (no weights are allocated)."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
import traceback

from archviz.codes import E
from archviz.errors import TorchImportError, did_you_mean

_SHAPE = re.compile(r"^\d+(?:[x,]\d+)*$")
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32")
TARGET_HINT = "TARGET is package.module:callable (torchvision.models:resnet50) or path/to/file.py:callable"


def parse_input(text: str) -> tuple:
    """'image=3x224x224' or 'tokens=128:int64' → (name, shape, dtype). Raises ValueError."""
    name, eq, rest = text.partition("=")
    if not eq or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise ValueError(f"expected NAME=SHAPE[:DTYPE] (image=3x224x224, tokens=128:int64), got {text!r}")
    shape, _c, dtype = rest.partition(":")
    if not _SHAPE.match(shape) or any(int(d) == 0 for d in re.split("[x,]", shape)):
        raise ValueError(f"the shape of '{name}' must be positive sizes joined by x (3x224x224), got {shape!r}")
    dtype = dtype or "float32"
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} for '{name}': one of {', '.join(DTYPES)}")
    return name, tuple(int(d) for d in re.split("[x,]", shape)), dtype


def split_target(target: str) -> tuple[str, str]:
    where, colon, attr = target.rpartition(":")
    if not colon or not where or not attr:
        raise ValueError(f"{target!r} names no callable: {TARGET_HINT}")
    return where, attr


def find(target: str):
    """The callable a TARGET names (TorchImportError E0611 when it cannot be found)."""
    where, attr = split_target(target)
    if where.endswith(".py") or os.sep in where or "/" in where:
        mod = _load_file(where)
    else:
        try:
            mod = importlib.import_module(where)
        except ImportError as e:
            raise TorchImportError(f"cannot import module '{where}': {e}", code=E.IMPORT_TARGET,
                                   hint=TARGET_HINT) from None
        except Exception as e:              # the module's own code raised while importing
            raise TorchImportError(f"importing '{where}' raised {type(e).__name__}: {e} ({_frame(e)})",
                                   code=E.IMPORT_TARGET) from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            raise TorchImportError(f"'{where}' has no '{attr}'", code=E.IMPORT_TARGET,
                                   hint=did_you_mean(part, names) or TARGET_HINT)
        obj = getattr(obj, part)
    if not callable(obj):
        raise TorchImportError(f"'{target}' is a {type(obj).__name__}, not a callable", code=E.IMPORT_TARGET,
                               hint=TARGET_HINT)
    return obj


def _load_file(path: str):
    if not os.path.isfile(path):
        raise TorchImportError(f"no such file: {path}", code=E.IMPORT_TARGET, hint=TARGET_HINT)
    name = "archviz_target_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)          # the file's own imports of its neighbours
    try:
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    except Exception as e:
        sys.modules.pop(name, None)
        raise TorchImportError(f"running {path} raised {type(e).__name__}: {e} ({_frame(e)})",
                               code=E.IMPORT_TARGET) from None
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return mod


@contextlib.contextmanager
def weights_on_meta():
    """Every parameter and buffer a module registers moves to the meta device (no storage), while
    the factory's other tensor arithmetic runs as written (RegNet computes its widths with torch
    ops and .tolist(), which a torch.device("meta") context breaks). Each weight exists on the CPU
    only between its torch.empty and its registration, uninitialised."""
    from torch import nn
    reg_p, reg_b = nn.Module.register_parameter, nn.Module.register_buffer

    def param(self, name, p):
        if p is not None and p.device.type != "meta":
            p = type(p)(p.data.to("meta"), p.requires_grad)
        return reg_p(self, name, p)

    def buffer(self, name, t, persistent=True):
        return reg_b(self, name, None if t is None else t.to("meta"), persistent)
    nn.Module.register_parameter, nn.Module.register_buffer = param, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = reg_p, reg_b


def build(fn, kwargs: dict, device: str = "meta"):
    """fn(**kwargs) with its weights on `device` (meta: no storage); E0612 when it raises or
    returns no module."""
    import torch
    try:
        with weights_on_meta() if device == "meta" else torch.device(device):
            model = fn(**kwargs)
    except Exception as e:
        raise TorchImportError(f"building the model raised {type(e).__name__}: {e} ({_frame(e)})",
                               code=E.IMPORT_CALL, hint="check --kwargs (a JSON object of the callable's "
                               "keyword arguments)") from None
    if not isinstance(model, torch.nn.Module):
        raise TorchImportError(f"the target returned a {type(model).__name__}, not a torch.nn.Module",
                               code=E.IMPORT_CALL, hint="name a factory or a class of nn.Module")
    return model


def _frame(e) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    return f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "no traceback"
