"""The networks of echo depth (PyTorch; training and export only).

- :class:`TeacherUNet`: RGB -> depth, a small U-Net whose decoder feature
  maps (``feat_<h>x<w>``) are what the student's SAM blocks align to.
- :class:`SamBlock`: Spatial Alignment via Matching (Yun et al., ICCV 2023).
  K learnable spatial embeddings p_k shaped like a teacher feature map
  (C x h x w); for the audio features a(j) (one per time patch of the
  spectrogram) the similarity T_k = max_j p_k . W a(j); the aligned feature
  is sum_k softmax_k(T) p_k, refined by multi-head attention whose queries
  are its h x w positions and whose keys and values are the audio features.
- :class:`EchoStudent`: an encoder on the echo features (time patches as
  tokens, and a global code), a decoder to depth; with ``sam_blocks`` > 0,
  the SAM outputs join the decoder at their resolutions (coarsest first: the
  first block has K embeddings, each finer one K/4 of the one before).
- :func:`berhu` (inverse Huber) over valid pixels, :func:`triplet` (the
  loose triplet loss between aligned student and teacher features).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_block(cin, cout), conv_block(cout, cout))


class TeacherUNet(nn.Module):
    """RGB (N, 3, S, S) in [0, 1] -> depth (N, 1, S, S) [m] and the decoder's
    feature maps at S/16, S/8, S/4, S/2 (S a multiple of 16).

    Args:
        width: channels of the first level (then x2, x4, x4, x4).
        max_depth: depth is max_depth * sigmoid(...) [m].
    """

    def __init__(self, width: int = 16, max_depth: float = 12.0) -> None:
        super().__init__()
        w = width
        self.max_depth = max_depth
        self.e0, self.e1 = double_conv(3, w), double_conv(w, 2 * w)
        self.e2, self.e3 = double_conv(2 * w, 4 * w), double_conv(4 * w, 4 * w)
        self.bott = double_conv(4 * w, 4 * w)
        self.d3 = double_conv(8 * w, 4 * w)
        self.d2 = double_conv(8 * w, 2 * w)
        self.d1 = double_conv(4 * w, w)
        self.d0 = double_conv(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x):
        up = nn.functional.interpolate
        e0 = self.e0(x)
        e1 = self.e1(F.max_pool2d(e0, 2))
        e2 = self.e2(F.max_pool2d(e1, 2))
        e3 = self.e3(F.max_pool2d(e2, 2))
        b = self.bott(F.max_pool2d(e3, 2))
        d3 = self.d3(torch.cat([up(b, scale_factor=2.0), e3], 1))
        d2 = self.d2(torch.cat([up(d3, scale_factor=2.0), e2], 1))
        d1 = self.d1(torch.cat([up(d2, scale_factor=2.0), e1], 1))
        d0 = self.d0(torch.cat([up(d1, scale_factor=2.0), e0], 1))
        depth = self.max_depth * torch.sigmoid(self.head(d0))
        return depth, b, d3, d2, d1


class SamBlock(nn.Module):
    """Spatial Alignment via Matching for one aligned layer.

    Args:
        k: number of learnable spatial embeddings.
        shape: (C, h, w) of the teacher feature map it aligns to.
        token_dim: dimension D of the audio features a(j).
        heads: attention heads (C must be divisible by it; reduced if not).

    Input (N, J, D) audio features; output (N, C, h, w).
    """

    def __init__(self, k: int, shape: tuple[int, int, int], token_dim: int, heads: int = 4):
        super().__init__()
        c, h, w = shape
        self.shape = (c, h, w)
        self.k = k
        size = c * h * w
        self.p = nn.Parameter(torch.randn(k, size) / math.sqrt(size))
        self.w = nn.Linear(token_dim, size, bias=False)        # W in T_k = max_j p_k W a(j)
        self.kv = nn.Linear(token_dim, c)
        while c % heads:
            heads -= 1
        self.attn = nn.MultiheadAttention(c, heads, batch_first=True)
        self.norm = nn.LayerNorm(c)

    def similarity(self, tokens):
        """T (N, K): for each embedding, its best match over the audio features."""
        pw = self.p @ self.w.weight                        # (K, D): p_k W
        sim = torch.einsum('kd,njd->nkj', pw, tokens) / math.sqrt(self.p.shape[1])
        return sim.max(dim=2).values

    def forward(self, tokens):
        n = tokens.shape[0]
        c, h, w = self.shape
        alpha = torch.softmax(self.similarity(tokens), dim=1)     # (N, K)
        aligned = (alpha @ self.p).reshape(n, c, h * w).transpose(1, 2)   # (N, hw, C)
        kv = self.kv(tokens)
        refined, _ = self.attn(aligned, kv, kv, need_weights=False)
        out = self.norm(aligned + refined)
        return out.transpose(1, 2).reshape(n, c, h, w)


def sam_ks(k: int, blocks: int) -> list[int]:
    """K per SAM block, coarsest first: k, k/4, k/16, ... (at least 1)."""
    return [max(1, k // 4 ** i) for i in range(blocks)]


class EchoStudent(nn.Module):
    """Echo features (N, F_ch, bins, frames) -> depth (N, 1, 64, 64) [m].

    Args:
        in_ch, bins, frames: the feature shape (bins, frames multiples of 8).
        mean, std: (in_ch, bins, frames) standardisation (buffers, exported).
        sam_shapes: teacher feature map shapes (C, h, w), coarsest first, one
            per SAM block ([] for none).
        k: embeddings of the first (coarsest) SAM block.
        width: channel multiplier of encoder and decoder.
        token_dim: dimension of the audio features (time patches).
        max_depth: output range [m].
    """

    LEVELS = (4, 8, 16, 32)   # decoder resolutions before the 64 x 64 output

    def __init__(self, in_ch: int, bins: int, frames: int, mean=None, std=None,
                 sam_shapes=(), k: int = 64, width: int = 16, token_dim: int = 64,
                 max_depth: float = 12.0) -> None:
        super().__init__()
        w = width
        self.max_depth = max_depth
        self.register_buffer('mean', torch.zeros(in_ch, bins, frames) if mean is None
                             else torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer('std', torch.ones(in_ch, bins, frames) if std is None
                             else torch.as_tensor(std, dtype=torch.float32))
        self.enc = nn.Sequential(conv_block(in_ch, 2 * w, 2), conv_block(2 * w, 2 * w),
                                 conv_block(2 * w, 4 * w, 2), conv_block(4 * w, 4 * w),
                                 conv_block(4 * w, 8 * w, 2), conv_block(8 * w, 8 * w))
        fb, ft = bins // 8, frames // 8
        if sam_shapes:  # the audio features a(j), one per time patch, for the SAM blocks
            self.tokens = nn.Linear(8 * w * fb, token_dim)
            self.pos = nn.Parameter(torch.zeros(1, ft, token_dim))
            self.token_norm = nn.LayerNorm(token_dim)
        self.squeeze = conv_block(8 * w, 4 * w, 2)
        g = 4 * w * math.ceil(fb / 2) * math.ceil(ft / 2)
        self.bridge = nn.Sequential(nn.Flatten(), nn.Linear(g, 128), nn.ReLU(inplace=True),
                                    nn.Dropout(0.1), nn.Linear(128, 4 * w * 16))
        chans = (4 * w, 4 * w, 2 * w, w)     # decoder channels at 4, 8, 16, 32
        self.chans = chans
        self.sam = nn.ModuleList(SamBlock(kk, tuple(s), token_dim)
                                 for kk, s in zip(sam_ks(k, len(sam_shapes)), sam_shapes))
        # where each SAM output joins the decoder: the level of nearest resolution
        self.sam_level = [min(range(len(self.LEVELS)), key=lambda i: abs(self.LEVELS[i] - s[1]))
                          for s in sam_shapes]
        self.fuse = nn.ModuleDict()
        for b, (lv, s) in enumerate(zip(self.sam_level, sam_shapes)):
            self.fuse[str(b)] = nn.Sequential(nn.Conv2d(chans[lv] + s[0], chans[lv], 1),
                                              nn.ReLU(inplace=True))
        self.ups = nn.ModuleList([conv_block(chans[0], chans[1]), conv_block(chans[1], chans[2]),
                                  conv_block(chans[2], chans[3]), conv_block(chans[3], w)])
        self.refine = nn.ModuleList([conv_block(chans[0], chans[0])]
                                    + [conv_block(c, c) for c in chans[1:]] + [conv_block(w, w)])
        self.head = nn.Conv2d(w, 1, 3, padding=1)

    def encode(self, x):
        """Features -> (tokens (N, J, D) or None without SAM, global code
        (N, C, 4, 4))."""
        x = (x - self.mean) / self.std
        f = self.enc(x)                                    # (N, C, bins/8, frames/8)
        n, c, fb, ft = f.shape
        tokens = None
        if len(self.sam):
            tokens = self.tokens(f.permute(0, 3, 1, 2).reshape(n, ft, c * fb)) + self.pos
            tokens = self.token_norm(tokens)
        code = self.bridge(self.squeeze(f)).reshape(n, self.chans[0], 4, 4)
        return tokens, code

    def forward(self, x):
        """Depth (N, 1, 64, 64) [m] and the SAM outputs (coarsest first)."""
        tokens, h = self.encode(x)
        aligned = [blk(tokens) for blk in self.sam]
        for lv in range(len(self.LEVELS) + 1):
            if lv:
                h = self.ups[lv - 1](F.interpolate(h, scale_factor=2.0))
            for b, (slv, a) in enumerate(zip(self.sam_level, aligned)):
                if slv == lv:
                    if a.shape[-1] != h.shape[-1]:
                        a = F.interpolate(a, size=h.shape[-2:], mode='bilinear',
                                          align_corners=False)
                    h = self.fuse[str(b)](torch.cat([h, a], 1))
            h = self.refine[lv](h)
        depth = self.max_depth * torch.sigmoid(self.head(h))
        return depth, aligned


def berhu(pred, target, valid):
    """Inverse Huber (BerHu) loss over valid pixels; c = 0.2 max |error|."""
    d = (pred - target)[valid]
    if d.numel() == 0:
        return pred.sum() * 0.0
    a = d.abs()
    c = (0.2 * a.max()).detach().clamp_min(1e-6)
    return torch.where(a <= c, a, (a * a + c * c) / (2 * c)).mean()


def triplet(student, teacher, margin: float = 0.3):
    """Loose triplet loss: each aligned student feature (anchor) nearer to its
    own teacher feature (positive) than to another sample's (negative, the
    next in the batch) by ``margin`` (unit-normalised, squared distances)."""
    n = student.shape[0]
    if n < 2:
        return student.sum() * 0.0
    s = F.normalize(student.reshape(n, -1), dim=1)
    t = F.normalize(teacher.reshape(n, -1).to(s.dtype), dim=1)
    pos = ((s - t) ** 2).sum(1)
    neg = ((s - t.roll(1, 0)) ** 2).sum(1)
    return F.relu(pos - neg + margin).mean()
