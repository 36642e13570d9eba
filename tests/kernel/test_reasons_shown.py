"""How a cell words why its task waits: one "waiting", and a place in line said once and
again when the task is next, not at every step the line moves."""

from __future__ import annotations

from jupyter_orch.kernel.output import reason_key, waiting_text

PLACE = "waiting: {} in line for A100 GPUs (fair share: your recent use is {} GPU-hours)"


def test_a_reason_reads_with_one_waiting() -> None:
    assert waiting_text("no worker has 1 gpu") == "waiting: no worker has 1 gpu"
    assert waiting_text(PLACE.format("3rd", "0.4")) == PLACE.format("3rd", "0.4")
    assert waiting_text("waiting for 2 dependencies") == "waiting for 2 dependencies"


def test_a_moving_place_in_line_is_the_same_news_until_the_task_is_next() -> None:
    keys = {
        reason_key(PLACE.format(n, use)) for n in ("21st", "3rd", "2nd", "11th") for use in ("0.4", "12.0")
    }
    assert len(keys) == 1
    assert reason_key(PLACE.format("1st", "0.4")) not in keys
    assert reason_key("waiting: you use 1 of your 1 GPUs") != reason_key(PLACE.format("2nd", "0.4"))
