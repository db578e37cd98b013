"""What the torch commands (`export`, `verify`, `bench`, `train-smoke`) share on the command
line: torch present, the device usable, torch's own failures as LoweringErrors, and the
learning rate checked.  torch is imported inside the functions only."""
from __future__ import annotations

import functools

import click

from archviz.codes import E
from archviz.errors import ArchvizError


def _need_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        from archviz.errors import UnsupportedError
        raise UnsupportedError("this command needs PyTorch: pip install 'archviz[torch]' "
                               "(or pip install torch==2.13.0)", code=E.NO_TORCH) from None


def _check_device(device: str) -> None:
    """A clear error for a device torch cannot use here (instead of torch's assertion)."""
    import torch
    if device.startswith("cuda") and not torch.cuda.is_available():
        from archviz.errors import UnsupportedError
        raise UnsupportedError(f"device '{device}' is not available: this torch "
                               f"({torch.__version__}) sees no CUDA GPU", code=E.NO_CUDA,
                               hint="use --device cpu (or meta for verify)")


def _lowering_errors(fn):
    """torch failures inside lowering become LoweringErrors (exit 1, no traceback)."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except ArchvizError:
            raise
        except (RuntimeError, ValueError, TypeError, NotImplementedError, AssertionError, IndexError) as e:
            if click.get_current_context().find_root().params.get("traceback"):
                raise
            from archviz.errors import LoweringError
            raise LoweringError(f"torch failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                                code=E.TORCH_FAILED, hint="run with --traceback for details") from None
    return wrapper


def _check_lr(ctx, param, v):
    if not 0 <= v < float("inf"):       # nan too: torch refuses it only after the model is built
        raise click.BadParameter(f"{v}: the learning rate is a finite number >= 0")
    return v
