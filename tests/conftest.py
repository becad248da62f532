"""Fixtures for chatd's tests."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock


@pytest.fixture
def clock() -> Clock:
    """A fake clock for anything that waits."""
    return Clock()
