"""In-memory publish/subscribe with ROS 2 topic names and types, on the scheduler's clock.

Semantics kept from ROS 2 where they matter to the cores: a publish never calls a subscriber
synchronously (the callback runs later, like an executor would run it), subscribers of a topic
see messages in publication order, and a topic has exactly one type. Subscribers must treat a
received message as read-only: it is shared, not copied.
"""
from __future__ import annotations

from typing import Callable

from sim2real_bringup import interfaces
from sim2real_bringup.runtime.scheduler import Scheduler, seconds_to_ns

Tap = Callable[[str, str, int, object], None]


class TopicTypeError(interfaces.InterfaceError):
    """A topic used with two different message types."""


class Publisher:
    """Publishes one message type on one topic."""

    def __init__(self, graph: 'Graph', topic: str, typename: str):
        self.topic = topic
        self.typename = typename
        self._graph = graph

    def publish(self, msg) -> None:
        """Deliver ``msg`` to every subscription and tap of the topic."""
        self._graph._publish(self.topic, self.typename, msg)


class Subscription:
    """A callback on a topic, with an adjustable delivery latency (s) for fault injection."""

    def __init__(self, topic: str, typename: str, callback: Callable[[object], None],
                 latency_s: float):
        self.topic = topic
        self.typename = typename
        self.callback = callback
        self.latency_ns = seconds_to_ns(latency_s)
        self.enabled = True
        self.received = 0

    def set_latency(self, latency_s: float) -> None:
        """Delay every later delivery by ``latency_s`` seconds of simulated time."""
        self.latency_ns = seconds_to_ns(latency_s)


class Graph:
    """The topics of one in-process run."""

    def __init__(self, scheduler: Scheduler, validate: bool = True):
        self.scheduler = scheduler
        self.validate = validate
        self._types: dict[str, str] = {}
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._taps: list[Tap] = []
        self.published = 0

    def _declare(self, topic: str, typename: str) -> None:
        if not topic.startswith('/'):
            raise ValueError(f'topic names are absolute here (start with "/"), got {topic!r}')
        interfaces.message_class(typename)  # raises UnknownMessageTypeError
        known = self._types.setdefault(topic, typename)
        if known != typename:
            raise TopicTypeError(
                f'topic {topic} carries {known}, cannot also use it for {typename}')

    def create_publisher(self, topic: str, typename: str) -> Publisher:
        """A publisher of ``typename`` on ``topic``."""
        self._declare(topic, typename)
        return Publisher(self, topic, typename)

    def create_subscription(self, topic: str, typename: str, callback: Callable[[object], None],
                            latency_s: float = 0.0) -> Subscription:
        """Call ``callback(msg)`` for each message on ``topic``, ``latency_s`` after publishing."""
        self._declare(topic, typename)
        sub = Subscription(topic, typename, callback, latency_s)
        self._subscriptions.setdefault(topic, []).append(sub)
        return sub

    def add_tap(self, tap: Tap) -> None:
        """Call ``tap(topic, typename, time_ns, msg)`` synchronously on every publication."""
        self._taps.append(tap)

    def topics(self) -> dict[str, str]:
        """Every topic declared so far, with its type."""
        return dict(self._types)

    def _publish(self, topic: str, typename: str, msg) -> None:
        if self.validate:
            interfaces.validate(msg, typename)
        self.published += 1
        now_ns = self.scheduler.now_ns
        for tap in self._taps:
            tap(topic, typename, now_ns, msg)
        for sub in self._subscriptions.get(topic, ()):
            if sub.enabled:
                self.scheduler.call_at(now_ns + sub.latency_ns, _Delivery(sub, msg))


class _Delivery:
    """One pending delivery (a small callable instead of a closure per message)."""

    __slots__ = ('sub', 'msg')

    def __init__(self, sub: Subscription, msg):
        self.sub = sub
        self.msg = msg

    def __call__(self) -> None:
        if self.sub.enabled:
            self.sub.received += 1
            self.sub.callback(self.msg)
