"""Typical wrong answers for assignment 09 (speed, memory and mixed precision); see tests/wrong_answers/__init__.py."""

from grading import WrongAnswer
from wrong_answers.reasons import QUIZ_KEY

_ACC = '''
def accumulate_step(model, loss_fn, optimizer, inputs, targets, micro_batch):
    if micro_batch < 1:
        raise ValueError("micro_batch must be at least 1")
'''

_AMP = '''
def amp_step(model, loss_fn, optimizer, inputs, targets):
    device_type = next(model.parameters()).device.type
    optimizer.zero_grad()
'''

_BENCH = '''
import statistics
import time


def benchmark(fn, warmup=3, repeats=10, device="cpu"):
    if repeats < 1 or warmup < 0:
        raise ValueError("bad repeats or warmup")
    on_gpu = torch.device(device).type == "cuda"
'''

_TIMED = '''
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if on_gpu:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if on_gpu:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
'''

WRONG_ANSWERS = [
    # Exercise 1: accumulate_step
    WrongAnswer("accumulate_step", _ACC + '''
    optimizer.zero_grad()
    losses = []
    for x, y in zip(inputs.split(micro_batch), targets.split(micro_batch)):
        loss = loss_fn(model(x), y)
        loss.backward()
        losses.append(loss.item() * len(x) / len(inputs))
    optimizer.step()
    return sum(losses)
''', ("test_accumulate_step",), "sums the chunks' mean losses without weighting them"),
    WrongAnswer("accumulate_step", _ACC + '''
    optimizer.zero_grad()
    chunks = list(zip(inputs.split(micro_batch), targets.split(micro_batch)))
    total = 0.0
    for x, y in chunks:
        loss = loss_fn(model(x), y) / len(chunks)
        loss.backward()
        total += loss.item()
    optimizer.step()
    return total
''', ("test_accumulate_step",), "divides by the number of chunks: the short last chunk weighs as much as a full one"),
    WrongAnswer("accumulate_step", _ACC + '''
    total = 0.0
    for x, y in zip(inputs.split(micro_batch), targets.split(micro_batch)):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y) * len(x) / len(inputs)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total
''', ("test_accumulate_step",), "steps after every micro-batch"),
    WrongAnswer("accumulate_step", _ACC + '''
    total = 0.0
    for x, y in zip(inputs.split(micro_batch), targets.split(micro_batch)):
        loss = loss_fn(model(x), y) * len(x) / len(inputs)
        loss.backward()
        total += loss.item()
    optimizer.step()
    optimizer.zero_grad()
    return total
''', ("test_accumulate_step",), "never zeroes the stale gradients before accumulating"),
    WrongAnswer("accumulate_step", _ACC + '''
    for x, y in zip(inputs.split(micro_batch), targets.split(micro_batch)):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y) * len(x) / len(inputs)
        loss.backward()
    optimizer.step()
    return loss.item()
''', ("test_accumulate_step",), "zeroes the gradients inside the loop: only the last chunk counts"),
    WrongAnswer("accumulate_step", _ACC + '''
    optimizer.zero_grad()
    for x, y in zip(inputs.split(micro_batch), targets.split(micro_batch)):
        loss = loss_fn(model(x), y)
        (loss * len(x) / len(inputs)).backward()
    optimizer.step()
    return loss.item()
''', ("test_accumulate_step",), "returns the last chunk's loss instead of the whole batch's mean"),
    # Exercise 2: amp_step
    WrongAnswer("amp_step", _AMP + '''
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()
''', ("test_amp_step",), "no autocast at all"),
    WrongAnswer("amp_step", _AMP + '''
    model.to(torch.bfloat16)
    loss = loss_fn(model(inputs.to(torch.bfloat16)), targets)
    loss.backward()
    optimizer.step()
    return loss.item()
''', ("test_amp_step",), "converts the model to bfloat16 instead of using autocast"),
    WrongAnswer("amp_step", _AMP + '''
    with torch.autocast(device_type, dtype=torch.bfloat16):
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
    return loss.item()
''', ("test_amp_step",), "backward and step inside the autocast block"),
    WrongAnswer("amp_step", _AMP + '''
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()
''', ("test_amp_step",), "hard-codes the device type 'cuda'"),
    WrongAnswer("amp_step", _AMP + '''
    with torch.autocast(device_type, dtype=torch.float16):
        loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()
''', ("test_amp_step",), "float16 instead of bfloat16"),
    WrongAnswer("amp_step", _AMP + '''
    with torch.autocast(device_type, dtype=torch.bfloat16):
        outputs = model(inputs)
    loss = loss_fn(outputs, targets)
    loss.backward()
    optimizer.step()
    return loss.item()
''', ("test_amp_step",), "computes the loss outside autocast"),
    # Exercise 3: benchmark
    WrongAnswer("benchmark", _BENCH + '''
    times = []
    for _ in range(repeats):
        if on_gpu:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if on_gpu:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
''', ("test_benchmark",), "no warm-up"),
    WrongAnswer("benchmark", _BENCH + _TIMED + '''
    return sum(times) / len(times)
''', ("test_benchmark",), "returns the mean instead of the median"),
    WrongAnswer("benchmark", _BENCH + _TIMED + '''
    return torch.tensor(times, dtype=torch.float64).median().item()
''', ("test_benchmark",), "torch.median: the lower middle value for an even count"),
    WrongAnswer("benchmark", _BENCH + '''
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
''', ("test_benchmark",), "never synchronises: times only the launch on a GPU"),
    WrongAnswer("benchmark", _BENCH + '''
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if on_gpu:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
''', ("test_benchmark",), "synchronises before starting the clock but not before stopping it"),
    WrongAnswer("benchmark", _BENCH + '''
    for _ in range(warmup):
        fn()
    if on_gpu:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if on_gpu:
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats
''', ("test_benchmark",), "one clock around the whole loop: the mean, not the median"),
    # Quiz
    WrongAnswer("q1", 'q1_answer = "c"', ("test_q1",), "thinks a CUDA call returns when its result is ready",
                hidden_only=QUIZ_KEY),
    WrongAnswer("q1", 'q1_answer = "a"', ("test_q1",), "thinks the result is copied back", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "b"', ("test_q2",), "confuses mantissa and exponent bits", hidden_only=QUIZ_KEY),
    WrongAnswer("q2", 'q2_answer = "c"', ("test_q2",), "thinks the scaler is about the device", hidden_only=QUIZ_KEY),
]
