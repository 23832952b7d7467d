"""The CRNN: a small CNN over the line image, a BiLSTM over its columns, CTC outputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class CRNNSpec:
    """Everything needed to rebuild the network; stored inside every weights file."""

    num_classes: int
    height: int = 48
    channels: tuple[int, ...] = (32, 64, 128, 128, 192, 192)
    # Pooling after each conv block, as (height, width) factors; width is pooled 4x in total.
    pools: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (1, 1), (2, 1), (1, 1), (2, 1))
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.2
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["pools"] = [list(p) for p in self.pools]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CRNNSpec:
        return cls(
            num_classes=int(d["num_classes"]),
            height=int(d["height"]),
            channels=tuple(int(c) for c in d["channels"]),
            pools=tuple((int(p[0]), int(p[1])) for p in d["pools"]),
            hidden=int(d["hidden"]),
            layers=int(d["layers"]),
            dropout=float(d.get("dropout", 0.0)),
            extra=dict(d.get("extra", {})),
        )

    @property
    def width_stride(self) -> int:
        s = 1
        for _, pw in self.pools:
            s *= pw
        return s

    @property
    def feature_height(self) -> int:
        h = self.height
        for ph, _ in self.pools:
            h //= ph
        return h


class CRNN(nn.Module):
    """Input: (N, 1, H, W) float in [0, 1], ink high. Output: (T, N, C) log-probabilities."""

    def __init__(self, spec: CRNNSpec) -> None:
        super().__init__()
        if len(spec.channels) != len(spec.pools):
            raise ValueError("channels and pools must have the same length")
        self.spec = spec
        blocks: list[nn.Module] = []
        cin = 1
        for cout, (ph, pw) in zip(spec.channels, spec.pools):
            blocks += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if ph > 1 or pw > 1:
                blocks.append(nn.MaxPool2d((ph, pw), (ph, pw)))
            cin = cout
        # Channels-last is the layout oneDNN's CPU kernels run fastest (bfloat16 max-pooling above
        # all): 1.7x the inference lines/s and 1.2x the training lines/s of the default layout on
        # 2 cores, same outputs. load_state_dict copies into these tensors and keeps the layout.
        self.cnn = nn.Sequential(*blocks).to(memory_format=torch.channels_last)
        feat = cin * spec.feature_height
        self.proj = nn.Sequential(nn.Linear(feat, spec.hidden), nn.ReLU(inplace=True), nn.Dropout(spec.dropout))
        self.rnn = nn.LSTM(
            spec.hidden, spec.hidden, num_layers=spec.layers, bidirectional=True,
            dropout=spec.dropout if spec.layers > 1 else 0.0,
        )
        self.head = nn.Sequential(nn.Dropout(spec.dropout), nn.Linear(2 * spec.hidden, spec.num_classes))

    def fuse_batch_norm(self) -> CRNN:
        """Fold each batch norm into the convolution before it, for inference only (eval mode): the
        same outputs up to rounding, and no separate normalisation pass over the feature maps (5% of
        the CPU forward time). Training needs the unfused network: its state dict no longer matches
        the model file's."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        if self.training:
            raise RuntimeError("fuse_batch_norm is for inference: call eval() first")
        layers, fused = list(self.cnn), []
        for layer in layers:
            if isinstance(layer, nn.BatchNorm2d) and fused and isinstance(fused[-1], nn.Conv2d):
                fused[-1] = fuse_conv_bn_eval(fused[-1], layer)
            else:
                fused.append(layer)
        self.cnn = nn.Sequential(*fused).to(memory_format=torch.channels_last)
        return self

    def output_lengths(self, widths: torch.Tensor) -> torch.Tensor:
        return torch.div(widths, self.spec.width_stride, rounding_mode="floor").clamp(min=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cnn(x.contiguous(memory_format=torch.channels_last))  # N, C, h, T
        n, c, h, t = f.shape
        f = f.permute(3, 0, 1, 2).reshape(t, n, c * h)
        f = self.proj(f)
        f, _ = self.rnn(f)
        return self.head(f).log_softmax(-1)
