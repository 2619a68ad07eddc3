"""Lesson 10's pretrained backbone: the script is deterministic and the committed weights are the
ones it wrote (they load with weights_only=True and match their recorded SHA-256)."""

from __future__ import annotations

import torch

from helpers.lessons.lesson_10_transfer.pretrain import pretrain
from helpers.lessons.lesson_10_transfer.transfer import WEIGHTS, Backbone, load_backbone, sha256


def test_a_short_pretraining_run_is_deterministic():
    first, second = pretrain(max_steps=3), pretrain(max_steps=3)
    assert first.keys() == second.keys() == Backbone().state_dict().keys()
    different = [name for name in first if not torch.equal(first[name], second[name])]
    assert not different, f"two runs of the pretraining script differ in {different}"
    torch.manual_seed(0)                 # the script's seed: the same initial weights
    untrained = Backbone().state_dict()
    assert not torch.equal(first["0.weight"], untrained["0.weight"]), "three steps did not train anything"


def test_committed_weights_load_safely_and_match_their_checksum():
    recorded = WEIGHTS.with_name(WEIGHTS.name + ".sha256").read_text().split()[0]
    assert sha256(WEIGHTS) == recorded, "data/backbone.pt differs from the checksum the script recorded"
    state = torch.load(WEIGHTS, weights_only=True)
    assert state.keys() == Backbone().state_dict().keys()
    assert WEIGHTS.stat().st_size < 1_000_000, "the committed weights should stay well under 1 MB"
    backbone = load_backbone().eval()
    with torch.no_grad():
        assert backbone(torch.zeros(2, 1, 8, 8)).shape == (2, 128)
