"""Small models the lessons train: an MLP, CNNs, RNNs and Transformers, each short enough to read.

Every model takes a batch first, (N, ...), and returns raw logits (no softmax): the losses
(nn.CrossEntropyLoss, helpers.losses.FocalLoss) apply log-softmax themselves, more stably.
Sequence models take token ids (N, T) where `padding_idx` (0, see helpers.data.PAD) marks padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = [
    "MLP",
    "SmallCNN",
    "ResidualBlock",
    "SmallResNet",
    "SequenceClassifier",
    "PositionalEncoding",
    "TransformerClassifier",
    "TinySeq2Seq",
    "causal_mask",
    "count_parameters",
]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters (scalars) in `model`; with trainable_only, only those with requires_grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ----------------------------------------------------------------------------- feed-forward


class MLP(nn.Module):
    """Fully connected network: Flatten -> [Linear -> activation -> Dropout] per hidden size -> Linear.

    MLP(64, [32], 10) is the classic one-hidden-layer net. Inputs of any shape (N, ...) are
    flattened to (N, in_features) first, so images (N, 1, 8, 8) work directly.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, dropout: float = 0.0,
                 activation: Callable[[], nn.Module] = nn.ReLU) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), activation()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ----------------------------------------------------------------------------- convolutional


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv (same size) -> BatchNorm -> ReLU -> 2x2 max-pool (halves height and width)."""
    return nn.Sequential(
        # bias=False: BatchNorm right after subtracts the mean, which would cancel a bias anyway.
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    """conv-bn-relu-pool blocks then a linear classifier, for images of size image_size x image_size.

    Each block halves the image (rounding down), so the flattened size is
    channels[-1] * (image_size // 2**len(channels))**2: 32*2*2 for 8x8 digits, 32*7*7 for 28x28.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 8,
                 channels: Sequence[int] = (16, 32), dropout: float = 0.0) -> None:
        super().__init__()
        blocks, width, size = [], in_channels, image_size
        for out in channels:
            blocks.append(conv_block(width, out))
            width, size = out, size // 2
        if size < 1:
            raise ValueError(f"image_size={image_size} is too small for {len(channels)} pooling blocks "
                             f"(each halves it); use fewer channels entries")
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(width * size * size, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ResidualBlock(nn.Module):
    """Two 3x3 convs with BatchNorm, plus the input added back (He et al., 2016): out = relu(F(x) + x).

    When the shape changes (stride > 1 or a new channel count) x cannot be added as is, so the
    shortcut becomes a 1x1 convolution (with the same stride) that projects it to the new shape.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """A stem conv, one ResidualBlock per width (each after the first halves the image), global
    average pooling and a linear layer. Average pooling makes it work for any image size."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, width = [], widths[0]
        for i, out in enumerate(widths):
            blocks.append(ResidualBlock(width, out, stride=1 if i == 0 else 2))
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


# ----------------------------------------------------------------------------- recurrent


class SequenceClassifier(nn.Module):
    """Embedding -> LSTM or GRU -> linear layer on the final hidden state.

    forward(ids, lengths=None): ids (N, T) token ids, lengths (N,) the true lengths. With lengths,
    the padded batch is packed (pack_padded_sequence), so the RNN stops at each sequence's last
    real token and padding cannot change the result. Without lengths, every position is read.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_classes: int, kind: str = "lstm",
                 num_layers: int = 1, bidirectional: bool = False, padding_idx: int = 0) -> None:
        super().__init__()
        rnn_types = {"lstm": nn.LSTM, "gru": nn.GRU}
        if kind not in rnn_types:
            raise ValueError(f"kind must be 'lstm' or 'gru', got {kind!r}")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.rnn = rnn_types[kind](embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                                   bidirectional=bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.fc = nn.Linear(hidden_size * self.num_directions, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embedding(ids)
        if lengths is not None:
            # pack_padded_sequence wants the lengths on the CPU; enforce_sorted=False sorts for us
            # and returns the hidden states in the original batch order.
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.rnn(x)
        if isinstance(hidden, tuple):  # an LSTM returns (h_n, c_n); a GRU only h_n
            hidden = hidden[0]
        # h_n is (num_layers * num_directions, N, hidden_size): keep the last layer's directions.
        last = hidden[-self.num_directions:]
        return self.fc(torch.cat(list(last), dim=1))


# ----------------------------------------------------------------------------- attention


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal position signal of "Attention Is All You Need" to (N, T, d_model) inputs.

    PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), PE[pos, 2i+1] = cos(same angle). It is a buffer,
    not a parameter: saved with the model and moved by .to(device), but never trained.
    """

    pe: torch.Tensor  # a buffer (1, max_len, d_model), registered in __init__

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (max_len, 1)
        inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * inv_freq)
        pe[:, 1::2] = torch.cos(position * inv_freq)[:, : d_model // 2]  # odd d_model: one cos fewer
        self.register_buffer("pe", pe.unsqueeze(0))  # (1, max_len, d_model): broadcasts over the batch
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(1) > self.pe.size(1):
            raise ValueError(f"sequence length {x.size(1)} is longer than max_len={self.pe.size(1)}")
        return self.dropout(x + self.pe[:, : x.size(1)])


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(size, size) bool mask, True above the diagonal: position t may not attend to positions after t."""
    return torch.triu(torch.ones(size, size, dtype=torch.bool, device=device), diagonal=1)


def _padding_mask(ids: torch.Tensor, lengths: torch.Tensor | None, padding_idx: int) -> torch.Tensor:
    """(N, T) bool, True at padding: from the lengths when given, else where ids == padding_idx."""
    if lengths is None:
        return ids == padding_idx
    positions = torch.arange(ids.size(1), device=ids.device)
    return positions.unsqueeze(0) >= lengths.to(ids.device).unsqueeze(1)


class TransformerClassifier(nn.Module):
    """Embedding + positions -> nn.TransformerEncoder -> mean over the real (non-pad) tokens -> linear.

    The key padding mask stops attention to padding, and the mean skips it, so adding padding
    does not change the logits. Every sequence needs at least one real token.
    """

    def __init__(self, vocab_size: int, d_model: int, nhead: int, num_layers: int, num_classes: int,
                 dim_feedforward: int = 128, max_len: int = 512, padding_idx: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        self.positions = PositionalEncoding(d_model, max_len, dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
        # enable_nested_tensor=False: the same code path in training and evaluation (the nested
        # fast path only runs under no_grad and would also warn for some head counts).
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.fc = nn.Linear(d_model, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        pad = _padding_mask(ids, lengths, self.padding_idx)  # (N, T), True = ignore
        x = self.positions(self.embedding(ids))  # no sqrt(d_model) scaling: see _embed in TinySeq2Seq
        x = self.encoder(x, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)  # (N, T, 1): 1 for real tokens
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
        return self.fc(pooled)


class TinySeq2Seq(nn.Module):
    """A tiny encoder-decoder Transformer (nn.Transformer) for sequence-to-sequence toy tasks.

    forward(src, tgt_in) -> logits (N, T_tgt, vocab_size): the decoder reads tgt_in, the target
    shifted right (BOS first; see helpers.data.shift_right), and predicts the target one step
    ahead. A causal mask keeps position t from seeing tgt_in after t, so training matches
    generation, where later tokens do not exist yet. Source and target share one vocabulary.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int = 128, max_len: int = 128, dropout: float = 0.0, padding_idx: int = 0) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        self.positions = PositionalEncoding(d_model, max_len, dropout)
        # Our own encoder only to pass enable_nested_tensor=False (see TransformerClassifier);
        # it is what nn.Transformer would build otherwise, final LayerNorm included.
        encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True),
            num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.transformer = nn.Transformer(d_model, nhead, num_decoder_layers=num_layers,
                                          dim_feedforward=dim_feedforward, dropout=dropout, batch_first=True,
                                          custom_encoder=encoder)
        self.out = nn.Linear(d_model, vocab_size)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        # The paper multiplies embeddings by sqrt(d_model). nn.Embedding starts at N(0, 1), already
        # the size of the position signal, so that scaling would drown the positions: the reverse
        # task, which is all about positions, then learns far more slowly.
        return self.positions(self.embedding(ids))

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """Encoder output ("memory"), (N, T_src, d_model)."""
        return self.transformer.encoder(self._embed(src), src_key_padding_mask=src == self.padding_idx)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """Logits (N, T_tgt, vocab_size) for decoder input tgt_in, given the encoder memory of src."""
        out = self.transformer.decoder(self._embed(tgt_in), memory,
                                       tgt_mask=causal_mask(tgt_in.size(1), tgt_in.device),
                                       tgt_key_padding_mask=tgt_in == self.padding_idx,
                                       memory_key_padding_mask=src == self.padding_idx)
        return self.out(out)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt_in, self.encode(src), src)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int, bos_id: int, eos_id: int | None = None) -> torch.Tensor:
        """Generate max_len tokens per source sequence, each the most likely next one: (N, max_len).

        BOS is not included in the result. With eos_id, a sequence that produced EOS is padded
        (padding_idx) from then on, and generation stops once all have. Call model.eval() first.
        """
        memory = self.encode(src)
        ys = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            next_token = self.decode(ys, memory, src)[:, -1].argmax(dim=-1)  # logits of the last position
            next_token = next_token.masked_fill(done, self.padding_idx)
            ys = torch.cat([ys, next_token.unsqueeze(1)], dim=1)
            if eos_id is not None:
                done |= next_token == eos_id
                if bool(done.all()):
                    break
        result = ys[:, 1:]
        if result.size(1) < max_len:  # stopped early: pad to the promised shape
            result = nn.functional.pad(result, (0, max_len - result.size(1)), value=self.padding_idx)
        return result
