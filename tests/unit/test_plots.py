"""What the `mtl compare --plot` and `mtl show --plot` figures draw, read from the figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mtl_runner import compare as cmp  # noqa: E402
from mtl_runner import plots  # noqa: E402
from mtl_runner.results.reader import scan_runs  # noqa: E402
from tests.unit.test_delta_m import TASKS, write_run  # noqa: E402


def history(epochs: int, scale: float = 1.0) -> str:
    rows = ["epoch,loss,a_loss,val_a_loss,b_loss,val_b_loss"]
    rows += [f"{e},{scale / e},{scale / e},{scale * 1.1 / e},{scale / e},{scale / e}"
             for e in range(1, epochs + 1)]
    return "\n".join(rows) + "\n"


@pytest.fixture()
def many_groups(tmp_path):
    """Twelve configurations with long labels, two seeds each; one seed stopped early."""
    for i in range(12):
        for seed in (0, 1):
            long_value = f"{'x' * 60}{i}"
            path = write_run(tmp_path, f"r{i:02d}-{seed}", {"a.accuracy": 0.90 + i / 1000,
                                                            "b.mae": 50.0 + i}, seed=seed,
                             extra={"weighting": {"name": f"w{i}"}, "note": long_value},
                             info={"overrides": [f"weighting.name=w{i}", f"note={long_value}"]})
            (path / "history.csv").write_text(history(3 if seed else 6, 1 + i))
    runs = scan_runs(tmp_path)
    return cmp.compare(runs), runs


def test_compare_bars_start_at_zero_name_the_groups_and_the_figure_is_bounded(many_groups):
    comparison, runs = many_groups
    figure = plots.comparison_figure(comparison, runs)
    try:
        bar_axes = [ax for ax in figure.axes if ax.get_visible() and ax.patches]
        assert [ax.get_title() for ax in bar_axes] == ["a.accuracy (test)", "b.mae (test)"]
        for ax in bar_axes:
            assert ax.get_ylim()[0] == 0  # accuracies 0.90-0.91 are not drawn from 0.89 up
            ticks = [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()]
            assert len(ticks) == 12
            assert all(t.startswith(f"{i + 1}. ") for i, t in enumerate(ticks))
            assert "weighting.name=w0" in ticks[0]
        width, height = figure.get_size_inches()
        assert width <= plots.MAX_WIDTH and height <= plots.MAX_HEIGHT
        figure.canvas.draw()
        [legend] = figure.legends
        box, page = legend.get_window_extent(), figure.bbox
        assert box.x0 >= page.x0 and box.x1 <= page.x1 and box.y0 >= page.y0
        assert len(legend.get_texts()) == 12
    finally:
        plt.close(figure)


def test_learning_curves_average_only_epochs_every_seed_reached(many_groups):
    comparison, runs = many_groups
    figure = plots.comparison_figure(comparison, runs)
    try:
        curve = next(ax for ax in figure.axes if ax.get_title() == "a: validation loss")
        first = curve.get_lines()[0]
        assert list(first.get_xdata()) == [1, 2, 3]  # seed 1 stopped at epoch 3
        assert first.get_ydata()[0] == pytest.approx(1.1)  # mean of two equal curves
    finally:
        plt.close(figure)


def test_delta_bars_carry_the_95_percent_interval(tmp_path):
    for seed, (mtl, base) in enumerate([(0.9, 0.8), (0.85, 0.8), (0.8, 0.8)]):
        write_run(tmp_path, f"m{seed}", {"a.accuracy": mtl}, seed=seed, tasks={"a": TASKS["a"]})
        write_run(tmp_path, f"b{seed}", {"a.accuracy": base}, seed=seed, role="baseline:a",
                  tasks={"a": TASKS["a"]})
    runs = scan_runs(tmp_path)
    comparison = cmp.compare(runs)
    figure = plots.comparison_figure(comparison, runs)
    try:
        delta = next(ax for ax in figure.axes if ax.get_title().startswith("Δm %"))
        [caps] = [c for c in delta.collections]  # the error bar's vertical line
        [(low, high)] = [tuple(sorted(seg[:, 1])) for seg in caps.get_segments()]
        row = comparison.frame.set_index("role").loc["mtl"]
        assert (low, high) == pytest.approx((row["delta_m_ci_low"], row["delta_m_ci_high"]))
    finally:
        plt.close(figure)


def test_run_figure_separates_units_marks_the_best_epoch_and_skips_static_weights():
    epochs = np.arange(1, 7)
    frame = pd.DataFrame({
        "epoch": epochs, "loss": 1 / epochs,
        "a_loss": 1 / epochs, "val_a_loss": 1.2 / epochs, "a_accuracy": 0.5 + epochs / 20,
        "val_a_accuracy": 0.5 + epochs / 25,
        "b_loss": 2 / epochs, "val_b_loss": 2 / epochs, "b_mae": 300 / epochs,
        "val_b_mae": 320 / epochs, "b_r2": 0.1 * epochs, "val_b_r2": 0.08 * epochs,
        "weight_a": 1.0, "weight_b": 1.0,
        "grad_cosine": 0.1 * epochs, "grad_conflict": 0.5 - 0.05 * epochs,
    })
    figure = plots.run_figure(frame, ["a", "b"], "run", best_epoch=4)
    try:
        titles = {ax.get_title(): ax for ax in figure.axes if ax.get_title()}
        assert set(titles) == {"a: loss", "a: score", "b: loss", "b: error (data units)",
                               "b: score", "gradients (shared trunk)"}  # no flat weights panel
        mae = {line.get_label() for line in titles["b: error (data units)"].get_lines()}
        assert "mae" in mae and "r2" not in mae  # MAE in data units, R² on its own axis
        gradients = {line.get_label() for line in titles["gradients (shared trunk)"].get_lines()}
        assert {"grad_cosine", "grad_conflict"} <= gradients
        for ax in titles.values():
            marks = [line for line in ax.get_lines()
                     if line.get_label() == "restored (best) epoch 4"]
            assert len(marks) == 1 and list(marks[0].get_xdata()) == [4, 4]
    finally:
        plt.close(figure)

    changing = frame.assign(weight_a=np.linspace(1, 2, 6))
    figure = plots.run_figure(changing, ["a", "b"], "run")
    try:
        assert "task weights" in {ax.get_title() for ax in figure.axes}
    finally:
        plt.close(figure)
