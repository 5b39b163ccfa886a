"""Opt-in pytest plugin: name the test that leaves an unclosed resource to the garbage collector.

An unclosed transport, socket or session caught in a reference cycle is freed, with its
ResourceWarning, only when the collector next runs: at the setup of whatever test comes much later
on that worker, which then fails (``filterwarnings = "error"``) for nothing it did. With this plugin
the collector runs after every test, and a test that leaked fails at its own teardown with what it
leaked and, under ``PYTHONTRACEMALLOC=20``, where that was made:

    ./portgate.sh test -p tests.leak_finder
    .venv/bin/python -m pytest -p no:xdist -p tests.leak_finder tests/test_x.py

It is a diagnosis, not a cure: the leak is closed where it is made. Each test costs a full collection.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
import warnings
from collections.abc import Iterator
from typing import Any

import pytest


def _leaks_after_collecting() -> list[str]:
    """Collect garbage; describe each ResourceWarning (and unraisable exception) it set off."""
    found: list[str] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: found.append(f"{unraisable.exc_type.__name__}: {unraisable.exc_value}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    for warning in caught:
        if issubclass(warning.category, ResourceWarning):
            found.append(f"{warning.message}{_made_at(warning.source)}")
    return found


def _made_at(source: Any) -> str:
    traceback = tracemalloc.get_object_traceback(source) if source is not None else None
    return "\n    made at:\n" + "\n".join(traceback.format()) if traceback else ""


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    result = yield
    leaks = _leaks_after_collecting()
    if leaks:
        raise AssertionError(f"{item.nodeid} left to the garbage collector:\n  " + "\n  ".join(leaks))
    return result
