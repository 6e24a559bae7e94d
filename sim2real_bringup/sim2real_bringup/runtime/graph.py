"""In-memory publish/subscribe with ROS 2 topic names and types, on the scheduler's clock.

Semantics kept from ROS 2 where they matter to the nodes: a publish never calls a subscriber
synchronously (the callback runs later, like an executor would run it), subscribers of a topic
see messages in publication order, a topic has exactly one type, and a ``latched`` topic
(transient local) hands its last message to a subscriber that joins later. Services are
called synchronously (``call_service``, what ``ros2 service call`` does from outside).
Subscribers must treat a received message as read-only: it is shared, not copied.

Every endpoint is kept in ``endpoints`` (node, kind, topic, type, QoS) for the contract test
against the topic table.
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
                 latency_s: float, qos: str = 'default'):
        self.topic = topic
        self.typename = typename
        self.callback = callback
        self.latency_ns = seconds_to_ns(latency_s)
        self.qos = qos
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
        self._latched: dict[str, object] = {}
        self._latched_topics: set[str] = set()
        self._services: dict[str, tuple[str, Callable]] = {}
        # topic -> replacement function (msg -> msg or None to drop): fault injection at the
        # wire (an unplugged camera, a frozen one), outside every node
        self.interceptors: dict[str, Callable[[object], object]] = {}
        self.endpoints: list[tuple[str, str, str, str, str]] = []
        # written into a recorded bag's metadata (custom_data): how this run was made
        self.custom_data: dict[str, str] = {}
        self.published = 0

    def _declare(self, topic: str, typename: str) -> None:
        if not topic.startswith('/'):
            raise ValueError(f'topic names are absolute here (start with "/"), got {topic!r}')
        interfaces.message_class(typename)  # raises UnknownMessageTypeError
        known = self._types.setdefault(topic, typename)
        if known != typename:
            raise TopicTypeError(
                f'topic {topic} carries {known}, cannot also use it for {typename}')

    def create_publisher(self, topic: str, typename: str, qos: str = 'default',
                         node: str = '') -> Publisher:
        """A publisher of ``typename`` on ``topic``."""
        self._declare(topic, typename)
        self.endpoints.append((node, 'publisher', topic, typename, qos))
        if qos == 'latched':
            self._latched_topics.add(topic)
        return Publisher(self, topic, typename)

    def create_subscription(self, topic: str, typename: str, callback: Callable[[object], None],
                            latency_s: float = 0.0, qos: str = 'default',
                            node: str = '') -> Subscription:
        """Call ``callback(msg)`` for each message on ``topic``, ``latency_s`` after publishing.

        A ``latched`` subscription of a topic whose publisher is latched gets the topic's
        last message too, as a late joiner does in ROS 2 (transient local).
        """
        self._declare(topic, typename)
        self.endpoints.append((node, 'subscription', topic, typename, qos))
        sub = Subscription(topic, typename, callback, latency_s, qos)
        self._subscriptions.setdefault(topic, []).append(sub)
        if qos == 'latched' and topic in self._latched:
            self.scheduler.call_at(self.scheduler.now_ns + sub.latency_ns,
                                   _Delivery(sub, self._latched[topic]))
        return sub

    def remove_subscription(self, sub: Subscription) -> None:
        """Drop a subscription (its node was destroyed); pending deliveries are dropped."""
        sub.enabled = False
        subs = self._subscriptions.get(sub.topic, [])
        if sub in subs:
            subs.remove(sub)

    def create_service(self, name: str, srv_typename: str, callback: Callable,
                       node: str = '') -> None:
        """Serve ``name``: ``callback(request, response) -> response``."""
        if name in self._services:
            raise ValueError(f'service {name} is already served')
        interfaces.message_class(srv_typename + '_Request')
        self._services[name] = (srv_typename, callback)
        self.endpoints.append((node, 'service', name, srv_typename, ''))

    def remove_service(self, name: str) -> None:
        """Stop serving ``name`` (its node was destroyed)."""
        self._services.pop(name, None)

    def call_service(self, name: str, **request):
        """Call a service at once with the request fields; returns the response."""
        if name not in self._services:
            raise KeyError(f'no node serves {name} (served: {sorted(self._services)})')
        typename, callback = self._services[name]
        return callback(interfaces.make(typename + '_Request', **request),
                        interfaces.make(typename + '_Response'))

    def services(self) -> dict[str, str]:
        """Every service served now, with its type."""
        return {name: typename for name, (typename, _) in self._services.items()}

    def add_tap(self, tap: Tap) -> None:
        """Call ``tap(topic, typename, time_ns, msg)`` synchronously on every publication."""
        self._taps.append(tap)

    def topics(self) -> dict[str, str]:
        """Every topic declared so far, with its type."""
        return dict(self._types)

    def _publish(self, topic: str, typename: str, msg) -> None:
        intercept = self.interceptors.get(topic)
        if intercept is not None:
            msg = intercept(msg)
            if msg is None:
                return
        if self.validate:
            interfaces.validate(msg, typename)
        if topic in self._latched_topics:
            self._latched[topic] = msg
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
