"""Hand-written torch modules of the classic networks, for cross-checking archviz's static
numbers (torchvision is not a dependency; these follow torchvision's layouts and the
U-Net paper). Written independently of the specs."""
from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride=1):
        super().__init__()
        cout = 4 * width
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def resnet(block: str, depths, num_classes=1000, widths=(64, 128, 256, 512)) -> nn.Module:
    # torchvision's stem is 64 whatever the stage widths (ResNet.inplanes = 64)
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for s, (w, n) in enumerate(zip(widths, depths)):
        for i in range(n):
            stride = 2 if (s > 0 and i == 0) else 1
            if block == "basic":
                layers.append(BasicBlock(cin, w, stride))
                cin = w
            else:
                layers.append(Bottleneck(cin, w, stride))
                cin = 4 * w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def vgg(depths, num_classes=1000) -> nn.Module:
    layers, cin = [], 3
    for w, n in zip((64, 128, 256, 512, 512), depths):
        for _ in range(n):
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU()]
            cin = w
        layers.append(nn.MaxPool2d(2, 2))
    layers += [nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(512 * 49, 4096), nn.ReLU(), nn.Dropout(),
               nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, num_classes)]
    return nn.Sequential(*layers)


def alexnet(num_classes=1000) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d(6), nn.Flatten(), nn.Dropout(), nn.Linear(256 * 36, 4096), nn.ReLU(),
        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))


def alexnet_2012(num_classes=1000) -> nn.Module:
    """Krizhevsky et al. 2012, Fig. 2 on a 227x227 input: the two GPUs' halves as groups=2 on
    conv2, conv4 and conv5 (conv3 reads both); LRN after the ReLUs of conv1 and conv2.
    torch's LocalResponseNorm divides alpha by n, so the paper's alpha 1e-4 is 5 · 1e-4 here."""
    def lrn():
        return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Dropout(), nn.Linear(256 * 36, 4096), nn.ReLU(),
        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))


class UNet(nn.Module):
    """Ronneberger et al. 2015, Fig. 1: valid 3x3 convs, 2x2 pool, 2x2 up-conv, crop + concat."""

    def __init__(self, cin=1, classes=2, base=64):
        super().__init__()
        w = [base * 2 ** i for i in range(5)]

        def dc(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3), nn.ReLU(), nn.Conv2d(b, b, 3), nn.ReLU())
        self.down = nn.ModuleList([dc(cin, w[0])] + [dc(w[i], w[i + 1]) for i in range(4)])
        self.upconv = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, 2) for i in reversed(range(4))])
        self.up = nn.ModuleList([dc(w[i + 1], w[i]) for i in reversed(range(4))])
        self.head = nn.Conv2d(w[0], classes, 1)

    def forward(self, x):
        skips = []
        for i, d in enumerate(self.down):
            x = d(x)
            if i < 4:
                skips.append(x)
                x = nn.functional.max_pool2d(x, 2)
        for uc, u, s in zip(self.upconv, self.up, reversed(skips)):
            x = uc(x)
            o = (s.shape[-1] - x.shape[-1]) // 2
            x = u(torch.cat([s[..., o:o + x.shape[-2], o:o + x.shape[-1]], x], 1))
        return self.head(x)
