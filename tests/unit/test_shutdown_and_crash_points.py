"""The relay's and consumer's shutdown deadline (shared/runtime.py) and the test-only crash points
(shared/crashpoints.py), each in a child process: both end processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from shared.config import REPO_ROOT

SHUTDOWN = """
import asyncio, os, signal, sys
from shared.runtime import _on_signals

async def main() -> None:
    _on_signals(lambda: print("stop asked", flush=True), 0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    while True:
        try:
            await asyncio.sleep(60)  # a commit waiting for a broker that is not coming back
        except asyncio.CancelledError:
            print("cancelled", flush=True)
            if sys.argv[1] == "obeys":
                raise
            # "ignores": the work swallows the cancellation, as a client's stop() stuck in a reconnect would

asyncio.run(main())
"""


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, time.monotonic() - t0


def test_sigterm_cancels_work_that_does_not_stop_after_the_grace() -> None:
    code, out, seconds = _run(SHUTDOWN, "obeys")
    lines = out.splitlines()  # log lines are interleaved (stdout)
    assert lines.index("stop asked") < lines.index("cancelled")
    assert code == 1  # asyncio.run re-raises the cancellation
    assert seconds < 20  # not the hard exit (code 70), which comes 8 s after the cancel


def test_sigterm_exits_even_when_the_cancellation_is_swallowed() -> None:
    code, out, seconds = _run(SHUTDOWN, "ignores")
    assert "cancelled" in out
    assert code == 70  # the hard exit, 0.5 s grace + 8 s after the cancel
    assert 8 <= seconds < 30


CRASH = """
from shared import crashpoints
for n in range(1, 4):
    crashpoints.reached("consumer.after_db_commit")
    print(n, flush=True)
"""


def test_crash_point_kills_the_process_at_its_nth_hit() -> None:
    code, out, _ = _run(CRASH, env={"KENCANA_CRASH_AT": "consumer.after_db_commit:2"})
    assert code == -signal.SIGKILL
    assert [line for line in out.splitlines() if line.isdigit()] == ["1"]
    assert "crash_point_reached" in out


def test_crash_point_of_another_place_or_unset_does_nothing() -> None:
    assert _run(CRASH, env={"KENCANA_CRASH_AT": "relay.after_send:1"})[:2] == (0, "1\n2\n3\n")
    env = {k: v for k, v in os.environ.items() if k != "KENCANA_CRASH_AT"}
    proc = subprocess.run(
        [sys.executable, "-c", CRASH], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert (proc.returncode, proc.stdout) == (0, "1\n2\n3\n")


def test_unknown_crash_point_is_refused() -> None:
    code, _, _ = _run(CRASH, env={"KENCANA_CRASH_AT": "relay.somewhere:1"})
    assert code == 1
