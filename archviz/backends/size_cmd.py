"""`archviz size`: what a model costs to train and serve, and whether it fits on a device.
Register with ``main.add_command(size_cmd)``; the figures come from archviz.backends.sizing."""
from __future__ import annotations

import re

import click

from archviz.clikit import CONTEXT, _console, batch_opt, check_indent, handle_errors, indent_opt, load_model, param_opt, spec_arg
from archviz.backends.sizing import human_bytes, rows
from archviz.model import DTYPE_BYTES

_UNITS = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12,
          "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}
_MEM = re.compile(r"^\s*(\d{1,6}(?:\.\d{1,6})?)\s*([a-zA-Z]{0,3})\s*$")


def parse_memory(text: str | None) -> int | None:
    """'80GiB' -> 85899345920 (GiB = 2^30, GB = 10^9; a bare number is bytes)."""
    if text is None:
        return None
    m = _MEM.match(text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise click.BadParameter(f"expected an amount such as 80GiB, 40GB or 24576MiB, got {text!r}",
                                 param_hint="--device-memory")
    from fractions import Fraction
    n = Fraction(m.group(1)) * _UNITS[unit]
    if n < 1:
        raise click.BadParameter(f"{text!r} is less than one byte", param_hint="--device-memory")
    return int(n)


def print_table(s, con) -> None:
    from rich.table import Table
    o = s.options
    t = Table(title=f"{s.name}: size at batch {s.batch}, {o.dtype}"
              + (f", context {s.context:,}" if s.context else "")
              + (", mixed precision" if o.mixed_precision else "") + f", {o.optimizer}"
              + (", activation checkpointing" if o.checkpointing else ""))
    for c in ("", "figure", "value", "what it counts"):
        t.add_column(c, overflow="fold")
    last = None
    for sec, k, v, why in rows(s):
        t.add_row(sec if sec != last else "", k, v, why)
        last = sec
    con.print(t)
    pd = s.per_device
    con.print(f"per device: {s.explain['per_device.strategy']}; {pd['devices']} device(s) = "
              f"{pd['data_parallel']} data-parallel × {pd['tensor_parallel']} tensor-parallel.")
    if pd["fits"] is not None:
        word = "fits" if pd["fits"] else "does NOT fit"
        gap = human_bytes(abs(pd["headroom_bytes"]))
        con.print(f"[bold]{word}[/bold] in {human_bytes(pd['device_memory_bytes'])} per device: "
                  + (f"{gap} to spare" if pd["fits"] else f"short by {gap}"))


@click.command("size", context_settings=CONTEXT)
@spec_arg
@click.option("--dtype", type=click.Choice(list(DTYPE_BYTES)), default="float32", show_default=True,
              help="The dtype weights, activations and the KV cache are held in.")
@click.option("--context", type=click.IntRange(min=1), default=None, metavar="L",
              help="Tokens in the KV cache for decode_step and kv_cache_bytes (default: the spec's sequence length).")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]), default="adamw",
              show_default=True, help="What the optimizer state holds (torch.optim's state after a step).")
@click.option("--mixed-precision", is_flag=True, help="Weights and grads in --dtype (16-bit), an fp32 master "
              "copy and fp32 moments in the optimizer state.")
@click.option("--checkpointing", is_flag=True, help="Activation checkpointing per top-level block.")
@click.option("--devices", type=click.IntRange(min=1), default=1, show_default=True, metavar="N")
@click.option("--strategy", type=click.Choice(["ddp", "zero1", "zero2", "zero3", "fsdp"]), default="ddp",
              show_default=True, help="How the data-parallel devices share the training state.")
@click.option("--tensor-parallel", type=click.IntRange(min=1), default=1, show_default=True, metavar="T",
              help="Megatron-style tensor-parallel degree (divides --devices).")
@click.option("--device-memory", default=None, metavar="SIZE", help="A device's memory, e.g. 80GiB: "
              "says whether the per-device figure fits, and by how much.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@indent_opt
@batch_opt
@param_opt
@handle_errors
def size_cmd(spec, dtype, context, optimizer, mixed_precision, checkpointing, devices, strategy,
             tensor_parallel, device_memory, fmt, indent, batch, params):
    """What SPEC costs to train and to serve: params (total, embedding, active), FLOPs (forward, per token,
    a training step by per-op backward rules, one decode step with a KV cache), inference memory (weights,
    KV cache) and training memory (weights, grads, optimizer state, what backward keeps), per device under a
    parallel strategy, and whether it fits. --batch is one device's micro-batch.

    \b
    Examples:
      archviz size llama --dtype bfloat16 --context 4096
      archviz size llama -p kv_heads=8 --dtype bfloat16 --mixed-precision --devices 8 --strategy zero3
      archviz size llama --dtype bfloat16 --device-memory 24GiB
      archviz size gpt2 --batch 8 --checkpointing -f json
    """
    from archviz.backends.sizing import SizeOptions, size
    check_indent(indent, fmt)
    opts = SizeOptions(dtype=dtype, context=context, optimizer=optimizer, mixed_precision=mixed_precision,
                       checkpointing=checkpointing, devices=devices, strategy=strategy,
                       tensor_parallel=tensor_parallel, device_memory=parse_memory(device_memory))
    opts.check()
    m = load_model(spec, params, batch, dtype)
    s = size(m, opts)
    if fmt == "json":
        from archviz.backends.report import dumps
        click.echo(dumps(s.to_dict(), indent), nl=False)
    else:
        print_table(s, _console())
