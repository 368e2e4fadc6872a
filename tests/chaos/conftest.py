"""The chaos suite: real workers under kills, database faults, cut links and hostile input.

Every test here runs in two sizes. `make test` runs the bounded form (small enough for CI on
a 2-core machine); `make chaos` sets TASKMILL_CHAOS=long and runs the sizes the guarantees
are stated at (10,000 tasks, storms of minutes). Tests size themselves with `scaled()`.

Each test reports its figures (tasks, kills, duplicates, seconds, ...) with the `figures`
fixture; they are printed together at the end of the run, whatever pytest captured.
"""

from collections.abc import Iterator

import pytest

from tests.chaos.scale import FIGURES, Figures


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """A dict for this test's figures, printed in the run's closing "chaos figures" section."""
    found: Figures = {}
    yield found
    if found:
        request.config.stash.setdefault(FIGURES, []).append((request.node.nodeid, found))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reported = terminalreporter.config.stash.get(FIGURES, [])
    if not reported:
        return
    terminalreporter.section("chaos figures")
    for nodeid, found in reported:
        line = ", ".join(f"{key}={value}" for key, value in found.items())
        terminalreporter.write_line(f"{nodeid}: {line}")
