"""Typical wrong answers for assignment 06 (convolutional networks); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

_VALIDATE = '''
    if min(size, kernel_size, stride, dilation) < 1 or padding < 0:
        raise ValueError("bad settings")
'''

_BLOCK_INIT = '''
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
'''

_PROJECTION = '''
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
'''

_FORWARD = '''
    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))
'''


def _size(body: str) -> str:
    return ("\ndef conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1, ceil_mode=False):"
            + _VALIDATE + body)


def _unfold(body: str) -> str:
    return "\ndef conv2d_unfold(x, weight, bias=None, stride=1, padding=0, dilation=1):\n" + body


WRONG_ANSWERS = [
    # Exercise 1: conv_output_size
    WrongAnswer("conv_output_size", _size('''
    out = (size + 2 * padding - kernel_size) // stride + 1
    if out < 1:
        raise ValueError("the window does not fit")
    return out
'''), ("test_conv_output_size",), "ignores the dilation"),
    WrongAnswer("conv_output_size", _size('''
    out = (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError("the window does not fit")
    return out
'''), ("test_conv_output_size",), "counts the padding on one side only"),
    WrongAnswer("conv_output_size", _size('''
    out = round((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
    if out < 1:
        raise ValueError("the window does not fit")
    return out
'''), ("test_conv_output_size",), "rounds to nearest instead of down"),
    WrongAnswer("conv_output_size", _size('''
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError("the window does not fit")
    return out
'''), ("test_conv_output_size",), "ignores ceil_mode"),
    WrongAnswer("conv_output_size", _size('''
    import math
    out = math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1 if ceil_mode else \\
        (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError("the window does not fit")
    return out
'''), ("test_conv_output_size",), "ceil_mode without dropping a last window that starts in the padding"),
    WrongAnswer("conv_output_size", '''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1, ceil_mode=False):
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out
''', ("test_conv_output_size",), "no validation: returns sizes below 1 instead of raising ValueError"),
    # Exercise 2: conv2d_unfold
    WrongAnswer("conv2d_unfold", _unfold('''
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
'''), ("test_conv2d_unfold",), "calls F.conv2d"),
    WrongAnswer("conv2d_unfold", _unfold('''
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    columns = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    out = weight.reshape(o, -1) @ columns
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(n, o, h_out, w_out)
'''), ("test_conv2d_unfold",), "does not pass the dilation to unfold"),
    WrongAnswer("conv2d_unfold", _unfold('''
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    out = columns.transpose(1, 2) @ weight.reshape(o, -1).T
    if bias is not None:
        out = out + bias
    return out.reshape(n, o, h_out, w_out)
'''), ("test_conv2d_unfold",), "reshapes (N, L, O) to (N, O, H, W) without moving the channels first"),
    WrongAnswer("conv2d_unfold", _unfold('''
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    out = weight.flip(2, 3).reshape(o, -1) @ columns
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(n, o, h_out, w_out)
'''), ("test_conv2d_unfold",), "flips the kernel (textbook convolution, not cross-correlation)"),
    WrongAnswer("conv2d_unfold", _unfold('''
    n, _, h, w = x.shape
    o, _, k, _ = weight.shape
    size = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    columns = F.unfold(x, k, dilation=dilation, padding=padding, stride=stride)
    out = weight.reshape(o, -1) @ columns
    if bias is not None:
        out = out + bias[:, None]
    return out.reshape(n, o, size, -1)
'''), ("test_conv2d_unfold",), "assumes a square kernel"),
    WrongAnswer("conv2d_unfold", _unfold('''
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    out = weight.reshape(o, -1) @ columns + bias[:, None]
    return out.reshape(n, o, h_out, w_out)
'''), ("test_conv2d_unfold",), "fails when bias is None"),
    # Exercise 3: ResidualBlock
    WrongAnswer("residual_block", _BLOCK_INIT + '''
        self.shortcut = nn.Identity()
''' + _FORWARD, ("test_residual_block",), "identity shortcut even when the shape changes"),
    WrongAnswer("residual_block", _BLOCK_INIT + '''
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(out_channels))
''' + _FORWARD, ("test_residual_block",), "a projection shortcut even when the shape does not change"),
    WrongAnswer("residual_block", _BLOCK_INIT + _PROJECTION + '''
    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return out + self.shortcut(x)
''', ("test_residual_block",), "ReLU before the addition instead of after it"),
    WrongAnswer("residual_block", '''
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
''' + _PROJECTION + _FORWARD, ("test_residual_block",), "the stride on the second conv instead of the first"),
    WrongAnswer("residual_block", '''
class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
''' + _PROJECTION + _FORWARD, ("test_residual_block",), "convs with biases"),
    WrongAnswer("residual_block", _BLOCK_INIT + _PROJECTION + '''
    def forward(self, x):
        out = self.bn1(torch.relu(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))
''', ("test_residual_block",), "ReLU before BatchNorm in the main path"),
    # Exercise 4: receptive_field
    WrongAnswer("receptive_field", '''
def receptive_field(layers):
    return 1 + sum(dilation * (kernel_size - 1) for kernel_size, stride, dilation in layers)
''', ("test_receptive_field",), "ignores the strides of earlier layers"),
    WrongAnswer("receptive_field", '''
def receptive_field(layers):
    field, step = 1, 1
    for kernel_size, stride, dilation in layers:
        step *= stride
        field += dilation * (kernel_size - 1) * step
    return field
''', ("test_receptive_field",), "scales a layer by its own stride too"),
    WrongAnswer("receptive_field", '''
def receptive_field(layers):
    field, step = 1, 1
    for kernel_size, stride, dilation in layers:
        field += (kernel_size - 1) * step
        step *= stride
    return field
''', ("test_receptive_field",), "ignores the dilation"),
    WrongAnswer("receptive_field", '''
def receptive_field(layers):
    field, step = 0, 1
    for kernel_size, stride, dilation in layers:
        field += dilation * (kernel_size - 1) * step
        step *= stride
    return field
''', ("test_receptive_field",), "starts from 0 pixels instead of 1"),
    # Quiz
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "thinks F.conv2d flips the kernel", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "a"', ("test_q2",), "padding 1 ignores the dilation", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "d"', ("test_q2",), "pads by the whole span", hidden_only=QUIZ_KEY),
]
