"""The audio and image encoders (PyTorch), trained from scratch.

- Image encoder: a small CNN on the (3, S, S) image with two coordinate
  channels (so a cell's features can say where it is) -> a feature map of
  ``grid`` x ``grid`` cells; a 1x1 projection gives each cell's
  localization embedding; a *separate* projection of the whole map gives the
  global embedding used for the audio-visual alignment (retrieval).
- Audio encoder: a CNN on the log spectrogram (what is heard) plus, when
  the contract says so (``AvSpec.pair_features``), an MLP on the array's
  pair features (from where) -> a localization embedding and, through its
  own projection, a global embedding. A model fused with the projected
  acoustic image (``AvSpec.acoustic``) hears no pair features: the
  direction is the acoustic image's job, what sounds the network's.

The localization map is the cosine similarity between the audio's
localization embedding and each cell's.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from av_perception.av_heatmap.frontend import AvSpec


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def _coords(b: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    ys = torch.linspace(-1.0, 1.0, h, dtype=like.dtype, device=like.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=like.dtype, device=like.device)
    gy = ys.view(1, 1, h, 1).expand(b, 1, h, w)
    gx = xs.view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([gx, gy], dim=1)


class ImageEncoder(nn.Module):
    """(B, 3, S, S) in [0, 1] -> cell embeddings (B, D, G, G), global (B, E).

    Strided 3x3 convolutions down to the grid, then (``spec.context``) 3x3
    ones at the grid's resolution, then 1x1 ones only: a cell sees about
    two to three cells' width of the image (what an object looks like, not
    the room it stands in, which a few hundred training rooms would let it
    memorise). The global embedding is a projection of the cells' max and
    mean."""

    def __init__(self, spec: AvSpec, dim: int = 64, global_dim: int = 64) -> None:
        super().__init__()
        layers, c, size = [], 5, spec.image_size
        for cout in (32, 64, 96):
            layers.append(_conv(c, cout, 2))
            c, size = cout, size // 2
            if size == spec.grid:
                break
        if size != spec.grid:
            raise ValueError(f'image_size {spec.image_size} does not reduce to grid {spec.grid}')
        for _ in range(spec.context):
            layers.append(_conv(c, 96))
            c = 96
        self.body = nn.Sequential(*layers, nn.Conv2d(c, 128, 1), nn.BatchNorm2d(128),
                                  nn.ReLU(inplace=True))
        self.loc = nn.Conv2d(128 + 2, dim, 1)
        self.glob = nn.Sequential(nn.Linear(2 * 128, 128), nn.ReLU(inplace=True),
                                  nn.Dropout(0.2), nn.Linear(128, global_dim))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = image.shape
        x = torch.cat([(image - 0.5) / 0.25, _coords(b, h, w, image)], dim=1)
        f = self.body(x)
        cells = F.normalize(self.loc(torch.cat([f, _coords(b, f.shape[2], f.shape[3], f)], 1)),
                            dim=1)
        pooled = torch.cat([f.flatten(2).max(dim=2).values, f.flatten(2).mean(dim=2)], dim=1)
        g = F.normalize(self.glob(pooled), dim=1)
        return cells, g


class AudioEncoder(nn.Module):
    """(B, 1, bands, frames) log spectrogram [+ (B, n) pair features] ->
    localization embedding (B, D), global (B, E)."""

    def __init__(self, spec: AvSpec, dim: int = 64, global_dim: int = 64) -> None:
        super().__init__()
        self.spec_net = nn.Sequential(_conv(1, 16), nn.MaxPool2d(2), _conv(16, 32),
                                      nn.MaxPool2d(2),
                                      _conv(32, 64), nn.MaxPool2d(2), _conv(64, 96),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.pair_net = None
        if spec.pair_features:
            self.pair_net = nn.Sequential(nn.Linear(spec.gcc.n_features, 128),
                                          nn.ReLU(inplace=True), nn.Linear(128, 96),
                                          nn.ReLU(inplace=True))
        self.trunk = nn.Sequential(nn.Linear(96 + (96 if spec.pair_features else 0), 128),
                                   nn.ReLU(inplace=True), nn.Dropout(0.2))
        self.loc = nn.Linear(128, dim)
        self.glob = nn.Linear(128, global_dim)
        # log10 power of the sim's levels: about -12 (noise floor) to -3
        self.register_buffer('spec_mean', torch.tensor(-8.0))
        self.register_buffer('spec_std', torch.tensor(2.0))

    def forward(self, spec: torch.Tensor, pair: torch.Tensor | None = None) \
            -> tuple[torch.Tensor, torch.Tensor]:
        s = self.spec_net((spec - self.spec_mean) / self.spec_std)
        if self.pair_net is not None:
            s = torch.cat([s, self.pair_net(pair)], dim=1)
        h = self.trunk(s)
        return F.normalize(self.loc(h), dim=1), F.normalize(self.glob(h), dim=1)


class AvModel(nn.Module):
    """Both encoders; ``forward`` is the exported graph: the localization map
    (cosine similarity per cell, (B, G, G)) and the two global embeddings."""

    def __init__(self, spec: AvSpec, dim: int = 64, global_dim: int = 64) -> None:
        super().__init__()
        self.image = ImageEncoder(spec, dim, global_dim)
        self.audio = AudioEncoder(spec, dim, global_dim)

    def forward(self, image, spec, pair=None):
        cells, gv = self.image(image)
        a, ga = self.audio(spec, pair)
        cos = torch.einsum('bd,bdhw->bhw', a, cells)
        return cos, ga, gv
