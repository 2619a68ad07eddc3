"""Typical wrong answers for assignment 07 (recurrent networks); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

_CELL_HEAD = '''
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
'''
_CELL_Z = '''
    z = x @ weight_ih.T + h @ weight_hh.T
    if bias_ih is not None:
        z = z + bias_ih
    if bias_hh is not None:
        z = z + bias_hh
'''


def _cell(body: str, z: str = _CELL_Z) -> str:
    return _CELL_HEAD + z + body


_LAST = '''
def last_steps(output, lengths):
    n, t = output.shape[:2]
    if lengths.shape != (n,) or bool((lengths < 1).any()) or bool((lengths > t).any()):
        raise ValueError("every length must be between 1 and T, one per sequence")
'''

_GRU_INIT = '''
class BiGRUClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden_size, num_classes)
'''

_DETACH = '''
        if isinstance(state, tuple):
            state = tuple(s.detach() for s in state)
        elif state is not None:
            state = state.detach()
'''


def _tbptt(detach: str = _DETACH, loop: str = "range(0, x.shape[1], chunk_len)", zero_grad: str = "optimizer.zero_grad()",
           backward: str = "loss.backward()") -> str:
    return f'''
def train_tbptt(model, x, y, chunk_len, optimizer):
    losses, state = [], None
    for start in {loop}:{detach}
        {zero_grad}
        predictions, state = model(x[:, start:start + chunk_len], state)
        loss = nn.functional.mse_loss(predictions, y[:, start:start + chunk_len])
        {backward}
        optimizer.step()
        losses.append(loss.item())
    return losses
'''


WRONG_ANSWERS = [
    # Exercise 1: lstm_cell
    WrongAnswer("lstm_cell", _cell('''
    i, f, o, g = z.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
'''), ("test_lstm_cell",), "gate blocks in the order i, f, o, g (PyTorch's is i, f, g, o)"),
    WrongAnswer("lstm_cell", _cell('''
    i, f, g, o = torch.sigmoid(z).chunk(4, dim=1)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new
'''), ("test_lstm_cell",), "a sigmoid on the cell candidate g too"),
    WrongAnswer("lstm_cell", _cell('''
    i, f, g, o = z.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * c_new, c_new
'''), ("test_lstm_cell",), "h_new = o * c_new, without the tanh"),
    WrongAnswer("lstm_cell", _cell('''
    i, f, g, o = z.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
''', z='''
    z = x @ weight_ih.T + h @ weight_hh.T
    if bias_ih is not None:
        z = z + bias_ih
'''), ("test_lstm_cell",), "adds bias_ih only"),
    WrongAnswer("lstm_cell", _cell('''
    i, f, g, o = z.chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
''', z='''
    z = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
'''), ("test_lstm_cell",), "fails when the biases are None"),
    WrongAnswer("lstm_cell", _CELL_HEAD + '''
    return torch.lstm_cell(x, (h, c), weight_ih, weight_hh, bias_ih, bias_hh)
''', ("test_lstm_cell",), "calls torch.lstm_cell"),
    # Exercise 2: last_steps
    WrongAnswer("last_steps", _LAST + '''
    return output[:, -1]
''', ("test_last_steps",), "takes the last padded position, output[:, -1]"),
    WrongAnswer("last_steps", _LAST + '''
    return output[torch.arange(n), lengths]
''', ("test_last_steps",), "off by one: position lengths[i] instead of lengths[i] - 1"),
    WrongAnswer("last_steps", _LAST + '''
    return output[:, lengths - 1]
''', ("test_last_steps",), "indexes the time dimension only: (N, N, H)"),
    WrongAnswer("last_steps", _LAST + '''
    return torch.stack([output[i, lengths[i] - 1] for i in range(n)])
''', ("test_last_steps",), "a Python loop over the batch"),
    WrongAnswer("last_steps", '''
def last_steps(output, lengths):
    return output[torch.arange(output.shape[0]), lengths - 1]
''', ("test_last_steps",), "no validation: a length of 0 silently gives the last position"),
    # Exercise 3: BiGRUClassifier
    WrongAnswer("bigru_classifier", _GRU_INIT + '''
    def forward(self, ids, lengths):
        out, _ = self.gru(self.embedding(ids))
        return self.fc(out[:, -1, :])
''', ("test_bigru_classifier",), "the classic gru_out[:, -1, :] of the padded batch"),
    WrongAnswer("bigru_classifier", _GRU_INIT + '''
    def forward(self, ids, lengths):
        _, h_n = self.gru(self.embedding(ids))
        return self.fc(torch.cat([h_n[0], h_n[1]], dim=1))
''', ("test_bigru_classifier",), "h_n without packing: the GRU reads the padding"),
    WrongAnswer("bigru_classifier", _GRU_INIT + '''
    def forward(self, ids, lengths):
        out, _ = self.gru(self.embedding(ids))
        return self.fc(out[torch.arange(len(ids)), lengths - 1])
''', ("test_bigru_classifier",), "the output at the last real step: its backward half read one token"),
    WrongAnswer("bigru_classifier", _GRU_INIT + '''
    def forward(self, ids, lengths):
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)
        return self.fc(torch.cat([h_n[1], h_n[0]], dim=1))
''', ("test_bigru_classifier",), "backward state first"),
    WrongAnswer("bigru_classifier", _GRU_INIT + '''
    def forward(self, ids, lengths):
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True)
        _, h_n = self.gru(packed)
        return self.fc(torch.cat([h_n[0], h_n[1]], dim=1))
''', ("test_bigru_classifier",), "enforce_sorted left True: unsorted lengths raise"),
    WrongAnswer("bigru_classifier", '''
class BiGRUClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_size, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, ids, lengths):
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)
        return self.fc(h_n[-1])
''', ("test_bigru_classifier",), "classifies h_n[-1], the backward direction alone"),
    # Exercise 4: train_tbptt
    WrongAnswer("train_tbptt", _tbptt(detach=""), ("test_train_tbptt",),
                "never detaches the state: backward runs into the previous chunk's freed graph"),
    WrongAnswer("train_tbptt", _tbptt(detach='''
        state = None'''), ("test_train_tbptt",), "starts every chunk from None"),
    WrongAnswer("train_tbptt", _tbptt(detach='''
        if state is not None:
            state = state.detach()'''), ("test_train_tbptt",), "state.detach() fails on an LSTM's (h, c) tuple"),
    WrongAnswer("train_tbptt", _tbptt(loop="range(0, x.shape[1] - chunk_len + 1, chunk_len)"), ("test_train_tbptt",),
                "drops the last, shorter chunk"),
    WrongAnswer("train_tbptt", _tbptt(zero_grad="pass"), ("test_train_tbptt",), "never calls zero_grad"),
    WrongAnswer("train_tbptt", _tbptt(detach="", backward="loss.backward(retain_graph=True)"), ("test_train_tbptt",),
                "keeps the whole graph with retain_graph=True instead of detaching"),
    # Quiz
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "ignores the layers and directions", hidden_only=QUIZ_KEY),
    WrongAnswer("q1", 'q1_answer = "d"', ("test_q1",), "puts the directions in h_n's last dimension",
                hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "a"', ("test_q2",), "thinks the backward half at the end has read everything",
                hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "c"', ("test_q2",), "thinks it is the initial state", hidden_only=QUIZ_KEY),
]
