"""The live metrics plot: points in, PNGs out, few redraws, resends not drawn twice."""

from __future__ import annotations

import io

from matplotlib.image import imread

from jupyter_orch.kernel import metricplot
from jupyter_orch.kernel.metricplot import MetricPlot


def pngs() -> tuple[list[bytes], metricplot.Show]:
    shown: list[bytes] = []
    return shown, shown.append


def test_nothing_is_drawn_before_a_metric_and_the_end_draws_everything() -> None:
    shown, show = pngs()
    plot = MetricPlot(show, title="task x", max_rate=0.001)  # throttled: only the first draw and the last
    plot.finish()
    assert shown == []
    plot.add(0, 0, [[0.0, 0, "training", {"loss": 2.0, "acc": 0.1}]])
    plot.add(0, 1, [[0.0, 1, "training", {"loss": 1.0, "acc": 0.5}], [0.0, 1, "validation", {"loss": 1.5}]])
    assert len(shown) == 1  # the first point draws at once, the next wait
    plot.finish()
    assert len(shown) == 2
    image = imread(io.BytesIO(shown[-1]), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 400  # two panels side by side
    assert plot.summary() == "loss (training): last 1; acc (training): last 0.5; loss (validation): last 1.5"


def test_a_resend_after_a_reconnect_is_not_drawn_twice() -> None:
    _, show = pngs()
    plot = MetricPlot(show)
    plot.add(0, 0, [[0.0, None, "training", {"loss": float(i)}] for i in range(3)])
    plot.add(0, 1, [[0.0, None, "training", {"loss": float(i)}] for i in (1, 2, 3)])
    plot.add(1, 0, [[0.0, None, "training", {"loss": 9.0}]])  # a retry numbers from 0 again
    line = plot._lines[("loss", "training", "")]
    assert line.x == [0.0, 1.0, 2.0, 3.0, 0.0]
    assert plot.points == 5


def test_redraws_are_throttled_at_a_thousand_points_a_second() -> None:
    shown, show = pngs()
    plot = MetricPlot(show, max_rate=10)
    for i in range(300):  # as fast as they come: far more points than draws
        plot.add(0, i, [[0.0, i, "training", {"loss": 1.0 / (i + 1)}]])
    plot.finish()
    assert 2 <= len(shown) <= 30 and plot.points == 300


def test_a_long_series_is_cut_down_as_it_grows_and_keeps_its_ends() -> None:
    _, show = pngs()
    plot = MetricPlot(show, max_rate=0.001)
    n = metricplot.CUT_AT * 3
    plot.add(0, 0, [[0.0, i, "training", {"loss": float(i % 7)}] for i in range(n)])
    line = plot._lines[("loss", "training", "")]
    assert len(line.x) < metricplot.CUT_AT
    assert line.x[0] == 0.0 and line.x[-1] == float(n - 1)
    assert line.x == sorted(line.x)


def test_many_metrics_and_sources_fit_one_figure() -> None:
    shown, show = pngs()
    plot = MetricPlot(show, max_rate=0.001)
    for source in ("train", "eval"):
        values = {f"m{i}": float(i) for i in range(metricplot.MAX_PANELS + 3)}
        plot.add(
            0, 0, [[0.0, 1, "training", values], [0.0, 2, "training", {**values, "m0": None}]], source=source
        )
    plot.finish()
    assert imread(io.BytesIO(shown[-1]), format="png").ndim == 3
