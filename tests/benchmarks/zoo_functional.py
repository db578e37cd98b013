"""Same function as torchvision, not just the same counts: for each zoo spec, build the
torchvision model from its constructor (random weights, no download), load its state_dict
into archviz's lowered module through the key mapping below, run both in float64 in eval
mode on the same random images and report max |Δ| (must be <= 1e-9), with the counts.

Outside CI and outside the project's dependencies: torchvision is a reference, never a
requirement. Run it in a venv that has torchvision (docs/zoo.md records a run):

    PYTHONPATH=. /work/scratch/tv/bin/python tests/benchmarks/zoo_functional.py [NAME ...]

Without torchvision it says so and exits 0.

The key mapping. archviz node ids are identifiers (no bare numbers), and a repeated node's
copies count from 0, so torchvision's ``features.<k>`` (stem at 0) cannot be spelt as is;
everything else keeps torchvision's names where it has one. Every rule is written out here
and the mapping is strict: every torchvision key maps to one archviz key of the same shape
(the three learned tensors below are squeezed, documented), nothing is left over on either
side, and ``load_state_dict(strict=True)`` is used.

mobilenet_v2      features.0.{0,1}            -> stem.{conv,bn}
                  features.<k>.conv.<m>       -> blocks.<k-1>.<part>   (k = 1..17)
                      parts [expand,] dw, project, project_bn (expand only when t != 1);
                      a Conv2dNormActivation part's .0/.1 -> .conv/.bn
                  features.18.{0,1}           -> head.{conv,bn}
                  classifier.1                -> classifier
efficientnet_b0   features.0.{0,1}            -> stem.{conv,bn}
                  features.<s>.<j>.block.<m>  -> stages.<s-1>.blocks.<j>.<part>   (s = 1..7)
                      parts [expand,] dw, se, project (expand only when t != 1);
                      Conv2dNormActivation .0/.1 -> .conv/.bn; se keeps fc1, fc2
                  features.8.{0,1}            -> head.{conv,bn}
                  classifier.1                -> classifier
convnext_tiny     features.0.0 / features.0.1 -> stem / stem_norm.ln
                  features.<2s+1>.<j>.block.{0,2,3,5} -> stages.<s>.blocks.<j>.{dwconv,norm,pwconv1,pwconv2}
                  features.<2s+1>.<j>.layer_scale     -> stages.<s>.blocks.<j>.layer_scale.weight
                  features.<2s+2>.{0,1}       -> stages.<s>.{downsample_norm.ln, downsample}
                  classifier.0 / classifier.2 -> norm.ln / classifier
vit_b_16          class_token (1, 1, D)       -> class_token.weight (1, D)       squeezed
                  encoder.pos_embedding (1, T, D) -> encoder.pos_embedding.weight (T, D)   squeezed
                  encoder.layers.encoder_layer_<i> -> encoder.layers.<i>
                  ...mlp.0 / mlp.3            -> ...mlp.linear_1 / mlp.linear_2 (MLPBlock's names
                                                 before version 2, which it still loads)
                  conv_proj, ln_1, self_attention, ln_2, encoder.ln, heads.head: the same
(convnext's layer_scale is (C, 1, 1) on both sides: only its name gains `.weight`.)
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = os.path.join(ROOT, "specs")
TOLERANCE = 1e-9

# torchvision's own figures (torch 2.14.1, torchvision 0.29.1), as issue 12 gives them: params,
# buffers (num_batches_tracked included), MACs at 224x224 (conv + linear + matmul/attention).
EXPECTED = {
    "mobilenet_v2": (3_504_872, 34_164, 300_774_272),
    "efficientnet_b0": (5_288_548, 42_065, 385_814_752),
    "convnext_tiny": (28_589_128, 0, 4_455_531_264),
    "vit_b_16": (86_567_656, 0, 17_563_828_224),
    "shufflenet_v2_x1_0": (2_278_604, 16_236, 144_907_992),
}


def _cna(rest: str) -> str:
    """torchvision's Conv2dNormActivation children .0 (conv) and .1 (norm) -> archviz's block ids."""
    i, _, tail = rest.partition(".")
    return {"0": "conv", "1": "bn"}[i] + "." + tail


def map_mobilenet_v2(key: str, tv) -> str:
    last = len(tv.features) - 1
    if m := re.fullmatch(r"features\.(\d+)\.(.+)", key):
        k, rest = int(m[1]), m[2]
        if k == 0:
            return "stem." + _cna(rest)
        if k == last:
            return "head." + _cna(rest)
        j, _, tail = rest.removeprefix("conv.").partition(".")
        expands = len(tv.features[k].conv) == 4
        part = (["expand", "dw", "project", "project_bn"] if expands else ["dw", "project", "project_bn"])[int(j)]
        return f"blocks.{k - 1}.{part}." + (_cna(tail) if part in ("expand", "dw") else tail)
    if key.startswith("classifier.1."):
        return "classifier." + key.removeprefix("classifier.1.")
    raise KeyError(key)


def map_efficientnet_b0(key: str, tv) -> str:
    last = len(tv.features) - 1
    if m := re.fullmatch(r"features\.(\d+)\.(.+)", key):
        s, rest = int(m[1]), m[2]
        if s == 0:
            return "stem." + _cna(rest)
        if s == last:
            return "head." + _cna(rest)
        j, mm, tail = re.fullmatch(r"(\d+)\.block\.(\d+)\.(.+)", rest).groups()
        expands = len(tv.features[s][int(j)].block) == 4
        part = (["expand", "dw", "se", "project"] if expands else ["dw", "se", "project"])[int(mm)]
        return f"stages.{s - 1}.blocks.{j}.{part}." + (tail if part == "se" else _cna(tail))
    if key.startswith("classifier.1."):
        return "classifier." + key.removeprefix("classifier.1.")
    raise KeyError(key)


def map_convnext_tiny(key: str, tv) -> str:
    if m := re.fullmatch(r"features\.0\.([01])\.(.+)", key):
        return ("stem." if m[1] == "0" else "stem_norm.ln.") + m[2]
    if m := re.fullmatch(r"features\.(\d+)\.(\d+)\.(.+)", key):
        f, j, rest = int(m[1]), m[2], m[3]
        s = (f - 1) // 2
        if f % 2 == 1:       # a stage of blocks
            if rest == "layer_scale":
                return f"stages.{s}.blocks.{j}.layer_scale.weight"
            i, _, tail = rest.removeprefix("block.").partition(".")
            part = {"0": "dwconv", "2": "norm", "3": "pwconv1", "5": "pwconv2"}[i]
            return f"stages.{s}.blocks.{j}.{part}.{tail}"
        return f"stages.{s}." + ("downsample_norm.ln." if j == "0" else "downsample.") + rest
    if m := re.fullmatch(r"classifier\.([02])\.(.+)", key):
        return ("norm.ln." if m[1] == "0" else "classifier.") + m[2]
    raise KeyError(key)


def map_vit_b_16(key: str, tv) -> str:
    if key == "class_token":
        return "class_token.weight"
    if key == "encoder.pos_embedding":
        return "encoder.pos_embedding.weight"
    if m := re.fullmatch(r"encoder\.layers\.encoder_layer_(\d+)\.(.+)", key):
        rest = re.sub(r"^mlp\.0\.", "mlp.linear_1.", m[2])
        rest = re.sub(r"^mlp\.3\.", "mlp.linear_2.", rest)
        return f"encoder.layers.{m[1]}.{rest}"
    if key.split(".")[0] in ("conv_proj", "encoder", "heads"):
        return key
    raise KeyError(key)


def map_shufflenet_v2_x1_0(key: str, tv) -> str:
    """The spec's ids are torchvision's module names with "_" for "." (conv1.0 is conv1_0,
    stage2.0.branch2.3 is stage2.0.branch2_3)."""
    return re.sub(r"(conv1|conv5|branch1|branch2)\.(\d+)", r"\1_\2", key)


MAPPINGS = {"mobilenet_v2": map_mobilenet_v2, "efficientnet_b0": map_efficientnet_b0,
            "convnext_tiny": map_convnext_tiny, "vit_b_16": map_vit_b_16,
            "shufflenet_v2_x1_0": map_shufflenet_v2_x1_0}
SQUEEZED = {"class_token", "encoder.pos_embedding"}      # torchvision's leading 1 of (1, ., D)


def randomise(model, torch, seed: int) -> None:
    """Every float tensor of the state dict drawn at random, so nothing is trivially equal
    (torchvision initialises ViT's head and class token to zeros, ConvNeXt's layer scale to
    1e-6, batch norm to the identity): weights ~ N(0, 1/fan_in), biases and layer scales ~
    N(0, 0.1²) (norm weights 1 + that), running means ~ N(0, 0.1²), variances ~ U(0.5, 1.5)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=gen, dtype=t.dtype)
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_var":
                t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) + 0.5)
            elif t.dim() >= 2 and name not in SQUEEZED and leaf != "layer_scale":
                t.copy_(noise / (t[0].numel() ** 0.5))
            elif leaf == "weight" and t.dim() == 1:      # a norm's scale
                t.copy_(1 + 0.1 * noise)
            else:
                t.copy_(0.1 * noise)


