"""Tests for helpers.models: output shapes, parameter counts, padding invariance, causal masking,
and that SmallCNN and TinySeq2Seq really learn (digits >= 97%, reversing sequences)."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from helpers.data import BOS, digits_tensors, reverse_task, shift_right, TensorBatchLoader
from helpers.models import (
    MLP, PositionalEncoding, ResidualBlock, SequenceClassifier, SmallCNN, SmallResNet, TinySeq2Seq,
    TransformerClassifier, causal_mask, count_parameters,
)


@pytest.fixture
def one_thread():
    # Tiny models train faster on one thread, and the test machines share their cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- MLP


@pytest.mark.parametrize("shape", [(5, 64), (5, 1, 8, 8), (1, 4, 16)])
def test_mlp_flattens_any_input_shape(shape):
    model = MLP(64, [32, 16], 10)
    assert model(torch.randn(shape)).shape == (shape[0], 10)


def test_mlp_parameter_count_matches_hand_computation():
    model = MLP(64, [32, 16], 10)
    expected = (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    assert count_parameters(model) == expected == 2778
    assert count_parameters(MLP(784, [], 10)) == 784 * 10 + 10  # no hidden layer: logistic regression


def test_mlp_dropout_and_activation():
    model = MLP(8, [4, 4], 2, dropout=0.5, activation=nn.Tanh)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [nn.Flatten, nn.Linear, nn.Tanh, nn.Dropout, nn.Linear, nn.Tanh, nn.Dropout, nn.Linear]
    model.eval()  # dropout off: the output is deterministic
    x = torch.randn(3, 8)
    assert torch.equal(model(x), model(x))


def test_count_parameters_trainable_only():
    model = MLP(4, [3], 2)
    for p in model.layers[1].parameters():
        p.requires_grad_(False)
    assert count_parameters(model) == 3 * 2 + 2
    assert count_parameters(model, trainable_only=False) == (4 * 3 + 3) + (3 * 2 + 2)


# ----------------------------------------------------------------------------- CNNs


@pytest.mark.parametrize("in_channels, image_size", [(1, 8), (1, 28), (3, 32)])
def test_small_cnn_shapes_for_digits_mnist_cifar(in_channels, image_size):
    model = SmallCNN(in_channels=in_channels, num_classes=7, image_size=image_size)
    assert model(torch.randn(2, in_channels, image_size, image_size)).shape == (2, 7)
    final_size = image_size // 4
    assert model.classifier[-1].in_features == 32 * final_size * final_size


def test_small_cnn_rejects_too_small_images():
    with pytest.raises(ValueError, match="too small"):
        SmallCNN(image_size=4, channels=(8, 8, 8))


def test_small_cnn_reaches_97_percent_on_digits(one_thread):
    torch.manual_seed(0)
    data = digits_tensors(seed=0)
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = TensorBatchLoader(*data["train"], batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    # CPU time of this process, not wall time: other jobs on a shared machine cannot inflate it.
    start = time.process_time()
    for _ in range(10):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    seconds = time.process_time() - start
    model.eval()
    x_test, y_test = data["test"]
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    assert accuracy >= 0.97, f"test accuracy {accuracy:.3f}"
    assert seconds < 15, f"training took {seconds:.1f} s of CPU time"


def test_residual_block_identity_and_projection_shortcuts():
    same = ResidualBlock(8, 8)
    assert isinstance(same.shortcut, nn.Identity)
    assert same(torch.randn(2, 8, 10, 10)).shape == (2, 8, 10, 10)
    down = ResidualBlock(8, 16, stride=2)
    projection = down.shortcut[0]
    assert isinstance(projection, nn.Conv2d) and projection.kernel_size == (1, 1) and projection.stride == (2, 2)
    assert down(torch.randn(2, 8, 10, 10)).shape == (2, 16, 5, 5)
    assert isinstance(ResidualBlock(8, 8, stride=2).shortcut, nn.Sequential)  # same channels, new size


def test_residual_block_adds_the_input():
    block = ResidualBlock(4, 4).eval()
    # With the second BatchNorm's scale and shift at 0, F(x) = 0 and the block is relu(x).
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(block(x), torch.relu(x))


@pytest.mark.parametrize("in_channels, size", [(1, 8), (1, 28), (3, 32)])
def test_small_resnet_shapes(in_channels, size):
    model = SmallResNet(in_channels=in_channels, num_classes=5)
    assert model(torch.randn(3, in_channels, size, size)).shape == (3, 5)


# ----------------------------------------------------------------------------- RNNs


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_sequence_classifier_shapes(kind, bidirectional, num_layers):
    model = SequenceClassifier(20, 8, 12, 3, kind=kind, num_layers=num_layers, bidirectional=bidirectional)
    ids = torch.randint(1, 20, (4, 7))
    assert model(ids).shape == (4, 3)
    assert model(ids, torch.tensor([7, 3, 5, 1])).shape == (4, 3)
    assert model.fc.in_features == 12 * (2 if bidirectional else 1)


def test_sequence_classifier_rejects_unknown_kind():
    with pytest.raises(ValueError, match="lstm"):
        SequenceClassifier(10, 4, 4, 2, kind="rnn")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_sequence_classifier_padding_never_changes_the_output(kind, bidirectional):
    torch.manual_seed(0)
    model = SequenceClassifier(30, 8, 16, 4, kind=kind, num_layers=2, bidirectional=bidirectional).eval()
    sequences = [torch.randint(1, 30, (n,)) for n in (5, 2, 9)]
    with torch.no_grad():
        alone = torch.cat([model(s.unsqueeze(0), torch.tensor([len(s)])) for s in sequences])
        for total in (9, 15):  # the longest sequence, then extra padding after all of them
            batch = torch.zeros(3, total, dtype=torch.long)
            for i, s in enumerate(sequences):
                batch[i, : len(s)] = s
            lengths = torch.tensor([len(s) for s in sequences])
            assert torch.allclose(model(batch, lengths), alone, atol=1e-5)
        # Without lengths the padding is read as input, so the result differs: lengths matter.
        assert not torch.allclose(model(batch), alone, atol=1e-3)


# ----------------------------------------------------------------------------- attention


def test_positional_encoding_values():
    pe = PositionalEncoding(6, max_len=10)
    out = pe(torch.zeros(2, 4, 6))
    assert out.shape == (2, 4, 6)
    assert torch.equal(out[0], out[1])  # the same for every sequence in the batch
    pos, i = 3, 1  # dimension 2i = 2 is sin(pos / 10000^(2i/d)), 2i+1 = 3 the cos
    angle = torch.tensor(pos / 10000 ** (2 * i / 6))
    assert torch.allclose(out[0, pos, 2], torch.sin(angle)) and torch.allclose(out[0, pos, 3], torch.cos(angle))
    assert torch.equal(out[0, 0], torch.tensor([0.0, 1, 0, 1, 0, 1]))  # position 0: sin 0, cos 0
    assert PositionalEncoding(5)(torch.zeros(1, 3, 5)).shape == (1, 3, 5)  # odd d_model works
    assert "pe" in dict(pe.named_buffers()) and count_parameters(pe) == 0
    with pytest.raises(ValueError, match="max_len"):
        pe(torch.zeros(1, 11, 6))


def test_causal_mask():
    assert torch.equal(causal_mask(3), torch.tensor([[False, True, True], [False, False, True], [False, False, False]]))


def test_transformer_classifier_shapes():
    model = TransformerClassifier(50, d_model=16, nhead=4, num_layers=2, num_classes=3, dim_feedforward=32)
    for shape in [(4, 10), (1, 1), (2, 33)]:
        assert model(torch.randint(1, 50, shape)).shape == (shape[0], 3)


def test_transformer_classifier_padding_never_changes_the_output():
    torch.manual_seed(0)
    model = TransformerClassifier(50, d_model=16, nhead=2, num_layers=2, num_classes=3, dim_feedforward=32).eval()
    ids = torch.randint(1, 50, (3, 6))
    ids[1, 4:] = 0  # the second sequence is 4 tokens long
    with torch.no_grad():
        reference = model(ids)
        padded = torch.cat([ids, torch.zeros(3, 5, dtype=torch.long)], dim=1)
        assert torch.allclose(model(padded), reference, atol=1e-5)
        assert torch.allclose(model(ids[1:2, :4]), reference[1:2], atol=1e-5)
        # Given lengths, what sits in the padding does not matter either.
        junk = padded.clone()
        junk[:, 6:] = torch.randint(1, 50, (3, 5))
        junk[1, 4:6] = 7
        assert torch.allclose(model(junk, torch.tensor([6, 4, 6])), reference, atol=1e-5)
        assert not torch.allclose(model(junk), reference, atol=1e-3)  # without lengths the junk is read


def test_tiny_seq2seq_shapes_and_greedy_decode():
    model = TinySeq2Seq(12, d_model=16, nhead=2, num_layers=1, dim_feedforward=32).eval()
    src, tgt_in = torch.randint(3, 12, (4, 7)), torch.randint(3, 12, (4, 5))
    assert model(src, tgt_in).shape == (4, 5, 12)
    out = model.greedy_decode(src, max_len=6, bos_id=BOS)
    assert out.shape == (4, 6) and out.dtype == torch.long
    # Greedy decoding is the argmax of forward() fed its own previous outputs.
    logits = model(src, torch.cat([torch.full((4, 1), BOS), out[:, :-1]], dim=1))
    assert torch.equal(logits.argmax(dim=-1), out)


def test_tiny_seq2seq_greedy_decode_stops_at_eos():
    model = TinySeq2Seq(6, d_model=8, nhead=2, num_layers=1, dim_feedforward=16).eval()
    with torch.no_grad():  # make EOS (2) always the most likely token
        model.out.bias.fill_(0)
        model.out.bias[2] = 100.0
    out = model.greedy_decode(torch.randint(3, 6, (2, 4)), max_len=5, bos_id=BOS, eos_id=2)
    assert out.tolist() == [[2, 0, 0, 0, 0], [2, 0, 0, 0, 0]]  # EOS, then padding to max_len


def test_tiny_seq2seq_is_causal():
    torch.manual_seed(0)
    model = TinySeq2Seq(12, d_model=16, nhead=2, num_layers=2, dim_feedforward=32).eval()
    src, tgt_in = torch.randint(3, 12, (2, 6)), torch.randint(3, 12, (2, 6))
    changed = tgt_in.clone()
    changed[:, 3:] = torch.randint(3, 12, (2, 3))
    changed[:, 3] = (tgt_in[:, 3] - 3 + 1) % 9 + 3  # make sure position 3 really differs
    with torch.no_grad():
        before, after = model(src, tgt_in), model(src, changed)
    # Positions 0..2 cannot see tokens 3..5; position 3 and later can.
    assert torch.allclose(before[:, :3], after[:, :3], atol=1e-5)
    assert not torch.allclose(before[:, 3:], after[:, 3:], atol=1e-3)


def test_tiny_seq2seq_learns_to_reverse(one_thread):
    torch.manual_seed(0)
    src, tgt = reverse_task(2000, seq_len=5, vocab_size=8, seed=0)
    model = TinySeq2Seq(8, d_model=32, nhead=4, num_layers=1, dim_feedforward=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = TensorBatchLoader(src, tgt, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        for sb, tb in loader:
            logits = model(sb, shift_right(tb))
            loss = nn.functional.cross_entropy(logits.reshape(-1, 8), tb.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    test_src, test_tgt = reverse_task(200, seq_len=5, vocab_size=8, seed=1)
    out = model.greedy_decode(test_src, max_len=5, bos_id=BOS)
    token_accuracy = (out == test_tgt).float().mean().item()
    sequence_accuracy = (out == test_tgt).all(dim=1).float().mean().item()
    assert token_accuracy > 0.95, f"token accuracy {token_accuracy:.2f}"  # chance: 1/5
    assert sequence_accuracy > 0.8, f"whole sequences right: {sequence_accuracy:.2f}"
