"""The rule for a real component a test needs and this machine lacks (chromium, node, redis):
skip with the reason locally, fail under the ``CI`` environment variable."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_or_fail(what: str, reason: str) -> NoReturn:
    """``what`` cannot run here because of ``reason``: skip, or fail when CI is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} cannot run: {reason}; CI is set, so this fails")
    pytest.skip(reason)