def calibrate(model, torch, seed: int, batches: int = 2, batch: int = 8) -> None:
    """Batch-norm statistics measured on random images (a cumulative average over a few
    batches, stochastic depth off), as training would leave them: with arbitrary running
    statistics the signal of a deep network fades (EfficientNet's 16 gated blocks leave
    logits that hardly depend on the image), and the comparison would test little."""
    import torch.nn as nn
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    sd = [m for m in model.modules() if type(m).__name__ == "StochasticDepth"]
    saved = [m.p for m in sd]
    for m in sd:
        m.p = 0.0
    gen = torch.Generator().manual_seed(seed + 2)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(batch, 3, 224, 224, generator=gen, dtype=torch.float64))
    model.eval()
    for m, p in zip(sd, saved):
        m.p = p


def compare(name: str, torch, torchvision, archviz, batch: int = 2, seed: int = 0) -> dict:
    import torch.nn as nn
    from torch.utils.flop_counter import FlopCounterMode
    from torch.nn.attention import SDPBackend, sdpa_kernel

    tv = getattr(torchvision.models, name)(weights=None).eval()
    counts = (sum(p.numel() for p in tv.parameters()), sum(b.numel() for b in tv.buffers()))
    with FlopCounterMode(display=False) as fc, sdpa_kernel(SDPBackend.MATH):   # MATH: attention's bmm counted
        tv(torch.zeros(1, 3, 224, 224))
    tv_macs = fc.get_total_flops() // 2
    tv = tv.double()
    randomise(tv, torch, seed)
    calibrate(tv, torch, seed)

    model = archviz.load(os.path.join(SPECS, f"{name}.yaml"), batch=batch)
    ours = archviz.to_torch(model, dtype=torch.float64).eval()
    theirs = ours.state_dict()
    mapped = {}
    for k, v in tv.state_dict().items():
        k2 = MAPPINGS[name](k, tv)
        if k2 in mapped:
            raise AssertionError(f"{name}: two torchvision keys map to {k2}")
        if k in SQUEEZED:
            v = v.squeeze(0)
        if k2 not in theirs:
            raise AssertionError(f"{name}: {k} -> {k2}, which archviz's module does not have")
        if tuple(v.shape) != tuple(theirs[k2].shape):
            raise AssertionError(f"{name}: {k} {tuple(v.shape)} -> {k2} {tuple(theirs[k2].shape)}")
        mapped[k2] = v
    left = sorted(set(theirs) - set(mapped))
    if left:
        raise AssertionError(f"{name}: archviz keys with no torchvision key: {left[:5]}")
    ours.load_state_dict(mapped, strict=True)

    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    with torch.no_grad():
        t0 = time.perf_counter()
        want = tv(x)
        got = ours(x)
        secs = time.perf_counter() - t0
    delta = (want - got).abs().max().item()
    # the check can fail: the two images give different logits, and a wrong key mapping (one
    # weight swapped for another of the same shape) moves the output far past the tolerance
    spread = (want[0] - want[-1]).abs().max().item()
    r_max = want.abs().max().item()
    return {"name": name, "params": counts[0], "buffers": counts[1], "macs": tv_macs,
            "archviz": (model.totals["params"], model.totals["buffers"], model.totals["macs"] // batch),
            "keys": len(mapped), "max_abs": r_max, "spread": spread, "delta": delta, "secs": secs,
            "ok": delta <= TOLERANCE and spread > 1e-2 * r_max and (counts[0], counts[1], tv_macs) == EXPECTED[name]
            == (model.totals["params"], model.totals["buffers"], model.totals["macs"] // batch)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"models to compare (default: all of {', '.join(EXPECTED)})")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in EXPECTED]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)} (choose from {', '.join(EXPECTED)})")
    try:
        import torch
        import torchvision
    except ImportError:
        print("skipped: torchvision is not installed here (it is a reference, never a dependency; "
              "run this in a venv that has it)")
        return 0
    sys.path.insert(0, ROOT)
    import archviz

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, float64, eval, "
          f"batch {args.batch}, seed {args.seed}, tolerance {TOLERANCE:g}")
    print(f"{'model':<16} {'params':>12} {'buffers':>8} {'MACs @224':>16} {'keys':>5} {'max|y|':>9} {'spread':>9} "
          f"{'max|Δ|':>9}  result")
    bad = 0
    for name in args.names or EXPECTED:
        r = compare(name, torch, torchvision, archviz, args.batch, args.seed)
        same = r["archviz"] == (r["params"], r["buffers"], r["macs"])
        print(f"{name:<16} {r['params']:>12,} {r['buffers']:>8,} {r['macs']:>16,} {r['keys']:>5} "
              f"{r['max_abs']:>9.3g} {r['spread']:>9.3g} {r['delta']:>9.2e}  "
              + ("ok" if r["ok"] else f"FAIL (archviz counts {r['archviz']}{'' if same else ', differ'})"))
        bad += not r["ok"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
