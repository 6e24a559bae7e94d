"""The node interface on rclpy: what a suite node class gets on the robot PC.

See ``sim2real_safety.node_interface`` for the interface itself. ``run(NodeClass)`` is every
node's ``main()``: init, build, spin until Ctrl-C or shutdown, release, exit 0.
"""
from __future__ import annotations

import array
from concurrent.futures import ThreadPoolExecutor
import importlib
import signal
import sys
import threading
import time
from typing import Callable, Sequence

import numpy as np
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sim2real_safety.node_interface import (
    check_parameter,
    Param,
    ParameterError,
    ROS_BUILTIN_PARAMETERS,
)
from sim2real_safety.timing import PreciseTimer, set_realtime

QOS_PROFILES = {
    'sensor': QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                         reliability=ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.VOLATILE),
    'default': QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE),
    'command': QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE),
    'latched': QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL),
}

_PARAMETER_TYPES = {
    'bool': ParameterType.PARAMETER_BOOL, 'integer': ParameterType.PARAMETER_INTEGER,
    'double': ParameterType.PARAMETER_DOUBLE, 'string': ParameterType.PARAMETER_STRING,
    'bool_array': ParameterType.PARAMETER_BOOL_ARRAY,
    'integer_array': ParameterType.PARAMETER_INTEGER_ARRAY,
    'double_array': ParameterType.PARAMETER_DOUBLE_ARRAY,
    'string_array': ParameterType.PARAMETER_STRING_ARRAY,
}
_ARRAY_CODES = {np.dtype(np.float64): 'd', np.dtype(np.float32): 'f',
                np.dtype(np.uint8): 'B', np.dtype(np.int8): 'b', np.dtype(np.int32): 'i',
                np.dtype(np.uint32): 'I', np.dtype(np.int64): 'q', np.dtype(np.uint64): 'Q'}


def _interface_class(typename: str):
    """The rosidl-generated class of a message, a service, or a service's request/response.

    ``pkg/msg/Name``, ``pkg/srv/Name``, ``pkg/srv/Name_Request`` or ``_Response``,
    ``pkg/action/Name`` or ``pkg/action/Name_Goal``, ``_Result``, ``_Feedback``.
    """
    package, kind, name = typename.split('/')
    module = importlib.import_module(f'{package}.{kind}')
    parts = {'srv': ('_Request', '_Response'), 'action': ('_Goal', '_Result', '_Feedback')}
    for suffix in parts.get(kind, ()):
        if name.endswith(suffix):
            return getattr(getattr(module, name[:-len(suffix)]), suffix[1:])
    return getattr(module, name)


def _field_value(value):
    """Numpy arrays as the array.array rosidl's setters take (they refuse ndarrays)."""
    if isinstance(value, np.ndarray):
        code = _ARRAY_CODES.get(value.dtype)
        if code is None:
            return value.tolist()
        return array.array(code, np.ascontiguousarray(value).reshape(-1).tobytes())
    return value


