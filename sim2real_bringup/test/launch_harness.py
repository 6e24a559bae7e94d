"""A launch file started as a user starts it (``ros2 launch``), watched by an rclpy probe.

The launch runs in its own process group with SIGINT at its default (Ctrl-C is SIGINT to the
whole group, as a terminal sends it), on a ROS domain of its own, discovery on this machine.
Every wait is a condition with a deadline.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time

DOMAIN_ID = '57'   # a domain of their own: other ROS tests on this machine stay apart


class Launched:
    """``ros2 launch PACKAGE FILE ARGS`` in the background, with a probe node beside it."""

    def __init__(self, launch_file: str, *args: str):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.env = dict(os.environ, ROS_DOMAIN_ID=DOMAIN_ID, PYTHONUNBUFFERED='1')
        self.log = tempfile.NamedTemporaryFile('w+', suffix='.log', delete=False)
        self.process = subprocess.Popen(
            ['ros2', 'launch', 'sim2real_bringup', launch_file, *args], env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        previous = os.environ.get('ROS_DOMAIN_ID')
        os.environ['ROS_DOMAIN_ID'] = DOMAIN_ID
        try:
            self.context = rclpy.Context()
            rclpy.init(context=self.context)
        finally:
            if previous is None:
                os.environ.pop('ROS_DOMAIN_ID')
            else:
                os.environ['ROS_DOMAIN_ID'] = previous
        self.probe = rclpy.create_node('launch_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.probe)
        self.lock = threading.Lock()
        self.spinning = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.spinning:
            try:
                with self.lock:
                    self.executor.spin_once(timeout_sec=0.005)
            except Exception:  # noqa: BLE001 -- the context is shutting down
                return

    def record(self, topic: str, msg_type, qos) -> list:
        """Every message on ``topic`` as ``(wall time s, message)``."""
        received = []
        with self.lock:
            self.probe.create_subscription(
                msg_type, topic, lambda m: received.append((time.monotonic(), m)), qos)
        return received

    def wait(self, condition, timeout: float) -> bool:
        """Poll ``condition()`` until it holds or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if self.process.poll() is not None:
                return condition()
            time.sleep(0.01)
        return condition()

    def node_names(self) -> set:
        """The nodes the probe discovers."""
        with self.lock:
            return set(self.probe.get_node_names())

    def ros2(self, *args: str, timeout: float = 60.0) -> str:
        """A ``ros2`` CLI command on the launch's domain (no daemon); its output, stripped."""
        done = subprocess.run(['ros2', *args, '--no-daemon'], env=self.env, text=True,
                              capture_output=True, timeout=timeout)
        return (done.stdout + done.stderr).strip()

    def call(self, srv_type, name: str, timeout: float = 20.0, **fields):
        """A service call; returns ``(response, monotonic time the request was sent)``."""
        with self.lock:
            client = self.probe.create_client(srv_type, name)
        assert self.wait(client.service_is_ready, timeout), f'{name} not served'
        with self.lock:
            sent = time.monotonic()
            future = client.call_async(srv_type.Request(**fields))
        assert self.wait(future.done, timeout), f'{name} did not answer'
        return future.result(), sent

    def pid_of(self, executable: str) -> int | None:
        """The pid of one of the launched node processes."""
        result = subprocess.run(['pgrep', '-s', str(self.process.pid), '-f', executable],
                                capture_output=True, text=True, check=False)
        pids = [int(p) for p in result.stdout.split()]
        return pids[0] if pids else None

    def output(self) -> str:
        """Everything the launch printed so far."""
        self.log.flush()
        with open(self.log.name) as handle:
            return handle.read()

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C: SIGINT to the launch's process group; its exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(5)

    def exit_codes(self) -> dict:
        """``{process name: exit code}`` as ros2 launch reported them."""
        codes = {}
        for line in self.output().splitlines():
            found = re.search(r'\[([\w-]+)-\d+\]: process has (finished cleanly|died)', line)
            if found:
                code = re.search(r'exit code (-?\d+)', line)
                codes[found.group(1)] = int(code.group(1)) if code else 0
        return codes

    def close(self) -> None:
        """Stop the probe and, if still running, the launch."""
        self.spinning = False
        self.thread.join(2.0)
        if self.process.poll() is None:
            self.interrupt()
        try:
            self.executor.shutdown()
            self.probe.destroy_node()
        finally:
            import rclpy
            rclpy.try_shutdown(context=self.context)
        os.unlink(self.log.name)


def lifted_grasp(states, effort=5.0, lift=0.03):
    """The first measured RobotState holding the object (closed on it, squeezing) lifted ``lift``.

    ``states``: ``(wall time, RobotState)`` pairs. Held: the fingers stopped short of closed
    (width 5-80 mm) with ``effort`` N or more.
    """
    start_z = None
    for _, m in list(states):
        held = 0.005 < m.gripper_width < 0.08 and m.gripper_effort >= effort
        if not held:
            start_z = None
        elif start_z is None:
            start_z = m.z
        elif m.z - start_z >= lift:
            return m
    return None
