"""The loss curve of `archviz train-smoke`: a terminal sparkline, the spikes, and a plot
(.png or .svg, drawn by Graphviz with every point pinned: `neato -n2`).  No torch here.

A spike is a step whose loss is more than twice the lowest loss before it and higher than
that lowest loss by more than a tenth of the first loss: large jumps back up, not the noise
of a loss near zero.
"""
from __future__ import annotations

import math
import subprocess

from archviz.backends.files import write_atomic
from archviz.codes import E
from archviz.errors import UnsupportedError

BARS = "▁▂▃▄▅▆▇█"
SPIKE_FACTOR = 2.0
SPIKE_FLOOR = 0.1          # of the first loss


def sparkline(losses: list[float]) -> str:
    """One bar per step, scaled between the lowest and the highest loss."""
    lo, hi = min(losses), max(losses)
    if hi == lo:
        return BARS[0] * len(losses)
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / (hi - lo) * len(BARS)))] for v in losses)


def spikes(losses: list[float]) -> list[tuple[int, float, float]]:
    """[(step, loss, lowest loss before it)], steps numbered from 1."""
    out = []
    best = losses[0] if losses else 0.0
    for i, v in enumerate(losses[1:], start=2):
        if v > SPIKE_FACTOR * best and v - best > SPIKE_FLOOR * abs(losses[0]):
            out.append((i, v, best))
        best = min(best, v)
    return out


def report_lines(losses: list[float]) -> list[str]:
    lo = min(range(len(losses)), key=losses.__getitem__)
    hi = max(range(len(losses)), key=losses.__getitem__)
    lines = [f"curve  {sparkline(losses)}   (steps 1–{len(losses)}; lowest {losses[lo]:.4g} at step {lo + 1}, "
             f"highest {losses[hi]:.4g} at step {hi + 1})"]
    sp = spikes(losses)
    if sp:
        shown = ", ".join(f"step {s}: {v:.4g} after {b:.4g}" for s, v, b in sp[:5])
        lines.append(f"spikes {shown}" + (f" … ({len(sp)} in all)" if len(sp) > 5 else "")
                     + "  — the loss jumped back up (try a lower --lr)")
    else:
        lines.append("spikes none (no step rose to twice the lowest loss before it)")
    return lines


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def curve_dot(losses: list[float], title: str, width: float = 480.0, height: float = 240.0) -> str:
    """DOT with every position pinned (points): the axes, ticks, the curve and its points."""
    n = len(losses)
    lo, hi = min(0.0, min(losses)), max(losses)
    span = (hi - lo) or 1.0
    x0, y0 = 60.0, 40.0

    def X(i):
        return x0 + (i / max(n - 1, 1)) * width

    def Y(v):
        return y0 + (v - lo) / span * height

    out = ['digraph loss {', '  graph [splines=line, outputorder=edgesfirst, pad=0.2];',
           '  node [shape=point, width=0.04, color="#1f77b4", label=""];',
           '  edge [arrowhead=none, color="#1f77b4", penwidth=1.5];',
           f'  title [shape=plaintext, width=0, height=0, fontsize=12, label="{_esc(title)}", '
           f'pos="{x0 + width / 2:.1f},{y0 + height + 24:.1f}!"];']
    text = 'shape=plaintext, width=0, height=0, fontsize=9, fontcolor="#333333"'
    out += [f'  ax0 [shape=point, width=0.01, color=black, pos="{x0:.1f},{y0:.1f}!"];',
            f'  axx [shape=point, width=0.01, color=black, pos="{x0 + width:.1f},{y0:.1f}!"];',
            f'  axy [shape=point, width=0.01, color=black, pos="{x0:.1f},{y0 + height:.1f}!"];',
            '  ax0 -> axx [color=black, penwidth=1]; ax0 -> axy [color=black, penwidth=1];',
            f'  xl [{text}, label="step", pos="{x0 + width / 2:.1f},{y0 - 28:.1f}!"];',
            f'  yl [{text}, label="loss", pos="{x0 - 60:.1f},{y0 + height / 2:.1f}!"];']
    for k in range(5):                       # y ticks: 5 values from the lowest to the highest
        v = lo + span * k / 4
        out.append(f'  yt{k} [{text}, label="{v:.3g}", pos="{x0 - 18:.1f},{Y(v):.1f}!"];')
    step = max(1, math.ceil(n / 10))
    for i in list(range(0, n, step)) + ([n - 1] if (n - 1) % step else []):
        out.append(f'  xt{i} [{text}, label="{i + 1}", pos="{X(i):.1f},{y0 - 12:.1f}!"];')
    spk = {s - 1 for s, _, _ in spikes(losses)}
    for i, v in enumerate(losses):
        style = ', color="#d62728", width=0.08' if i in spk else ""
        out.append(f'  p{i} [pos="{X(i):.1f},{Y(v):.1f}!"{style}];')
    out += [f'  p{i} -> p{i + 1};' for i in range(n - 1)]
    out.append("}")
    return "\n".join(out) + "\n"


def write_plot(path: str, losses: list[float], title: str) -> None:
    """The curve as .png or .svg (Graphviz, positions pinned); atomic."""
    from archviz.backends.render.engine import PNG_DPI, dot_binary
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext not in ("png", "svg"):
        raise UnsupportedError(f"cannot write a loss plot as '.{ext}'", hint="use .png or .svg", code=E.DIAGRAM_FORMAT)
    cmd = [dot_binary(), "-Kneato", "-n2", f"-T{ext}"] + ([f"-Gdpi={PNG_DPI}"] if ext == "png" else [])
    res = subprocess.run(cmd, input=curve_dot(losses, title).encode(), capture_output=True, timeout=60)
    if res.returncode != 0:
        from archviz.backends.render.engine import GraphvizFailedError
        raise GraphvizFailedError("Graphviz failed to draw the loss plot: "
                                  + res.stderr.decode("utf-8", "replace").strip()[-200:])
    write_atomic(path, res.stdout)


def print_report(con, m, losses: list[float], loss: str, lr: float, batch: int, plot: str | None) -> None:
    """What `archviz train-smoke` prints after the steps: first → last, the curve, the
    spikes, the loss's formula, the output size, and the plot when asked."""
    from archviz.ops.base import fmt_shape
    from archviz.spec.losses import describe
    down = losses[-1] < losses[0]
    con.print(f"{m.name}: {loss} over {len(losses)} steps: {losses[0]:.4f} → {losses[-1]:.4f} "
              + ("[green](going down)[/green]" if down else "[red](not going down)[/red]"))
    for line in report_lines(losses):
        con.print("  " + line, markup=False, highlight=False)
    con.print(f"  loss   {describe(loss)}", markup=False, highlight=False)
    for name, shape in m.output_shapes.items():
        note = ""
        if len(shape) == 4:
            note = f": {shape[1]} classes per pixel over {shape[2]}×{shape[3]} pixels"
            if min(shape[2:]) < 32:
                note += " — too small to call a segmentation; give a larger input size"
        con.print(f"  output {name} {fmt_shape(shape)}{note}", markup=False, highlight=False)
    if plot:
        write_plot(plot, losses, f"{m.name}: {loss}, lr {lr:g}, batch {batch}")
        con.print(f"  wrote {plot}", markup=False)
