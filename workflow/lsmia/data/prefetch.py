"""Read ahead: overlap loading the next batch with the work on the current one."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Sequence


def prefetched(load: Callable, items: Sequence) -> Iterator:
    """``map(load, items)``, computing up to two items ahead in a background thread."""
    ready: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def worker():
        try:
            for item in items:
                if stop.is_set():
                    return
                ready.put(("ok", load(item)))
        except BaseException as err:  # handed to the consumer, which re-raises it
            ready.put(("error", err))
            return
        ready.put(("done", None))

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "error":
                raise value
            if kind == "done":
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.01)
