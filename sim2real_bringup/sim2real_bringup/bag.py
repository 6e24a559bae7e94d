"""Real rosbag2 recordings (MCAP storage, CDR payloads) written and read without ROS.

The writer embeds each topic's full message definition (the suite's custom types included)
in the MCAP schema records, so ``ros2 bag``, Foxglove and rosbags decode the bag without this
package. Bags are never overwritten: recording into an existing path is an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from rosbags.highlevel import AnyReader
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer

from sim2real_bringup import interfaces

# rosbag2 metadata version 9 is what Jazzy writes; Humble only reads version 8 and older.
BAG_VERSIONS = {'jazzy': 9, 'humble': 8}

_NO_TIME = QosTime(sec=0, nsec=0)


def _qos(durability: QosDurability, reliability: QosReliability, depth: int) -> Qos:
    return Qos(history=QosHistory.KEEP_LAST, depth=depth, reliability=reliability,
               durability=durability, deadline=_NO_TIME, lifespan=_NO_TIME,
               liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_NO_TIME,
               avoid_ros_namespace_conventions=False)


# Offered QoS written into the bag, so `ros2 bag play` republishes latched state as latched.
QOS_PROFILES = {
    'default': _qos(QosDurability.VOLATILE, QosReliability.RELIABLE, 10),
    'latched': _qos(QosDurability.TRANSIENT_LOCAL, QosReliability.RELIABLE, 1),
    'sensor': _qos(QosDurability.VOLATILE, QosReliability.BEST_EFFORT, 5),
    'command': _qos(QosDurability.VOLATILE, QosReliability.RELIABLE, 1),
}


class BagExistsError(FileExistsError):
    """The recording path exists already; nothing is overwritten."""


class BagError(RuntimeError):
    """A bag that cannot be opened or read."""


class BagRecorder:
    """Writes published messages to a new rosbag2 directory (``metadata.yaml`` + ``.mcap``).

    ``qos`` maps a topic to a key of :data:`QOS_PROFILES` (default ``'default'``).
    """

    def __init__(self, path: str | Path, *, distro: str = 'jazzy',
                 qos: dict[str, str] | None = None, flush_period: float = 1.0):
        self.path = Path(path)
        # Crash safety: every flush_period of recorded time the pending MCAP chunk is closed
        # and handed to the OS, so a killed recorder loses at most that much (recover_bag
        # rebuilds the index and metadata.yaml that only a clean close writes).
        self._flush_ns = int(flush_period * 1e9)
        self._flushed_ns: int | None = None
        if self.path.exists():
            raise BagExistsError(f'{self.path} exists already; choose a new bag path '
                                 '(recordings are never overwritten)')
        if distro not in BAG_VERSIONS:
            raise ValueError(f'distro must be one of {sorted(BAG_VERSIONS)}, got {distro!r}')
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._qos = dict(qos or {})
        unknown = sorted(set(self._qos.values()) - set(QOS_PROFILES))
        if unknown:
            raise ValueError(f'unknown QoS profile(s) {unknown}; use {sorted(QOS_PROFILES)}')
        self._writer = Writer(self.path, version=BAG_VERSIONS[distro],
                              storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    def record(self, topic: str, typename: str, time_ns: int, msg) -> None:
        """Serialize ``msg`` (validated) and write it with receive time ``time_ns``."""
        conn = self._connections.get(topic)
        if conn is None:
            profile = QOS_PROFILES[self._qos.get(topic, 'default')]
            conn = self._writer.add_connection(topic, typename, typestore=interfaces.typestore(),
                                               offered_qos_profiles=[profile])
            self._connections[topic] = conn
        elif conn.msgtype != typename:
            raise interfaces.InterfaceError(
                f'bag topic {topic} records {conn.msgtype}, got a {typename}')
        self._writer.write(conn, int(time_ns), interfaces.serialize(msg, typename))
        self.counts[topic] = self.counts.get(topic, 0) + 1
        if self._flushed_ns is None:
            self._flushed_ns = int(time_ns)
        elif time_ns - self._flushed_ns >= self._flush_ns:
            self.flush()
            self._flushed_ns = int(time_ns)

    def flush(self) -> None:
        """Write everything recorded so far to the file (rosbags' writer buffers a chunk)."""
        storage = self._writer.storage
        if storage.chunk.bio.tell():
            storage.close_chunk()
        storage.bio.flush()

    def attach(self, graph) -> 'BagRecorder':
        """Record everything published on ``graph`` (a runtime ``Graph``).

        The graph's ``custom_data`` (what runtime recorded it) goes into the bag's metadata.
        """
        for key, value in getattr(graph, 'custom_data', {}).items():
            self._writer.set_custom_data(key, value)
        graph.add_tap(self.record)
        return self

    def close(self) -> None:
        """Finish the MCAP file and write ``metadata.yaml``."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> 'BagRecorder':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class BagMessage:
    """One recorded message."""

    topic: str
    typename: str
    time_ns: int
    raw: bytes
    msg: object


def _check_bag(path: Path) -> None:
    if not (path / 'metadata.yaml').is_file():
        if any(path.glob('*.mcap')):
            raise BagError(f'{path} was never closed (a killed recording?): run '
                           f'`sim2real recover {path}` to rebuild it')
        raise BagError(f'{path} is not a rosbag2 bag (no metadata.yaml)')


def read_bag(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
    """Yield the messages of a rosbag2 bag in time order, decoded with the bag's own types.

    Raises :class:`BagError` (one line naming the bag) for a bag that cannot be read: garbage
    metadata, a missing or truncated ``.mcap``, an undecodable message.
    """
    path = Path(path)
    _check_bag(path)
    wanted = set(topics) if topics is not None else None
    try:
        with AnyReader([path], default_typestore=interfaces.typestore()) as reader:
            conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
            for conn, time_ns, raw in reader.messages(connections=conns):
                yield BagMessage(conn.topic, conn.msgtype, time_ns, bytes(raw),
                                 reader.deserialize(raw, conn.msgtype))
    except BagError:
        raise
    except Exception as exc:  # noqa: BLE001 -- rosbags and mcap raise many kinds
        raise BagError(f'{path}: cannot read the bag ({type(exc).__name__}: {exc})') from None


def bag_summary(path: str | Path) -> dict[str, dict]:
    """``{topic: {"type", "count"}}`` from a bag's index (:class:`BagError` if unreadable)."""
    path = Path(path)
    _check_bag(path)
    try:
        with AnyReader([path], default_typestore=interfaces.typestore()) as reader:
            return {topic: {'type': info.msgtype, 'count': info.msgcount}
                    for topic, info in sorted(reader.topics.items())}
    except Exception as exc:  # noqa: BLE001 -- rosbags and mcap raise many kinds
        raise BagError(f'{path}: cannot read the bag ({type(exc).__name__}: {exc})') from None


def recover_bag(path: str | Path, out: str | Path | None = None) -> Path:
    """Rebuild a recording that was never closed (killed, power loss) as a new, valid bag.

    Reads the MCAP records that reached the disk (with the ``mcap`` library, tolerating the
    truncated tail) and writes them, byte for byte, to ``out`` (default ``<path>-recovered``)
    with a proper index and metadata.yaml. The crashed recording is left untouched.
    """
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    path = Path(path)
    if (path / 'metadata.yaml').is_file():
        raise BagError(f'{path} was closed cleanly (it has metadata.yaml); nothing to recover')
    files = sorted(path.glob('*.mcap'))
    if not files:
        raise BagError(f'{path} holds no .mcap file to recover')
    out = Path(out) if out else path.with_name(path.name + '-recovered')
    schemas, channels, messages = {}, {}, []
    for file in files:
        with open(file, 'rb') as handle:
            try:
                for record in StreamReader(handle).records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                    elif isinstance(record, Channel):
                        channels[record.id] = (record.topic, schemas.get(record.schema_id))
                    elif isinstance(record, Message):
                        messages.append((record.log_time, record.channel_id, record.data))
            except (McapError, EOFError, ValueError):
                pass  # the truncated tail: everything before it is kept
    if not messages:
        raise BagError(f'{path}: no complete message reached the disk')
    writer = Writer(out, version=BAG_VERSIONS['jazzy'], storage_plugin=StoragePlugin.MCAP)
    writer.open()
    store = interfaces.typestore()
    connections = {}
    for channel_id, (topic, typename) in sorted(channels.items()):
        if typename is None:
            continue
        profile = QOS_PROFILES[_default_qos(topic)]
        connections[channel_id] = writer.add_connection(topic, typename, typestore=store,
                                                        offered_qos_profiles=[profile])
    for time_ns, channel_id, data in sorted(messages, key=lambda m: m[0]):
        if channel_id in connections:
            writer.write(connections[channel_id], time_ns, data)
    writer.close()
    return out


def _default_qos(topic: str) -> str:
    from sim2real_bringup.topics import qos_map
    return qos_map().get(topic, 'default')
