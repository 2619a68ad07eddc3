"""Typical wrong answers for assignment 08 (attention and Transformers); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

_CHECK_LENGTHS = '''
def causal_mask(q_len, k_len):
    if q_len < 1 or q_len > k_len:
        raise ValueError("need 1 <= q_len <= k_len")
'''


def _attention(body: str) -> str:
    return "\ndef attention(q, k, v, mask=None):\n" + body


_SPLIT = '''
def split_heads(x, num_heads):
    n, t, d = x.shape
    if d % num_heads != 0:
        raise ValueError("D is not divisible by num_heads")
    return x.reshape(n, t, num_heads, d // num_heads).transpose(1, 2)
'''

_MERGE = '''
def merge_heads(x):
    n, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(n, t, h * dh)
'''

_MHA_HEAD = '''
def mha_forward(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, key_padding_mask=None):
    n, t, d = x.shape
    h, dh = num_heads, d // num_heads
'''

_MHA_ATTEND = '''
    q, k, v = (z.reshape(n, t, h, dh).transpose(1, 2) for z in (q, k, v))
    mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(n, t, d)
'''

WRONG_ANSWERS = [
    # Exercise 1: causal_mask
    WrongAnswer("causal_mask", _CHECK_LENGTHS + '''
    return torch.ones(q_len, k_len, dtype=torch.bool).tril()
''', ("test_causal_mask",), "aligned with the top-left corner (is_causal's mask), wrong for new tokens at the end"),
    WrongAnswer("causal_mask", _CHECK_LENGTHS + '''
    return torch.ones(q_len, k_len, dtype=torch.bool).tril(diagonal=k_len - q_len - 1)
''', ("test_causal_mask",), "leaves out the diagonal: a token cannot see itself"),
    WrongAnswer("causal_mask", _CHECK_LENGTHS + '''
    return torch.ones(q_len, k_len, dtype=torch.bool).triu(diagonal=k_len - q_len + 1)
''', ("test_causal_mask",), "True marks the future (nn.Transformer's convention), not what may be attended"),
    WrongAnswer("causal_mask", _CHECK_LENGTHS + '''
    allowed = torch.ones(q_len, k_len, dtype=torch.bool).tril(diagonal=k_len - q_len)
    return torch.zeros(q_len, k_len).masked_fill(~allowed, float("-inf"))
''', ("test_causal_mask",), "an additive float mask of 0 and -inf instead of a bool mask"),
    WrongAnswer("causal_mask", _CHECK_LENGTHS + '''
    return torch.ones(q_len, k_len).tril(diagonal=k_len - q_len)
''', ("test_causal_mask",), "a float mask of ones and zeros, which SDPA adds to the scores"),
    WrongAnswer("causal_mask", '''
def causal_mask(q_len, k_len):
    return torch.ones(q_len, k_len, dtype=torch.bool).tril(diagonal=k_len - q_len)
''', ("test_causal_mask",), "no ValueError for q_len > k_len or q_len < 1"),
    # Exercise 2: attention
    WrongAnswer("attention", _attention('''
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.where(mask.any(dim=-1, keepdim=True), weights, torch.zeros_like(weights))
    return weights @ v, weights
'''), ("test_attention",), "no 1/sqrt(d) scale"),
    WrongAnswer("attention", _attention('''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-2)
    if mask is not None:
        weights = torch.where(mask.any(dim=-1, keepdim=True), weights, torch.zeros_like(weights))
    return weights @ v, weights
'''), ("test_attention",), "softmax over the queries (dim=-2)"),
    WrongAnswer("attention", _attention('''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return weights @ v, weights
'''), ("test_attention",), "inverted mask: True taken as 'ignore this key'"),
    WrongAnswer("attention", _attention('''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
'''), ("test_attention",), "nan for a query whose keys are all masked"),
    WrongAnswer("attention", _attention('''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
'''), ("test_attention",), "masks with -1e9: a fully masked row gets uniform weights instead of zeros"),
    WrongAnswer("attention", _attention('''
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), weights
'''), ("test_attention",), "calls F.scaled_dot_product_attention for the output"),
    # Exercise 3: split_heads and merge_heads
    WrongAnswer("split_merge_heads", '''
def split_heads(x, num_heads):
    n, t, d = x.shape
    if d % num_heads != 0:
        raise ValueError("D is not divisible by num_heads")
    return x.reshape(n, num_heads, t, d // num_heads)


def merge_heads(x):
    n, h, t, dh = x.shape
    return x.reshape(n, t, h * dh)
''', ("test_split_merge_heads",), "reshapes straight to (N, H, T, Dh): heads mix tokens (the round trip still works)"),
    WrongAnswer("split_merge_heads", '''
def split_heads(x, num_heads):
    n, t, d = x.shape
    if d % num_heads != 0:
        raise ValueError("D is not divisible by num_heads")
    return x.reshape(n, t, d // num_heads, num_heads).permute(0, 3, 1, 2)


def merge_heads(x):
    n, h, t, dh = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, t, h * dh)
''', ("test_split_merge_heads",), "interleaved heads (every H-th feature), not nn.MultiheadAttention's layout"),
    WrongAnswer("split_merge_heads", '''
def split_heads(x, num_heads):
    n, t, d = x.shape
    if d % num_heads != 0:
        raise ValueError("D is not divisible by num_heads")
    return x.reshape(n, t, num_heads, d // num_heads)
''' + _MERGE, ("test_split_merge_heads",), "forgets to move the heads before the tokens (N, T, H, Dh)"),
    WrongAnswer("split_merge_heads", _SPLIT + '''

def merge_heads(x):
    n, h, t, dh = x.shape
    return x.reshape(n, t, h * dh)
''', ("test_split_merge_heads",), "merge reshapes without moving the heads back"),
    WrongAnswer("split_merge_heads", _SPLIT + '''

def merge_heads(x):
    n, h, t, dh = x.shape
    return x.transpose(1, 2).view(n, t, h * dh)
''', ("test_split_merge_heads",), "merge uses view on a non-contiguous tensor (RuntimeError)"),
    WrongAnswer("split_merge_heads", '''
def split_heads(x, num_heads):
    n, t, d = x.shape
    return x.reshape(n, t, num_heads, d // num_heads).transpose(1, 2)
''' + _MERGE, ("test_split_merge_heads",), "no ValueError when D is not divisible by the number of heads"),
    # Exercise 4: mha_forward
    WrongAnswer("mha_forward", _MHA_HEAD + '''
    k, q, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
''' + _MHA_ATTEND + '''
    return out @ out_proj_weight.T + out_proj_bias
''', ("test_mha_forward",), "reads in_proj_weight as key, query, value"),
    WrongAnswer("mha_forward", _MHA_HEAD + '''
    q, k, v = (x @ in_proj_weight.T).chunk(3, dim=-1)
''' + _MHA_ATTEND + '''
    return out @ out_proj_weight.T + out_proj_bias
''', ("test_mha_forward",), "forgets in_proj_bias"),
    WrongAnswer("mha_forward", _MHA_HEAD + '''
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
''' + _MHA_ATTEND + '''
    return out
''', ("test_mha_forward",), "no output projection"),
    WrongAnswer("mha_forward", _MHA_HEAD + '''
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (z.reshape(n, t, h, dh).transpose(1, 2) for z in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if key_padding_mask is not None:
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(n, t, d)
    return out @ out_proj_weight.T + out_proj_bias
''', ("test_mha_forward",), "scales by sqrt(D), the model width, instead of sqrt(head_dim)"),
    WrongAnswer("mha_forward", _MHA_HEAD + '''
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (z.reshape(n, t, h, dh).transpose(1, 2) for z in (q, k, v))
    mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(n, t, d)
    return out @ out_proj_weight.T + out_proj_bias
''', ("test_mha_forward",), "passes key_padding_mask (True = padding) as SDPA's attn_mask (True = attend)"),
    WrongAnswer("mha_forward", '''
def mha_forward(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, key_padding_mask=None):
    mha = nn.MultiheadAttention(x.shape[-1], num_heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(in_proj_weight)
        mha.in_proj_bias.copy_(in_proj_bias)
        mha.out_proj.weight.copy_(out_proj_weight)
        mha.out_proj.bias.copy_(out_proj_bias)
    return mha(x, x, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
''', ("test_mha_forward",), "calls nn.MultiheadAttention"),
    # Quiz
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "thinks True means 'ignore' in both masks", hidden_only=QUIZ_KEY),
    WrongAnswer("q1", 'q1_answer = "c"', ("test_q1",), "swaps the two conventions", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "c"', ("test_q2",), "the variance (64) instead of the standard deviation",
                hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "a"', ("test_q2",), "thinks a dot product keeps unit variance",
                hidden_only=QUIZ_KEY),
]
