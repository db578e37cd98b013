"""Hand-written torch models for the import tests (issue 14), each written the way people write
them, not the way archviz lowers: a ResNet, a U-Net with crop-and-concat, an LSTM language
model, nn.Transformer, a small GPT with tied weights, a MobileNet-style block with SE."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: one ReLU module called twice, `out += identity`."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, widths=(8, 16, 32), num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            layers.append(nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w)))
            cin = w
        self.layer1, self.layer2, self.layer3 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def double_conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3), nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Ronneberger et al. 2015: valid convolutions, so the skip is cropped to the decoder's size."""

    def __init__(self, base=4, classes=2):
        super().__init__()
        self.down1, self.down2 = double_conv(1, base), double_conv(base, 2 * base)
        self.pool = nn.MaxPool2d(2)
        self.mid = double_conv(2 * base, 4 * base)
        self.up2 = nn.ConvTranspose2d(4 * base, 2 * base, 2, 2)
        self.dec2 = double_conv(4 * base, 2 * base)
        self.up1 = nn.ConvTranspose2d(2 * base, base, 2, 2)
        self.dec1 = double_conv(2 * base, base)
        self.head = nn.Conv2d(base, classes, 1)

    @staticmethod
    def crop(skip, x):
        dh, dw = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
        return skip[:, :, dh:dh + x.shape[2], dw:dw + x.shape[3]]

    def forward(self, x):
        s1 = self.down1(x)
        s2 = self.down2(self.pool(s1))
        m = self.mid(self.pool(s2))
        u = self.up2(m)
        d = self.dec2(torch.cat([self.crop(s2, u), u], dim=1))
        u = self.up1(d)
        d = self.dec1(torch.cat([self.crop(s1, u), u], dim=1))
        return self.head(d)


class LSTMLM(nn.Module):
    def __init__(self, vocab=50, emb=12, hidden=16, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.drop = nn.Dropout(0.2)
        self.lstm = nn.LSTM(emb, hidden, layers, batch_first=True, dropout=0.2)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        out, _ = self.lstm(self.drop(self.embed(tokens)))
        return self.decoder(self.drop(out))


class Seq2SeqTransformer(nn.Module):
    """nn.Transformer between two embeddings (batch first, no masks)."""

    def __init__(self, vocab=40, d=16, heads=2, ff=32, layers=2):
        super().__init__()
        self.src_embed, self.tgt_embed = nn.Embedding(vocab, d), nn.Embedding(vocab, d)
        self.transformer = nn.Transformer(d, heads, layers, layers, ff, dropout=0.1, batch_first=True)
        self.generator = nn.Linear(d, vocab)

    def forward(self, src, tgt):
        return self.generator(self.transformer(self.src_embed(src), self.tgt_embed(tgt)))


class CausalSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x):
        n, t, d = x.size()
        q, k, v = self.c_attn(x).split(d, dim=2)
        q = q.view(n, t, self.heads, d // self.heads).transpose(1, 2)
        k = k.view(n, t, self.heads, d // self.heads).transpose(1, 2)
        v = v.view(n, t, self.heads, d // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(n, t, d))


class GPTBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(d), CausalSelfAttention(d, heads)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's layout: learned positions wpe(arange(t)), the LM head tied to the token table."""

    def __init__(self, vocab=64, positions=16, d=32, heads=4, layers=2):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(positions, d)
        self.h = nn.ModuleList(GPTBlock(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        t = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class MobileBlock(nn.Module):
    """MobileNetV3's inverted residual with squeeze-and-excite (Howard et al. 2019)."""

    def __init__(self, c=16, expand=4, k=3):
        super().__init__()
        h = c * expand
        self.expand = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.Hardswish())
        self.depthwise = nn.Sequential(nn.Conv2d(h, h, k, padding=k // 2, groups=h, bias=False), nn.BatchNorm2d(h),
                                       nn.Hardswish())
        self.se = SqueezeExcite(h)
        self.project = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.project(self.se(self.depthwise(self.expand(x))))


# name -> (factory, inputs {name: (shape with batch 2, dtype)})
MODELS = {
    "resnet": (ResNet, {"x": ((2, 3, 32, 32), torch.float32)}),
    "unet": (UNet, {"x": ((2, 1, 44, 44), torch.float32)}),
    "lstm_lm": (LSTMLM, {"tokens": ((2, 7), torch.int64)}),
    "transformer": (Seq2SeqTransformer, {"src": ((2, 6), torch.int64), "tgt": ((2, 5), torch.int64)}),
    "gpt": (GPT, {"idx": ((2, 10), torch.int64)}),
    "mobile_se": (MobileBlock, {"x": ((2, 16, 12, 12), torch.float32)}),
}


def example(name, device="cpu"):
    """(model with random weights, inputs {name: tensor})."""
    factory, ins = MODELS[name]
    torch.manual_seed(0)
    model = factory()
    g = torch.Generator().manual_seed(1)
    xs = {}
    for k, (shape, dtype) in ins.items():
        xs[k] = torch.randint(0, 40, shape, generator=g) if dtype == torch.int64 else torch.randn(shape, generator=g)
    return model, xs


__all__ = ["MODELS", "example", "math"]
