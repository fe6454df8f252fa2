"""Lifetimes (numpy keeps a tensor's storage alive), no leak over many small ops, and the GIL released
during a long backward so that other Python threads run."""
import gc
import sys
import threading
import time
import tracemalloc

import numpy as np

import xgrad


def test_a_numpy_array_keeps_the_storage_alive():
    t = xgrad.arange(0, 1000, 1.0)
    a = t.numpy()
    refs = sys.getrefcount(t)
    del t
    gc.collect()
    xgrad.randn(1000)            # reuse of freed storage would overwrite it
    assert a[999] == 999.0 and a.sum() == sum(range(1000))
    b = np.asarray(xgrad.ones(5))
    assert b.tolist() == [1.0] * 5 and refs >= 2


def test_no_leak_over_ten_thousand_tiny_ops():
    w = xgrad.randn(4, 4, requires_grad=True)
    x = xgrad.randn(4, 4)

    def step():
        loss = ((x @ w).relu() + 1.0).sum()
        loss.backward()
        w.grad = None

    for _ in range(200):
        step()
    gc.collect()
    tracemalloc.start()
    before_py = tracemalloc.get_traced_memory()[0]
    before_arrays = xgrad._xgrad.live_storage_bytes()
    for _ in range(2500):        # 4 ops and a backward each: 10,000 ops
        step()
    gc.collect()
    grown_py = tracemalloc.get_traced_memory()[0] - before_py
    tracemalloc.stop()
    assert xgrad._xgrad.live_storage_bytes() == before_arrays
    assert grown_py < 64 * 1024, f"Python allocations grew by {grown_py} bytes"


def test_the_gil_is_released_during_backward():
    xgrad.manual_seed(0)
    w = xgrad.randn(384, 384, requires_grad=True)
    h = xgrad.randn(256, 384)
    for _ in range(30):
        h = (h @ w).tanh()
    loss = h.sum()
    ticks = []
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=counter)
    thread.start()
    time.sleep(0.01)
    start = time.perf_counter()
    loss.backward()
    end = time.perf_counter()
    stop.set()
    thread.join()
    during = [t for t in ticks if start < t < end]
    assert end - start > 0.01, "backward too short to tell"
    assert len(during) >= 3, f"the thread ticked {len(during)} times during a {end - start:.3f} s backward"
