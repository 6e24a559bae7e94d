"""The node interface on the in-process graph: what a suite node class gets without ROS.

See ``sim2real_safety.node_interface`` for the interface. Names resolve through the node's
remappings (the launch graph's, ``sim2real_bringup.launch_graph``) onto absolute topics;
parameters come from the node's section of its config file plus overrides, checked like on
ROS (unknown keys and out-of-range values are errors naming them).

``run_async`` runs the work at once on the simulated clock (the clock stands still while it
runs) and delivers its result ``charge_s`` later: the latency *charged* on the simulated
clock, so runs stay deterministic. The wall time the work really took is handed to ``done``
as measured.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Mapping, Sequence

from sim2real_bringup.interfaces import MESSAGES
from sim2real_bringup.runtime.graph import Graph
from sim2real_safety.node_interface import Param, QOS, resolve_parameters


class GraphLogger:
    """Keeps every record (the tests read them) and forwards to ``logging``."""

    def __init__(self, name: str):
        self.records: list[tuple[int, str, str]] = []
        self._log = logging.getLogger(f'sim2real.{name}')
        self._clock: Callable[[], int] = lambda: 0

    def _emit(self, level: int, text: str) -> None:
        self.records.append((self._clock(), logging.getLevelName(level), text))
        self._log.log(level, text)

    def debug(self, text: str, **_) -> None:
        """A debug line (never per tick at a higher level)."""
        self._emit(logging.DEBUG, text)

    def info(self, text: str, **_) -> None:
        """An info line."""
        self._emit(logging.INFO, text)

    def warning(self, text: str, **_) -> None:
        """A warning line."""
        self._emit(logging.WARNING, text)

    def error(self, text: str, **_) -> None:
        """An error line."""
        self._emit(logging.ERROR, text)


class _Pending:
    """A result of ``run_async`` waiting for its charged latency."""

    __slots__ = ('node', 'callback', 'args')

    def __init__(self, node: 'GraphNode', callback: Callable, args: tuple):
        self.node = node
        self.callback = callback
        self.args = args

    def __call__(self) -> None:
        if not self.node.destroyed:
            self.callback(*self.args)


class GraphNode:
    """One node on the in-process graph."""

    messages = MESSAGES

    def __init__(self, graph: Graph, name: str, remappings: Sequence[tuple[str, str]] = (),
                 parameters: Mapping | None = None, charge_s: Callable[[], float] = lambda: 0.0):
        self.graph = graph
        self.scheduler = graph.scheduler
        self.name = name
        self.remappings = dict(remappings)
        self.given = dict(parameters or {})
        self.parameters: dict = {}     # declared name -> the value in use
        self._declared: list[Param] = []
        self.charge_s = charge_s
        self.logger = GraphLogger(name)
        self.logger._clock = lambda: self.scheduler.now_ns
        self.destroyed = False
        self._subscriptions = []
        self._timers = []
        self._services: list[str] = []
        self._shutdown: list[Callable[[], None]] = []

    def resolve(self, name: str) -> str:
        """The absolute topic or service name of a relative one."""
        resolved = self.remappings.get(name, name)
        return resolved if resolved.startswith('/') else '/' + resolved

    def declare_parameters(self, params: Sequence[Param], commissioned=None,
                           final: bool = True) -> dict:
        """Values from the config file and overrides, checked; unknown keys are errors.

        ``commissioned`` values replace them (the cell file's); ``parameters`` then shows
        the values in use, as ``ros2 param get`` does on ROS.
        """
        values = resolve_parameters(self.name, params, self.given, commissioned,
                                    self._declared, final)
        self._declared.extend(params)
        self.parameters.update(values)
        return values

    def create_publisher(self, name: str, typename: str, qos: str):
        """A publisher on the resolved topic."""
        if qos not in QOS:
            raise ValueError(f'{self.name}: unknown QoS key {qos!r} for {name}')
        return self.graph.create_publisher(self.resolve(name), typename, qos, node=self.name)

    def create_subscription(self, name: str, typename: str, callback, qos: str):
        """A subscription on the resolved topic."""
        if qos not in QOS:
            raise ValueError(f'{self.name}: unknown QoS key {qos!r} for {name}')
        sub = self.graph.create_subscription(self.resolve(name), typename, callback, qos=qos,
                                             node=self.name)
        self._subscriptions.append(sub)
        return sub

    def create_timer(self, period_s: float, callback, steady: bool = False,
                     precise: bool = False, priority: int = 0):
        """A timer on the simulated clock.

        It is the only clock here: ``steady``, ``precise`` and ``priority`` concern wall time
        and do not apply.
        """
        timer = self.scheduler.create_timer(period_s, callback, f'{self.name}')
        self._timers.append(timer)
        return timer

    def create_service(self, name: str, srv_typename: str, callback) -> None:
        """A service on the resolved name."""
        resolved = self.resolve(name)
        self.graph.create_service(resolved, srv_typename, callback, node=self.name)
        self._services.append(resolved)

    def create_client(self, name: str, srv_typename: str) -> '_ServiceClient':
        """A client of a service on the graph (called at once, answered at once)."""
        return _ServiceClient(self.graph, self.resolve(name))

    def create_action_client(self, name: str, action_typename: str):
        """Actions are not part of the in-process graph: nodes that use them run on ROS 2."""
        raise NotImplementedError(f'{self.name}: the action {action_typename} on {name} needs '
                                  'ROS 2 (actions are not part of the in-process runtime)')

    create_action_server = create_action_client

    def now_ns(self) -> int:
        """The simulated clock."""
        return self.scheduler.now_ns

    def run_async(self, work: Callable, done: Callable, failed: Callable) -> None:
        """Run ``work`` now; deliver its outcome after the charged latency."""
        started = time.perf_counter()
        try:
            result = work()
        except Exception as exc:  # noqa: BLE001 -- reported to the node, as on ROS
            outcome = _Pending(self, failed, (exc,))
        else:
            outcome = _Pending(self, done, (result, time.perf_counter() - started))
        self.scheduler.call_later(self.charge_s(), outcome)

    def on_shutdown(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the node is destroyed."""
        self._shutdown.append(callback)

    def destroy(self) -> None:
        """Stop the node: no callback of it runs again (as after ``destroy_node``)."""
        if self.destroyed:
            return
        self.destroyed = True
        for sub in self._subscriptions:
            self.graph.remove_subscription(sub)
        for timer in self._timers:
            timer.cancel()
        for name in self._services:
            self.graph.remove_service(name)
        for callback in self._shutdown:
            callback()


class _ServiceClient:
    """A service call on the in-process graph: synchronous, as the simulated clock stands."""

    def __init__(self, graph: Graph, name: str):
        self.graph, self.name = graph, name

    def ready(self) -> bool:
        """True while a node serves the name."""
        return self.name in self.graph.services()

    def call(self, on_done: Callable, **fields) -> None:
        """Call with the request ``fields``; ``on_done(response)``."""
        on_done(self.graph.call_service(self.name, **fields))
