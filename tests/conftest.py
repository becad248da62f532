"""Fixtures for chatd's tests."""

from __future__ import annotations

import compileall
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest
from browser import Windows
from helpers import NOW
from redis_server import RedisServer, running_redis
from twisted.internet.task import Clock

from chatd.store.memory import MemoryHistory

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile chatd's (and the benchmark's) modules before the run, once.

    Every twistd, benchmark and client process the tests start imports some 60
    of chatd's modules: where PYTHONDONTWRITEBYTECODE is set and no bytecode is
    there yet, each start compiled them all again (about 0.1 s each time, a
    few hundred times a run). __pycache__ is in .gitignore.
    """
    for package in ("chatd", "bench", "twisted/plugins"):
        compileall.compile_dir(ROOT / package, quiet=1)


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> Clock:
    """A fake clock for anything that waits: at 0, or at NOW (a moment with a
    date, for history's timestamps) in a module marked `dated`."""
    clock = Clock()
    if request.node.get_closest_marker("dated") is not None:
        clock.advance(NOW)
    return clock


@pytest.fixture
def store(clock: Clock) -> MemoryHistory:
    """History kept in memory, on the test's clock."""
    return MemoryHistory(clock)


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the test's own on a free loopback port (redis_server.py).

    Skipped where redis-server is missing, failed instead under CI=true.
    """
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def windows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Windows]:
    """The run's headless Chromium windows (tests/browser.py), started when a
    test first takes one, reset between tests, quit at the end."""
    kept = Windows(tmp_path_factory.mktemp("browsers"))
    try:
        yield kept
    finally:
        kept.close()


@pytest.fixture
def page(windows: Windows) -> Iterator[WebDriver]:
    """A headless Chromium window (tests/browser.py); skipped where there is none."""
    yield windows.take("first")
    windows.give_back("first")


@pytest.fixture
def second(windows: Windows) -> Iterator[WebDriver]:
    """Another window, with a profile of its own (another person, or a tab)."""
    yield windows.take("second")
    windows.give_back("second")


# What makes a test slow: it starts a process (a twistd, a redis-server, Xvfb, a
# browser, a benchmark script) rather than running in this one on a fake clock.
PROCESS_MODULES = frozenset({"subprocess", "daemon", "browser", "tk_driver"})
PROCESS_FIXTURES = frozenset({"redis_server"})


def starts_processes(module: ModuleType) -> bool:
    """Tell whether a test module imports what starts processes."""
    for value in vars(module).values():
        name = value.__name__ if isinstance(value, ModuleType) else None
        name = name or getattr(value, "__module__", None)
        if name in PROCESS_MODULES:
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow every test that starts a process: `pytest -m "not slow"` is the
    in-process tier, which runs in seconds."""
    slow = pytest.mark.slow
    verdicts: dict[str, bool] = {}
    for item in items:
        module = getattr(item, "module", None)
        if module is None:
            continue
        if module.__name__ not in verdicts:
            verdicts[module.__name__] = starts_processes(module)
        fixtures = set(getattr(item, "fixturenames", ()))
        if verdicts[module.__name__] or fixtures & PROCESS_FIXTURES:
            item.add_marker(slow)
