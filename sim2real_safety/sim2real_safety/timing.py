"""The wall-clock tick timer of the nodes on a robot, without ROS.

``PreciseTimer`` is what ``RclpyNode.create_timer(..., precise=True)`` runs the control
node's 100 Hz tick on (unless use_sim_time); it lives here, free of rclpy, so that
``sim2real bench control`` measures that very timer on any machine.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Callable


class PreciseTimer:
    """Calls ``callback`` every ``period_s`` of wall time from a thread of its own.

    Sleeps to 0.3 ms before each deadline, then waits out the rest; a deadline
    missed by more than a period is skipped (no burst of catch-up ticks).
    """

    SPIN_S = 0.0003

    def __init__(self, period_s: float, callback: Callable[[], None], name: str,
                 priority: int = 0, alive: Callable[[], bool] = lambda: True):
        self.period_s = period_s
        self.alive = alive
        self.callback = callback
        self.priority = priority
        self._stop = threading.Event()
        # the tick thread must get the interpreter soon after its deadline, not after the
        # executor thread's default 5 ms slice
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        if self.priority > 0:
            set_realtime(0, self.priority)  # this thread only
        deadline = time.monotonic() + self.period_s
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining > self.SPIN_S:
                if self._stop.wait(remaining - self.SPIN_S):
                    return
            while time.monotonic() < deadline:
                pass
            if self._stop.is_set() or not self.alive():
                return  # shutting down (Ctrl-C shuts the context down before the clean-up)
            try:
                self.callback()
            except Exception:  # noqa: BLE001 -- one bad tick must not end the loop
                if self._stop.is_set() or not self.alive():
                    return
                traceback.print_exc()
            deadline += self.period_s
            late = time.monotonic() - deadline
            if late > self.period_s:
                deadline += self.period_s * int(late / self.period_s)

    def cancel(self) -> None:
        """Stop the thread."""
        self._stop.set()


def set_realtime(thread_id: int, priority: int) -> bool:
    """SCHED_FIFO at ``priority`` for a thread (0: the calling one); False when not allowed."""
    try:
        os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(max(1, priority)))
        return True
    except (PermissionError, OSError):
        return False  # no rtprio allowed: ordinary scheduling
