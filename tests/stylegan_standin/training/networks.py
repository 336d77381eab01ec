"""A small generator with the StyleGAN2-ADA Generator interface (not StyleGAN itself)."""

import math

import torch
from torch import nn

from torch_utils.ops import bias_act, upfirdn2d


class MappingNetwork(nn.Module):
    def __init__(self, z_dim, w_dim, num_ws):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        self.fc0 = nn.Linear(z_dim, w_dim)
        self.fc1 = nn.Linear(w_dim, w_dim)
        self.register_buffer("w_avg", torch.randn(w_dim))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None):
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        x = bias_act.bias_act(self.fc0(x), act="lrelu")
        x = bias_act.bias_act(self.fc1(x), act="lrelu")
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            layers = slice(None) if truncation_cutoff is None else slice(0, truncation_cutoff)
            x[:, layers] = self.w_avg.lerp(x[:, layers], truncation_psi)
        return x


class SynthesisNetwork(nn.Module):
    """One style-modulated 3×3 conv per w; 2× upsampling before every odd layer until full size."""

    def __init__(self, w_dim, num_ws, img_resolution, channels=8):
        super().__init__()
        self.num_ws, self.img_resolution = num_ws, img_resolution
        self.const = nn.Parameter(torch.randn(channels, 4, 4))
        self.affines = nn.ModuleList(nn.Linear(w_dim, channels) for _ in range(num_ws))
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1) for _ in range(num_ws)
        )
        self.torgb = nn.Conv2d(channels, 3, 1)
        self.register_buffer("noise_const", torch.randn(1, 1, img_resolution, img_resolution))

    def forward(self, ws, noise_mode="random", force_fp32=False):
        assert noise_mode in ("random", "const", "none")
        assert ws.shape[1:] == (self.num_ws, self.affines[0].in_features), ws.shape
        x = self.const.unsqueeze(0).expand(len(ws), -1, -1, -1)
        for index, (affine, conv) in enumerate(zip(self.affines, self.convs)):
            if index % 2 == 1 and x.shape[-1] < self.img_resolution:
                x = upfirdn2d.upsample2d(x)
            x = conv(x * affine(ws[:, index]).unsqueeze(-1).unsqueeze(-1))
            x = bias_act.bias_act(x, act="lrelu")
        if noise_mode == "const":
            x = x + 0.1 * self.noise_const
        elif noise_mode == "random":
            x = x + 0.1 * torch.randn_like(x)
        return self.torgb(x)


class Generator(nn.Module):
    def __init__(self, z_dim=8, w_dim=16, img_resolution=16, c_dim=0):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, 3
        self.num_ws = 2 * int(math.log2(img_resolution)) - 2
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws)
        self.synthesis = SynthesisNetwork(w_dim, self.num_ws, img_resolution)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)
