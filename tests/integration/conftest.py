"""Integration tests' reporting: what the admission property test checked, at the end of
pytest's output (it is captured inside the test)."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    module = sys.modules.get("tests.integration.test_admission_properties")
    line = module.summary() if module is not None else None
    if line:
        terminalreporter.write_sep("-", line)
