"""Exercise checks for lesson 08 (attention and Transformers).

Each check runs your answer on fixed inputs, compares it with a reference computed here
(PyTorch's own `nn.MultiheadAttention` and `F.scaled_dot_product_attention`) and raises
`helpers.check.CheckFailed` with a message that names the problem. Reading this code before
solving an exercise spoils it: try first.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from helpers.check import CheckFailed, NotAttempted, check_shape, check_tensor

__all__ = ["check_fixed_self_attention", "check_padding_mask", "check_attend_new"]


def _not_attempted(name: str) -> NotAttempted:
    return NotAttempted(f"{name}: not attempted yet: replace the `...` with your code, then run this cell again")


def _call(name: str, fn: Any, *args: Any) -> Any:
    """fn(*args), with NotAttempted for an untouched `...` and any error explained."""
    try:
        result = fn(*args)
    except Exception as error:  # noqa: BLE001 (explained to the student)
        raise CheckFailed(f"{name} raised {type(error).__name__}: {error}") from None
    if result is Ellipsis or result is None:
        raise NotAttempted(f"{name}: returned None: not attempted yet (replace the `...` with your code), or a "
                           "missing `return`")
    return result


# ----------------------------------------------------------------------------- exercise 1


def _instantiate(cls: Any, args: tuple) -> nn.Module:
    if cls is Ellipsis:
        raise _not_attempted("FixedSelfAttention")
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise CheckFailed(f"FixedSelfAttention: expected a class derived from nn.Module, got {type(cls).__name__}")
    if cls.__init__ is nn.Module.__init__ and cls.forward is nn.Module.forward:
        raise _not_attempted("FixedSelfAttention")
    try:
        return cls(*args)
    except Exception as error:  # noqa: BLE001 (explained to the student)
        raise CheckFailed(f"FixedSelfAttention{args}: creating it raised {type(error).__name__}: {error}") from None


def _linear(module: nn.Module, name: str, size: int) -> nn.Linear:
    layer = getattr(module, name, None)
    if not isinstance(layer, nn.Linear):
        raise CheckFailed(f"FixedSelfAttention: no nn.Linear attribute `{name}`\n  Hint: the exercise names the "
                          "four layers query, key, value and out")
    if tuple(layer.weight.shape) != (size, size) or layer.bias is None:
        raise CheckFailed(f"FixedSelfAttention: `{name}` is {layer}, expected Linear({size}, {size}) with a bias\n"
                          "  Hint: one full-width projection per q, k and v: each head uses its own rows of it, "
                          "not one small (head_dim x head_dim) layer shared by all heads")
    return layer


def _reference(layers: list[nn.Linear], size: int, heads: int) -> nn.MultiheadAttention:
    """nn.MultiheadAttention holding the student's weights (in_proj = query, key, value stacked)."""
    query, key, value, out = layers
    mha = nn.MultiheadAttention(size, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([query.weight, key.weight, value.weight]))
        mha.in_proj_bias.copy_(torch.cat([query.bias, key.bias, value.bias]))
        mha.out_proj.weight.copy_(out.weight)
        mha.out_proj.bias.copy_(out.bias)
    return mha.eval()


