"""Tests for helpers.plots: what is drawn (lines, titles, counts), not only that it runs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: render off-screen

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers.plots import (  # noqa: E402
    CORRECT_COLOUR, WRONG_COLOUR, confusion_matrix, plot_confusion_matrix, plot_history, show_images,
    show_predictions,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


HISTORY = {
    "epoch": [1, 2, 3],
    "train_loss": [1.0, 0.6, 0.4],
    "val_loss": [1.1, 0.8, 0.7],
    "train_accuracy": [0.5, 0.7, 0.8],
    "val_accuracy": [0.45, 0.6, 0.65],
    "lr": [0.1, 0.1, 0.01],
}


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.lines}


def test_plot_history_draws_the_values():
    fig = plot_history(HISTORY)
    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes[:2]
    assert len(fig.axes) == 2  # loss + accuracy; "lr" is no train_/val_ metric
    assert loss_ax.get_title() == "loss" and acc_ax.get_title() == "accuracy"
    for ax, name in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        lines = lines_by_label(ax)
        assert set(lines) == {"train", "val"}
        for split in ("train", "val"):
            assert list(lines[split].get_xdata()) == [1, 2, 3]
            assert list(lines[split].get_ydata()) == HISTORY[f"{split}_{name}"]
        # Train and validation differ by line style and marker too, not only by colour.
        assert lines["train"].get_linestyle() != lines["val"].get_linestyle()
        assert lines["train"].get_marker() != lines["val"].get_marker()
        assert ax.get_legend() is not None


def test_plot_history_train_only_without_epochs_and_chosen_metrics():
    history = {"train_loss": [3.0, 2.0, 1.5, 1.0], "train_accuracy": [0.1, 0.2, 0.3, 0.4], "train_f1": [0, 0, 0, 0]}
    fig = plot_history(history, metrics=["accuracy"])
    assert len(fig.axes) == 2
    (line,) = fig.axes[0].lines
    assert line.get_label() == "train" and list(line.get_xdata()) == [1, 2, 3, 4]
    assert list(line.get_ydata()) == [3.0, 2.0, 1.5, 1.0]
    assert list(fig.axes[1].lines[0].get_ydata()) == [0.1, 0.2, 0.3, 0.4]
    assert len(plot_history({"train_loss": [1.0, 0.5]}).axes) == 1


def test_plot_history_into_given_axes():
    fig, axes = plt.subplots(1, 2)
    assert plot_history(HISTORY, axes=axes) is fig
    assert len(axes[0].lines) == 2
    with pytest.raises(ValueError, match="axes"):
        plot_history(HISTORY, axes=[axes[0]])


def test_show_images_grid_and_titles():
    images = torch.rand(10, 1, 8, 8)
    fig = show_images(images, labels=torch.arange(10) % 3, ncols=4, class_names=["cat", "dog", "bird"])
    assert len(fig.axes) == 10  # 3 rows of 4, the two empty cells removed
    assert [ax.get_title() for ax in fig.axes[:4]] == ["cat", "dog", "bird", "cat"]
    assert fig.axes[4].get_subplotspec().rowspan.start == 1  # the 5th image starts row 2
    shown = fig.axes[2].images[0].get_array()
    expected = (images[2, 0] - images[2, 0].min()) / (images[2, 0].max() - images[2, 0].min())
    assert np.allclose(shown, expected.numpy())


@pytest.mark.parametrize("shape", [(3, 3, 16, 16), (3, 16, 16)])
def test_show_images_colour_and_channelless(shape):
    images = torch.randn(shape)  # normalised data: negative values are fine
    fig = show_images(images)
    assert len(fig.axes) == 3 and all(ax.get_title() == "" for ax in fig.axes)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown.shape == ((16, 16, 3) if len(shape) == 4 else (16, 16))
    assert shown.min() == 0 and shown.max() == 1


def test_show_images_rejects_bad_shapes():
    with pytest.raises(ValueError, match="channels"):
        show_images(torch.rand(2, 2, 8, 8))
    with pytest.raises(ValueError, match="N, C, H, W"):
        show_images(torch.rand(8, 8))


def test_show_predictions_marks_right_and_wrong():
    images = torch.rand(4, 1, 8, 8)
    fig = show_predictions(images, targets=torch.tensor([1, 2, 3, 4]), predictions=[1, 0, 3, 9], ncols=2)
    titles = [ax.title for ax in fig.axes]
    assert [t.get_text() for t in titles] == [
        "✓ pred 1 (true 1)", "✗ pred 0 (true 2)", "✓ pred 3 (true 3)", "✗ pred 9 (true 4)"]
    colours = [t.get_color() for t in titles]
    assert colours == [CORRECT_COLOUR, WRONG_COLOUR, CORRECT_COLOUR, WRONG_COLOUR]
    assert to_rgba(CORRECT_COLOUR) != to_rgba(WRONG_COLOUR)
    named = show_predictions(images[:1], [0], [1], class_names=["shirt", "shoe"])
    assert named.axes[0].get_title() == "✗ pred shoe (true shirt)"


def test_confusion_matrix_counts():
    targets = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])
    predictions = torch.tensor([0, 1, 1, 1, 2, 2, 0, 0])
    expected = torch.tensor([[2, 1, 0], [0, 2, 1], [1, 0, 1]])
    got = confusion_matrix(targets, predictions, num_classes=3)
    assert torch.equal(got, expected) and got.dtype == torch.int64
    assert confusion_matrix(targets, predictions, 4).shape == (4, 4)  # a class that never occurs
    with pytest.raises(ValueError, match=r"targets must be in 0\.\.1"):
        confusion_matrix(targets, predictions, num_classes=2)
    with pytest.raises(ValueError, match="predictions must be"):
        confusion_matrix(targets, torch.tensor([0, 1, 1, 1, 2, 2, 0, 3]), num_classes=3)
    with pytest.raises(ValueError, match="length"):
        confusion_matrix(targets, predictions[:3], num_classes=3)


def cell_texts(ax):
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


def test_plot_confusion_matrix_annotates_counts():
    targets = [0, 0, 1, 1, 1, 2, 2, 0]
    predictions = [0, 1, 1, 1, 2, 2, 0, 0]
    fig = plot_confusion_matrix(torch.tensor(targets), torch.tensor(predictions), class_names=["a", "b", "c"])
    ax = fig.axes[0]
    texts = cell_texts(ax)  # (row, column) -> text
    assert texts == {(0, 0): "2", (0, 1): "1", (0, 2): "0", (1, 0): "0", (1, 1): "2", (1, 2): "1",
                     (2, 0): "1", (2, 1): "0", (2, 2): "1"}
    assert np.array_equal(ax.images[0].get_array(), [[2, 1, 0], [0, 2, 1], [1, 0, 1]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"


def test_plot_confusion_matrix_normalized_into_given_ax():
    fig, ax = plt.subplots()
    targets, predictions = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 1])
    assert plot_confusion_matrix(targets, predictions, normalize=True, ax=ax) is fig
    assert cell_texts(ax) == {(0, 0): "0.67", (0, 1): "0.33", (1, 0): "0.00", (1, 1): "1.00"}
    assert "rows sum to 1" in ax.get_title()
