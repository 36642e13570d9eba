"""How a call travels: large buffers out of band (copied once, aligned, writable on the
worker), plain pickles otherwise, and a damaged payload is an error that says so."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from jupyter_orch.serialization import OOB_MAGIC, dumps_call, loads_call


def combine(a, b, scale=1.0):
    return (a.sum() + b.sum()) * scale


def test_large_arrays_travel_out_of_band_and_arrive_writable_and_aligned() -> None:
    big = np.random.default_rng(0).random(300_000)
    other = np.arange(100_000, dtype=np.int32)[::2]  # not contiguous: pickled in band
    payload, deps = dumps_call(combine, (big, other), {"scale": 2.0})
    assert payload.startswith(OOB_MAGIC) and deps == []
    # as the executor holds it: a writable buffer (a file read into a bytearray)
    fn, args, kwargs = loads_call(bytearray(payload))
    assert np.array_equal(args[0], big) and np.array_equal(args[1], other)
    assert args[0].flags.writeable and args[0].ctypes.data % 16 == 0
    args[0][0] = -1.0  # a task may change its arguments, as with a plain pickle
    assert fn(*args, **kwargs) == combine(args[0], other, 2.0)
    # read-only memory (bytes) still gives writable arrays (copied once)
    _, args, _ = loads_call(bytes(payload))
    assert args[0].flags.writeable and np.array_equal(args[0], big)


def test_small_calls_stay_plain_pickles() -> None:
    payload, _ = dumps_call(combine, (np.arange(10), np.arange(3)), {})
    assert payload[:1] == b"\x80"  # a pickle's protocol opcode
    fn, args, _ = loads_call(payload)
    assert fn(*args) == 48


@pytest.mark.parametrize("cut", [12, 40, -1])
def test_a_damaged_out_of_band_payload_is_an_unpickling_error(cut: int) -> None:
    payload, _ = dumps_call(combine, (np.zeros(20_000), np.zeros(1)), {})
    with pytest.raises(pickle.UnpicklingError, match="buffer table|shorter|longer"):
        loads_call(payload[:cut] if cut > 0 else payload + b"x")
