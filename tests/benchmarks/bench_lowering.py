#!/usr/bin/env python
"""Benchmark (a script, not a test): the lowered ResNet-50 (archviz's fx GraphModule from
specs/resnet50.yaml) against an equivalent hand-written torch module (written below,
torchvision's layout; torchvision is not a dependency), same device, batch and dtype,
forward only, eval mode, no_grad.

The two, and a second copy of the hand-written module as a control (its ratio to the
first is the A/A noise floor), are timed in rotation (A B C, B C A, ...) so drift in
machine load hits all, and
the ratio of the medians is reported, with the median and quartiles of the per-round
paired ratios (the robust figure on a shared machine).  Target: lowered/hand-written within 3 % on CPU,
batch 8.  On a GPU (--device cuda) also try --dtype bfloat16 --channels-last [--compile].

Run: python tests/benchmarks/bench_lowering.py [--device cpu] [--batch 8] [--rounds 15]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make(64, layers[0])
        self.layer2 = self._make(128, layers[1], 2)
        self.layer3 = self._make(256, layers[2], 2)
        self.layer4 = self._make(512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def _make(self, planes, blocks, stride=1):
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def sync(dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import archviz
    from archviz.backends.torch.lower import to_torch
    m = archviz.load(os.path.join(ROOT, "specs", "resnet50.yaml"), batch=args.batch)
    dt = getattr(torch, args.dtype)
    lowered = to_torch(m, seed=0).eval().to(args.device, dt)
    hand = ResNet50().eval().to(args.device, dt)
    control = ResNet50().eval().to(args.device, dt)   # a second hand-written copy: the A/A noise floor
    n_low = sum(p.numel() for p in lowered.parameters())
    n_hand = sum(p.numel() for p in hand.parameters())
    assert n_low == n_hand, (n_low, n_hand)
    x = torch.randn(args.batch, 3, 224, 224, device=args.device, dtype=dt)
    if args.channels_last:
        lowered = lowered.to(memory_format=torch.channels_last)
        hand = hand.to(memory_format=torch.channels_last)
        control = control.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    fns = {"lowered": lowered, "hand-written": hand, "control": control}
    if args.compile:
        fns = {k: torch.compile(v) for k, v in fns.items()}
    times = {k: [] for k in fns}
    with torch.no_grad():
        for _ in range(args.warmup):  # warm-up, alternating too
            for f in fns.values():
                f(x)
        for r in range(args.rounds):
            items = list(fns.items())
            order = items[r % 3:] + items[:r % 3]      # rotate: A B C, B C A, C A B, ...
            for k, f in order:
                sync(args.device)
                t0 = time.perf_counter()
                f(x)
                sync(args.device)
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    # Paired: each round times both models back to back, so load from elsewhere on a shared
    # machine hits both; the median of the per-round ratios and its quartiles show the noise.
    def paired(a, b):
        rs = sorted(x / y for x, y in zip(times[a], times[b]))
        return statistics.quantiles(rs, n=4) if len(rs) >= 2 else (rs[0],) * 3
    q1, pmed, q3 = paired("lowered", "hand-written")
    c1, cmed, c3 = paired("control", "hand-written")
    print(f"ResNet-50 forward, {args.device}, batch {args.batch}, {args.dtype}"
          f"{', channels-last' if args.channels_last else ''}{', compiled' if args.compile else ''}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} alternating rounds")
    for k, v in med.items():
        print(f"  {k:13s} median {v * 1000:8.1f} ms   {args.batch / v:8.1f} img/s")
    r = med["lowered"] / med["hand-written"]
    print(f"  ratio of medians lowered / hand-written = {r:.4f} ({(r - 1) * 100:+.2f} %)")
    print(f"  paired per-round ratio: median {pmed:.4f} ({(pmed - 1) * 100:+.2f} %), "
          f"quartiles {q1:.4f}–{q3:.4f} -> {'within' if abs(pmed - 1) <= 0.03 else 'OUTSIDE'} 3 %")
    print(f"  control (hand-written / itself, the noise floor): median {cmed:.4f} ({(cmed - 1) * 100:+.2f} %), "
          f"quartiles {c1:.4f}–{c3:.4f}")


if __name__ == "__main__":
    main()