def check_fixed_self_attention(cls: Any) -> None:
    """Exercise 1: the tutorial's layer repaired, equal to nn.MultiheadAttention with the same weights."""
    gen = torch.Generator().manual_seed(8)
    for size, heads in [(16, 4), (12, 3), (8, 1)]:
        name = f"FixedSelfAttention({size}, {heads})"
        torch.manual_seed(size)
        model = _instantiate(cls, (size, heads)).eval()
        layers = [_linear(model, attribute, size) for attribute in ("query", "key", "value", "out")]
        mha = _reference(layers, size, heads)
        count = sum(p.numel() for p in model.parameters())
        if count != 4 * (size * size + size):
            raise CheckFailed(f"{name}: {count} parameters, expected 4 x ({size}*{size} + {size}) = "
                              f"{4 * (size * size + size)}\n  Hint: exactly the four Linear layers, no others")
        x = torch.randn(2, 5, size, generator=gen)
        causal = torch.ones(5, 5, dtype=torch.bool).tril()
        with torch.no_grad():
            for mask, case in [(None, "no mask"), (causal, "a causal mask (5, 5)")]:
                call = f"{name}(x (2, 5, {size}), {case})"
                got = _call(call, model, x) if mask is None else _call(call, model, x, mask)
                if isinstance(got, tuple):
                    raise CheckFailed(f"{call}: returned a tuple; return only the output tensor (N, T, embed_size)")
                expected = mha(x, x, x, attn_mask=None if mask is None else ~mask, need_weights=False)[0]
                check_shape(got, expected.shape, name=call)
                wrong_scale = None
                if heads > 1:   # the same weights with the tutorial's scale, to name that mistake
                    q, k, v = (layer(x).reshape(2, 5, heads, size // heads).transpose(1, 2) for layer in layers[:3])
                    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=size ** -0.5)
                    wrong_scale = layers[3](out.transpose(1, 2).reshape(2, 5, size))
                if wrong_scale is not None and torch.allclose(got, wrong_scale, atol=1e-5):
                    raise CheckFailed(f"{call}: the scores are scaled by 1/sqrt(embed_size); the scale is "
                                      "1/sqrt(head_dim), head_dim = embed_size // heads")
                check_tensor(got, expected, atol=1e-5, name=call,
                             hint="project with query, key and value, split into heads of contiguous features "
                                  "(reshape to (N, T, heads, head_dim), transpose(1, 2)), attend with scale "
                                  "1/sqrt(head_dim) and the mask (True = allowed), merge, then `out`")
    print("✔ FixedSelfAttention equals nn.MultiheadAttention with the same weights, with and without a mask")


# ----------------------------------------------------------------------------- exercise 2


def check_padding_mask(fn: Any) -> None:
    """Exercise 2: the (N, 1, 1, T) bool attn_mask for SDPA, True at real tokens."""
    lengths = torch.tensor([5, 2, 3])
    name = "sdpa_padding_mask(tensor([5, 2, 3]), 5)"
    mask = _call(name, fn, lengths, 5)
    if isinstance(mask, torch.Tensor) and mask.dtype != torch.bool:
        raise CheckFailed(f"{name}: dtype is {mask.dtype}, not torch.bool\n  Hint: SDPA adds a float mask to the "
                          "scores; compare positions with lengths to get a bool tensor")
    if isinstance(mask, torch.Tensor) and tuple(mask.shape) == (3, 5):
        raise CheckFailed(f"{name}: shape (N, T) = (3, 5) broadcasts against the scores (N, H, T, T) from the "
                          "right, pairing sequences with queries\n  Hint: add the head and query axes: "
                          "mask[:, None, None, :] has shape (N, 1, 1, T)")
    check_shape(mask, (3, 1, 1, 5), name=name, hint="(N, 1, 1, T): one row of keys per sequence")
    real = torch.arange(5)[None, :] < lengths[:, None]
    if torch.equal(mask[:, 0, 0], ~real):
        raise CheckFailed(f"{name}: True at the padding: SDPA's attn_mask is True where a query MAY attend\n"
                          "  Hint: that is nn.MultiheadAttention's key_padding_mask convention; invert it")
    check_tensor(mask, real[:, None, None, :], name=name, hint="True at positions < length, False after")
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(3, 2, 5, 4, generator=gen)
    out = F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    for i, length in enumerate(lengths.tolist()):
        alone = F.scaled_dot_product_attention(q[i:i + 1, :, :length], q[i:i + 1, :, :length], q[i:i + 1, :, :length])
        check_tensor(out[i:i + 1, :, :length], alone, atol=1e-5,
                     name=f"attention output of sequence {i} (length {length}) with your mask vs without padding")
    longer = _call("sdpa_padding_mask(tensor([5, 2, 3]), 8)", fn, lengths, 8)
    check_shape(longer, (3, 1, 1, 8), name="sdpa_padding_mask(tensor([5, 2, 3]), 8)",
                hint="the last axis has max_len entries, whatever the lengths")
    print("✔ sdpa_padding_mask: padding gets no weight, real tokens see the same as without padding")


# ----------------------------------------------------------------------------- exercise 3


def check_attend_new(fn: Any) -> None:
    """Exercise 3: the new tokens' rows of a full causal attention, from a cache and the new tokens."""
    gen = torch.Generator().manual_seed(3)
    for s, t in [(5, 1), (4, 3), (0, 4)]:
        q, k, v = (torch.randn(2, 2, s + t, 4, generator=gen) for _ in range(3))
        name = f"attend_new({s} cached tokens, {t} new)"
        got = _call(name, fn, q[:, :, s:], k[:, :, :s], v[:, :, :s], k[:, :, s:], v[:, :, s:])
        check_shape(got, (2, 2, t, 4), name=name, hint="one output row per new query: (N, H, t, Dh)")
        full = F.scaled_dot_product_attention(q, k, v, is_causal=True)[:, :, s:]
        if s > 0:
            top_left = F.scaled_dot_product_attention(q[:, :, s:], k, v, is_causal=True)
            if torch.allclose(got, top_left, atol=1e-5):
                raise CheckFailed(f"{name}: is_causal=True aligns the mask with the top-left corner, so new query "
                                  "0 sees only key 0\n  Hint: new query i sits at position s + i: "
                                  "torch.ones(t, s + t, dtype=torch.bool).tril(diagonal=s)")
        if t > 1 and s > 0:
            unmasked = F.scaled_dot_product_attention(q[:, :, s:], k, v)
            if torch.allclose(got, unmasked, atol=1e-5):
                raise CheckFailed(f"{name}: no mask: the earlier new tokens see the later new ones\n  Hint: one new "
                                  "token needs no mask, several do: tril(diagonal=s) on a (t, s + t) mask")
        check_tensor(got, full, atol=1e-5, name=name,
                     hint="concatenate the cache and the new keys/values along the tokens (dim 2), then mask so "
                          "new query i sees keys 0 ... s + i")
    print("✔ attend_new: equal to the last rows of full causal attention, for 1 and several new tokens")