class RclpyMessages:
    """The message factory on rclpy: generated classes, built from keyword fields."""

    def __init__(self):
        self._classes: dict[str, type] = {}

    def cls(self, typename: str) -> type:
        """The generated class of ``typename``."""
        found = self._classes.get(typename)
        if found is None:
            found = self._classes[typename] = _interface_class(typename)
        return found

    def make(self, typename: str, **fields):
        """A message of ``typename``; unnamed fields keep their defaults."""
        return self.cls(typename)(**{k: _field_value(v) for k, v in fields.items()})

    def stamp(self, stamp_ns: int):
        """A ``builtin_interfaces/Time``."""
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.cls('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)

    def duration(self, duration_ns: int):
        """A ``builtin_interfaces/Duration``."""
        sec, nanosec = divmod(int(duration_ns), 1_000_000_000)
        return self.cls('builtin_interfaces/msg/Duration')(sec=sec, nanosec=nanosec)

    def header(self, stamp_ns: int, frame_id: str = ''):
        """A ``std_msgs/Header``."""
        return self.cls('std_msgs/msg/Header')(stamp=self.stamp(stamp_ns), frame_id=frame_id)

    @staticmethod
    def byte(value: int) -> bytes:
        """A ``byte`` field's value (rclpy wants one-byte bytes)."""
        return bytes([value])


class RclpyNode:
    """The node interface over one ``rclpy.node.Node``."""

    def __init__(self, node: Node):
        self.node = node
        self.name = node.get_name()
        self.messages = RclpyMessages()
        self.logger = node.get_logger()
        self._worker: ThreadPoolExecutor | None = None
        self._shutdown: list[Callable[[], None]] = []
        self.declared: list[Param] = []
        self.lock = threading.RLock()   # one callback of this node at a time
        self.realtime_priority = 0      # of a precise timer's thread, if one asked for it

    # --------------------------------------------------------------------- parameters
    def declare_parameters(self, params: Sequence[Param], commissioned=None,
                           final: bool = True) -> dict:
        """Declare with descriptors (type, description, range, read-only) and check values.

        A ``commissioned`` value (the cell file's) is declared over the parameter file and
        the overrides, so ``ros2 param get`` shows the value the node uses.
        """
        commissioned = dict(commissioned or {})
        stray = sorted(set(commissioned) - {p.name for p in params})
        if stray:
            raise ParameterError(f'{self.name}: commissioned value(s) for undeclared {stray}')
        values = {}
        for param in params:
            descriptor = ParameterDescriptor(
                name=param.name, type=_PARAMETER_TYPES[param.kind], read_only=True,
                description=param.description + (
                    f' (one of {", ".join(param.choices)})' if param.choices else ''))
            if param.range is not None and param.kind in ('double', 'double_array'):
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(param.range[0]), to_value=float(param.range[1]))]
            elif param.range is not None and param.kind in ('integer', 'integer_array'):
                descriptor.integer_range = [IntegerRange(
                    from_value=int(param.range[0]), to_value=int(param.range[1]))]
            if param.default is None:  # required: typed, no value unless one is given
                default = Parameter.Type(_PARAMETER_TYPES[param.kind])
            else:
                default = list(param.default) if isinstance(param.default, tuple) \
                    else param.default
            if param.name in commissioned:
                # checked first: rclpy refuses an out-of-range value with a traceback
                default = check_parameter(self.name, param, commissioned[param.name])
                descriptor.description += ' (this value: from calibration_file)'
                value = self.node.declare_parameter(param.name, default, descriptor,
                                                    ignore_override=True).value
            else:
                value = self.node.declare_parameter(param.name, default, descriptor).value
            values[param.name] = check_parameter(self.name, param, value)
            self.declared.append(param)
        if not final:
            return values
        # rclpy keeps parameters from files and --ros-args -p that nothing declared; a typo
        # there would leave a limit at its default, so it is an error naming the key.
        overrides = set(getattr(self.node, '_parameter_overrides', {}))
        unknown = sorted(overrides - {p.name for p in self.declared} - ROS_BUILTIN_PARAMETERS
                         - set(self.node._parameters))
        if unknown:
            raise ParameterError(f'{self.name}: unknown parameter(s) {unknown}; declared: '
                                 f'{sorted(p.name for p in self.declared)}')
        return values

    # ------------------------------------------------------------------ communication
    def create_publisher(self, name: str, typename: str, qos: str):
        """A publisher of ``typename`` on ``name`` with the suite's ``qos`` profile."""
        return self.node.create_publisher(self.messages.cls(typename), name, QOS_PROFILES[qos])

    def create_subscription(self, name: str, typename: str, callback, qos: str):
        """A subscription of ``typename`` on ``name``."""
        return self.node.create_subscription(self.messages.cls(typename), name,
                                             self._serialized(callback), QOS_PROFILES[qos])

    def create_timer(self, period_s: float, callback, steady: bool = False,
                     precise: bool = False, priority: int = 0):
        """A timer on the node's clock (sim time when use_sim_time is set).

        ``steady``: on the steady clock instead (a node that itself drives simulated time).
        ``precise``: on wall time, a thread of its own that sleeps to just before each
        deadline and waits out the rest, instead of the executor's timer (whose wake-ups
        queue behind other callbacks); ``priority`` > 0 asks for SCHED_FIFO at that priority
        (needs the rtprio limit; refused quietly otherwise). Under use_sim_time it is an
        ordinary timer: simulated time has no wall deadlines.
        """
        callback = self._serialized(callback)
        if precise and not self.node.get_parameter('use_sim_time').value:
            timer = PreciseTimer(period_s, callback, f'{self.name}_tick', priority,
                                 alive=self.node.context.ok)
            self.realtime_priority = max(self.realtime_priority, priority)
            self._shutdown.append(timer.cancel)
            return timer
        if steady:
            return self.node.create_timer(period_s, callback,
                                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        return self.node.create_timer(period_s, callback)

    def _serialized(self, callback):
        """``callback`` under the node's lock.

        A precise timer's thread and the executor never run two callbacks of one node at once.
        """
        lock = self.lock

        def serialized(*args):
            with lock:
                return callback(*args)
        return serialized

    def create_service(self, name: str, srv_typename: str, callback):
        """A service; ``callback(request, response) -> response``."""
        return self.node.create_service(self.messages.cls(srv_typename), name,
                                        self._serialized(callback))

    def create_client(self, name: str, srv_typename: str) -> 'ServiceClient':
        """A client of a service; its answers come back under the node's lock."""
        return ServiceClient(self.node, self.messages.cls(srv_typename), name, self._serialized)

    def create_action_client(self, name: str, action_typename: str) -> 'ActionClient':
        """A client of an action server (``pkg/action/Name``)."""
        return ActionClient(self.node, self.messages.cls(action_typename), name)

    def create_transform_lookup(self) -> Callable:
        """A tf2 lookup: ``lookup(target, source)``, the newest transform or None.

        The transform as ``(stamp_ns, (x, y, z), (qx, qy, qz, qw))``; None while tf2 has
        none. ROS 2 only (the driver relay).
        """
        from rclpy.time import Time
        from tf2_ros import Buffer, TransformException, TransformListener

        buffer = Buffer()
        self._tf_listener = TransformListener(buffer, self.node)   # kept: it subscribes

        def lookup(target: str, source: str):
            try:
                found = buffer.lookup_transform(target, source, Time())   # the newest
            except TransformException:
                return None
            t, r = found.transform.translation, found.transform.rotation
            stamp = found.header.stamp
            return (stamp.sec * 1_000_000_000 + stamp.nanosec, (t.x, t.y, t.z),
                    (r.x, r.y, r.z, r.w))
        return lookup

    def create_action_server(self, name: str, action_typename: str, execute):
        """An action server.

        ``execute(goal_handle)`` may be a coroutine: it may wait for the node's own callbacks
        without blocking them.
        """
        from rclpy.action import ActionServer
        return ActionServer(self.node, self.messages.cls(action_typename), name, execute)

    def now_ns(self) -> int:
        """The node's clock."""
        return self.node.get_clock().now().nanoseconds

    # ---------------------------------------------------------------------- threads
    def run_async(self, work: Callable, done: Callable, failed: Callable) -> None:
        """Run ``work()`` on the node's worker thread.

        ``done`` / ``failed`` are called there too (rclpy publishers are thread-safe).
        """
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)

        done, failed = self._serialized(done), self._serialized(failed)

        def job():
            started = time.perf_counter()
            try:
                result = work()
            except Exception as exc:  # noqa: BLE001 -- reported to the node, never lost
                failed(exc)
                return
            done(result, time.perf_counter() - started)
        self._worker.submit(job)

    def on_shutdown(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the node stops."""
        self._shutdown.append(callback)

    def close(self) -> None:
        """Run the shutdown callbacks and stop the worker."""
        for callback in self._shutdown:
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 -- shutdown goes on for the others
                print(f'{self.name}: on shutdown: {exc}', file=sys.stderr)
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)


class ServiceClient:
    """Calls a service without blocking; the response comes back as a callback."""

    def __init__(self, node: Node, srv_class, name: str, serialized: Callable):
        self._client = node.create_client(srv_class, name)
        self._request = srv_class.Request
        self._serialized = serialized

    def ready(self) -> bool:
        """True once the service is discovered."""
        return self._client.service_is_ready()

    def call(self, on_done: Callable, **fields) -> None:
        """Call with the request ``fields``; then ``on_done(response)`` (None: it failed)."""
        request = self._request()
        for key, value in fields.items():
            setattr(request, key, value)
        self._client.call_async(request).add_done_callback(
            self._serialized(lambda future: on_done(future.result())))


class ActionClient:
    """Sends goals; the feedback and the outcome come back as callbacks on the executor."""

    def __init__(self, node: Node, action_class, name: str):
        from rclpy.action import ActionClient as RclpyActionClient
        self._client = RclpyActionClient(node, action_class, name)
        self.goal_class = action_class.Goal

    def ready(self) -> bool:
        """True once the action server is discovered."""
        return self._client.server_is_ready()

    def send(self, goal, on_feedback: Callable, on_done: Callable) -> None:
        """Send ``goal``; then ``on_feedback(feedback)`` and ``on_done(accepted, status, result)``.

        ``status`` is action_msgs/GoalStatus: 4 succeeded, 5 canceled, 6 aborted.
        """
        future = self._client.send_goal_async(
            goal, feedback_callback=lambda message: on_feedback(message.feedback))

        def accepted(goal_future):
            handle = goal_future.result()
            if handle is None or not handle.accepted:
                on_done(False, 0, None)
                return
            handle.get_result_async().add_done_callback(
                lambda result: on_done(True, result.result().status, result.result().result))
        future.add_done_callback(accepted)


def run(node_class, args=None) -> None:
    """A suite node's ``main()``: exits 0 after Ctrl-C or a shutdown, 1 on a start-up error.

    A start-up error (a bad parameter, a missing model) is one line naming what is wrong,
    not a traceback.
    """
    # rclpy's SIGINT handler shuts the context down (the executor's spin then ends) and chains
    # to the Python handler it found: Python's default raises KeyboardInterrupt wherever the
    # main thread is, even half-way through constructing an rclpy Task, whose __del__ then
    # prints a traceback on the way out. A Python handler that does nothing leaves the
    # shutdown to rclpy.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    rclpy.init(args=args)
    ros_node = interface = executor = None
    code = 0
    try:
        ros_node = Node(node_class.NAME)
        interface = RclpyNode(ros_node)
        node_class(interface)
        if interface.realtime_priority > 0:
            # This process is the node's own: its executor (the main thread, with which the
            # tick thread shares the node's lock) goes just below the tick, so a lock held by
            # a preempted ordinary thread never delays the tick (priority inversion).
            set_realtime(0, interface.realtime_priority - 1)
        executor = SingleThreadedExecutor()
        executor.add_node(ros_node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: BLE001 -- sorted below
        if not rclpy.ok():
            # Ctrl-C shuts the context down from the signal handler; an executor in the middle
            # of taking a message then fails on an invalidated handle: that is the shutdown.
            pass
        elif isinstance(exc, (ValueError, OSError)):  # ParameterError, LimitsError, a file
            print(f'{node_class.NAME}: {exc}', file=sys.stderr)
            code = 1
        else:
            raise
    finally:
        # Ctrl-C reaches a launched node twice (the terminal signals the whole process group,
        # and ros2 launch forwards it): a second SIGINT must not interrupt the clean-up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if interface is not None:
            interface.close()
        for release in ((executor.shutdown if executor is not None else None),
                        (ros_node.destroy_node if ros_node is not None else None)):
            try:
                if release is not None:
                    release()
            except Exception:  # noqa: BLE001 -- the context may already be shut down
                pass
        executor = None  # destroyed here, not by the garbage collector after shutdown
        rclpy.try_shutdown()
    sys.exit(code)
