r"""A DDPM-style UNet (Ho et al. 2020, the network of the DDPM, DDIM and PNDM CIFAR-10 models).

The network maps ``(x, t)`` to a tensor of ``x``'s shape (``eps`` for an eps-prediction model), with
``t`` a batch of float times (training indices for a DDPM model; non-integer values are fine: the
sinusoidal embedding is continuous). Layout: a sinusoidal time embedding followed by a two-layer MLP;
``len(ch_mult)`` resolution levels of ``num_res_blocks`` residual blocks (GroupNorm, SiLU, 3x3 conv,
time projection, dropout), self-attention at the resolutions in ``attn_resolutions``, strided-conv
downsampling, a middle block (res, attention, res) and an upsampling path with skip connections.

>>> import torch
>>> net = UNet.preset("tiny")
>>> net(torch.zeros(2, 1, 8, 8), torch.tensor([0.0, 999.0])).shape
torch.Size([2, 1, 8, 8])
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNetConfig", "UNet", "PRESETS", "timestep_embedding"]


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of :class:`UNet` (JSON-serialisable through :meth:`to_dict`)."""

    image_size: int = 32
    in_channels: int = 3
    out_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.1
    num_groups: int = 32
    resamp_with_conv: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
        for name in ("image_size", "in_channels", "out_channels", "ch", "num_res_blocks", "num_groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.ch_mult or min(self.ch_mult) < 1:
            raise ValueError(f"ch_mult must be a non-empty sequence of integers >= 1, got {self.ch_mult!r}")
        if self.image_size % (2 ** (len(self.ch_mult) - 1)):
            raise ValueError(
                f"image_size={self.image_size} must be divisible by 2**(len(ch_mult)-1)="
                f"{2 ** (len(self.ch_mult) - 1)} (ch_mult={self.ch_mult})")
        for c in {self.ch * m for m in self.ch_mult}:
            if c % self.num_groups:
                raise ValueError(f"num_groups={self.num_groups} must divide every channel count; {c} is not a multiple")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict (tuples as lists)."""
        d = dataclasses.asdict(self)
        d["ch_mult"], d["attn_resolutions"] = list(self.ch_mult), list(self.attn_resolutions)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UNetConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown UNet config keys {sorted(unknown)}; allowed: {sorted(names)}")
        return cls(**d)


#: named configurations for :meth:`UNet.preset`
PRESETS: dict[str, UNetConfig] = {
    # DDPM / DDIM / PNDM CIFAR-10 network: 35.7M parameters (Ho et al. 2020, appendix B)
    "ddpm-cifar10": UNetConfig(),
    # a few thousand parameters: unit tests
    "tiny": UNetConfig(image_size=8, in_channels=1, out_channels=1, ch=8, ch_mult=(1, 2),
                       num_res_blocks=1, attn_resolutions=(4,), dropout=0.0, num_groups=4),
    # the shipped digits model: 16x16 grey images, trainable on two CPU cores in minutes
    "digits": UNetConfig(image_size=16, in_channels=1, out_channels=1, ch=16, ch_mult=(1, 2, 4),
                         num_res_blocks=1, attn_resolutions=(8,), dropout=0.0, num_groups=8),
}


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of float times ``t`` (shape ``(B,)``) as in DDPM, computed in float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / max(half - 1, 1)
                      * torch.arange(half, device=t.device, dtype=torch.float32))
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, temb_ch: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in, eps=1e-6)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_proj = nn.Linear(temb_ch, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the spatial positions."""

    def __init__(self, c: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.q, self.k, self.v = (nn.Conv2d(c, c, 1) for _ in range(3))
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.norm(x)
        q, k, v = (m(h).reshape(B, 1, C, H * W).transpose(2, 3) for m in (self.q, self.k, self.v))
        h = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(C)
        return x + self.proj_out(h.transpose(2, 3).reshape(B, C, H, W))


class Downsample(nn.Module):
    def __init__(self, c: int, with_conv: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return F.avg_pool2d(x, 2)
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c: int, with_conv: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1) if with_conv else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    """DDPM UNet; ``forward(x, t)`` with ``x`` of shape ``(B, in_channels, S, S)`` and ``t`` of shape ``(B,)``.

    Parameters
    ----------
    config : UNetConfig, optional
        Hyper-parameters; keyword arguments override single fields (``UNet(ch=64)``).
    """

    def __init__(self, config: UNetConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = config or UNetConfig()
        if overrides:
            cfg = dataclasses.replace(cfg, **overrides)
        self.config = cfg
        ch, g = cfg.ch, cfg.num_groups
        self.temb_ch = 4 * ch
        self.temb = nn.Sequential(nn.Linear(ch, self.temb_ch), nn.SiLU(), nn.Linear(self.temb_ch, self.temb_ch))
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)

        res = cfg.image_size
        chans = [ch]
        c_cur = ch
        self.down = nn.ModuleList()
        for level, mult in enumerate(cfg.ch_mult):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(c_cur, ch * mult, self.temb_ch, cfg.dropout, g))
                c_cur = ch * mult
                attns.append(AttnBlock(c_cur, g) if res in cfg.attn_resolutions else nn.Identity())
                chans.append(c_cur)
            stage = nn.Module()
            stage.blocks, stage.attns = blocks, attns
            if level != len(cfg.ch_mult) - 1:
                stage.downsample = Downsample(c_cur, cfg.resamp_with_conv)
                res //= 2
                chans.append(c_cur)
            self.down.append(stage)

        self.mid1 = ResBlock(c_cur, c_cur, self.temb_ch, cfg.dropout, g)
        self.mid_attn = AttnBlock(c_cur, g)
        self.mid2 = ResBlock(c_cur, c_cur, self.temb_ch, cfg.dropout, g)

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.ch_mult))):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResBlock(c_cur + chans.pop(), ch * mult, self.temb_ch, cfg.dropout, g))
                c_cur = ch * mult
                attns.append(AttnBlock(c_cur, g) if res in cfg.attn_resolutions else nn.Identity())
            stage = nn.Module()
            stage.blocks, stage.attns = blocks, attns
            if level != 0:
                stage.upsample = Upsample(c_cur, cfg.resamp_with_conv)
                res *= 2
            self.up.insert(0, stage)  # same index as the matching down level

        self.norm_out = nn.GroupNorm(g, c_cur, eps=1e-6)
        self.conv_out = nn.Conv2d(c_cur, cfg.out_channels, 3, padding=1)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "UNet":
        """Build a named configuration: ``ddpm-cifar10``, ``tiny`` or ``digits`` (see :data:`PRESETS`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown UNet preset {name!r}; available: {sorted(PRESETS)}")
        return cls(PRESETS[name], **overrides)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Network output for images ``x`` ``(B, C, S, S)`` at float times ``t`` ``(B,)`` (or a scalar)."""
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must have shape (B, {cfg.in_channels}, H, W), got {tuple(x.shape)}")
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = timestep_embedding(t, cfg.ch).to(self.conv_in.weight.dtype)
        temb = self.temb(emb)

        hs = [self.conv_in(x)]
        for stage in self.down:
            for block, attn in zip(stage.blocks, stage.attns):
                hs.append(attn(block(hs[-1], temb)))
            if hasattr(stage, "downsample"):
                hs.append(stage.downsample(hs[-1]))
        h = self.mid2(self.mid_attn(self.mid1(hs[-1], temb)), temb)
        for stage in reversed(self.up):
            for block, attn in zip(stage.blocks, stage.attns):
                h = attn(block(torch.cat([h, hs.pop()], dim=1), temb))
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
