"""helpers.device: device choice and seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from helpers.device import pick_device, seed_everything


def test_auto_picks_an_available_device():
    device = pick_device()
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert device.type == expected
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda")


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    generator = seed_everything(3)
    first, first_gen = draw(), torch.rand(2, generator=generator)
    generator = seed_everything(3)
    assert draw() == first
    assert torch.equal(torch.rand(2, generator=generator), first_gen)
    seed_everything(4)
    assert draw() != first
