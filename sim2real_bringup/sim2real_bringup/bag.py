"""Real rosbag2 recordings (MCAP storage, CDR payloads) written and read without ROS.

The writer embeds each topic's full message definition (the suite's custom types included)
in the MCAP schema records, so ``ros2 bag``, Foxglove and rosbags decode the bag without this
package. Bags are never overwritten: recording into an existing path is an error.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
import os
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

# The recording's custom data (calibrations, clock kind, digests), kept beside the .mcap too.
CUSTOM_DATA_FILE = 'custom_data.json'

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
        self._graph = None
        self._custom_written: dict = {}

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
        """Write everything recorded so far to the disk (rosbags' writer buffers a chunk).

        Synced, not only handed to the OS: after a power loss at most the last flush_period
        is gone.
        """
        storage = self._writer.storage
        if storage.chunk.bio.tell():
            storage.close_chunk()
        storage.bio.flush()
        os.fsync(storage.bio.fileno())
        if self._graph is not None:
            self._write_custom_data()   # calibrations added since (a no-op when unchanged)

    def attach(self, graph) -> 'BagRecorder':
        """Record everything published on ``graph`` (a runtime ``Graph``).

        The graph's ``custom_data`` (what runtime recorded it) goes into the bag's metadata.
        """
        self._graph = graph
        self._write_custom_data()
        graph.add_tap(self.record)
        return self

    def _write_custom_data(self) -> None:
        data = dict(getattr(self._graph, 'custom_data', {}))
        for key, value in data.items():
            self._writer.set_custom_data(key, value)
        if data and data != self._custom_written:
            # metadata.yaml is written only by a clean close: keep a copy beside the .mcap
            # so that recover_bag can give a killed recording its custom data back
            _write_atomically(self.path / CUSTOM_DATA_FILE, json.dumps(data, indent=1))
            self._custom_written = data

    def close(self) -> None:
        """Finish the MCAP file and write ``metadata.yaml`` (the graph's latest custom data)."""
        if self._writer is not None:
            self._write_custom_data()   # what the run added since it was attached
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


def custom_data(path: str | Path) -> dict:
    """The ``custom_data`` of a bag's metadata.yaml ({} when absent).

    How the run was made (``sim2real.runtime``, digests, the cell calibrations): the recorder
    writes its graph's ``custom_data`` there.
    """
    import yaml
    path = Path(path)
    try:
        meta = yaml.safe_load((path / 'metadata.yaml').read_text())
        info = meta.get('rosbag2_bagfile_information', {}) if isinstance(meta, dict) else {}
        return dict(info.get('custom_data') or {})
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as exc:
        raise BagError(f'{path / "metadata.yaml"}: not valid bag metadata ({exc})') from None


_MCAP_MAGIC = b'\x89MCAP0\r\n'
_OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 0x02, 0x03, 0x04, 0x05, 0x06


def _mcap_records(file: Path, schemas: dict, channels: dict, messages: list) -> bool:
    """Read an MCAP file's schemas, channels and messages, up to where the file is cut.

    Tolerates a truncated tail: every complete record before the cut is kept, the records of
    an uncompressed chunk cut in the middle included (a compressed one is lost whole). True if
    the file is whole (its footer was reached).
    """
    from io import BytesIO
    import mmap
    import struct

    from mcap.data_stream import ReadDataStream
    from mcap.records import Channel, Chunk, Message, Schema
    from mcap.stream_reader import get_chunk_data_stream

    def records(buf, start, end, into_chunks):
        """(opcode, content) of the complete records in buf[start:end]; footer stops it."""
        pos = start
        while pos + 9 <= end:
            opcode, length = struct.unpack_from('<BQ', buf, pos)
            body = pos + 9
            if body + length > end:
                if opcode == _OP_CHUNK and into_chunks:
                    yield opcode, None, body  # a chunk cut short: its complete records
                return
            yield opcode, bytes(buf[body:body + length]), body
            if opcode == _OP_FOOTER:
                return
            pos = body + length

    def take(opcode, content):
        stream = ReadDataStream(BytesIO(content))
        if opcode == _OP_SCHEMA:
            schema = Schema.read(stream)
            schemas[schema.id] = (schema.name, schema.encoding, schema.data)
        elif opcode == _OP_CHANNEL:
            channel = Channel.read(stream)
            channels[channel.id] = (channel.topic, channel.schema_id)
        elif opcode == _OP_MESSAGE:
            message = Message.read(stream, len(content))
            messages.append((message.log_time, message.channel_id, message.data))

    with open(file, 'rb') as handle:
        size = handle.seek(0, 2)
        if size < len(_MCAP_MAGIC):
            return False
        buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            if buf[:len(_MCAP_MAGIC)] != _MCAP_MAGIC:
                raise BagError(f'{file} is not an MCAP file')
            for opcode, content, body in records(buf, len(_MCAP_MAGIC), size, True):
                if opcode == _OP_FOOTER:
                    return True
                if opcode != _OP_CHUNK:
                    take(opcode, content)
                    continue
                if content is not None:
                    chunk = Chunk.read(ReadDataStream(BytesIO(content)))
                    stream, length = get_chunk_data_stream(chunk)
                    inner = stream.read(length) if length else b''
                    for op, record, _ in records(inner, 0, len(inner), False):
                        take(op, record)
                    continue
                # Cut inside this chunk: 8+8+8+4 bytes, the compression, the records' length.
                head = body + 28
                if head + 4 > size:
                    return False
                (name_length,) = struct.unpack_from('<I', buf, head)
                compression = bytes(buf[head + 4:head + 4 + name_length])
                first = head + 4 + name_length + 8
                if compression or first > size:
                    return False  # a compressed chunk cannot be read in part
                for op, record, _ in records(buf, first, size, False):
                    take(op, record)
                return False
        finally:
            buf.close()
    return False


def _bag_types(schemas: dict):
    """A typestore of the types the bag itself defines (its MCAP schemas)."""
    from rosbags.typesys import get_types_from_msg, get_typestore, Stores

    store = get_typestore(Stores.EMPTY)
    suite = interfaces.typestore()
    for name, encoding, data in schemas.values():
        try:
            if encoding != 'ros2msg':
                raise ValueError(f'schema encoding {encoding!r}')
            store.register(get_types_from_msg(data.decode(), name))
        except Exception:  # noqa: BLE001 -- the suite's own definition, if it has one
            if name not in suite.fielddefs:
                continue
            msgdef, _ = suite.generate_msgdef(name, ros_version=2)
            store.register(get_types_from_msg(msgdef, name))
    return store


def recover_bag(path: str | Path, out: str | Path | None = None,
                notes: list | None = None) -> Path:
    """Rebuild a recording as a new, valid bag from what its ``.mcap`` files still hold.

    For a recording that was never closed (killed, power loss: no metadata.yaml) and for a
    closed one whose ``.mcap`` was cut short later (copied in part, a full disk): every
    complete message before the cut is kept (a compressed chunk cut in the middle is lost
    whole), written byte for byte to ``out`` (default ``<path>-recovered``) with a proper
    index and metadata.yaml, the types as the bag's own schemas define them. The damaged
    recording is left untouched; an existing ``out`` is an error and nothing is
    overwritten; a failed write leaves no ``out`` behind. ``notes`` (a list) receives a line
    for each file found cut short and each topic that could not be kept.
    """
    import shutil

    path = Path(path)
    if not path.is_dir():
        raise BagError(f'{path} is not a rosbag2 folder')
    files = sorted(path.glob('*.mcap'))
    if not files:
        raise BagError(f'{path} holds no .mcap file to recover')
    out = Path(out) if out else path.with_name(path.name + '-recovered')
    if out.exists() or out.is_symlink():
        raise BagExistsError(f'{out} exists already; choose another output path '
                             '(nothing is overwritten)')
    schemas, channels, messages = {}, {}, []
    whole = True
    for file in files:
        try:
            complete = _mcap_records(file, schemas, channels, messages)
            whole &= complete
            if not complete and notes is not None:
                notes.append(f'{file.name} is cut short: kept its records up to the cut')
        except BagError:
            raise
        except Exception as exc:  # noqa: BLE001 -- mcap and zstd raise many kinds
            raise BagError(f'{file}: cannot read the MCAP records ({type(exc).__name__}: '
                           f'{exc})') from None
    if whole and (path / 'metadata.yaml').is_file():
        try:
            bag_summary(path)
        except BagError:
            pass  # whole .mcap files but an unreadable metadata.yaml: rebuild it
        else:
            raise BagError(f'{path} was closed cleanly (it has metadata.yaml and whole .mcap '
                           'files); nothing to recover')
    if not messages:
        raise BagError(f'{path}: no complete message is left in its .mcap file(s)')
    store = _bag_types(schemas)
    created = False
    try:
        writer = Writer(out, version=BAG_VERSIONS['jazzy'], storage_plugin=StoragePlugin.MCAP)
        writer.open()
        created = True
        connections = {}
        for channel_id, (topic, schema_id) in sorted(channels.items()):
            typename = schemas.get(schema_id, (None,))[0]
            if typename is None or typename not in store.fielddefs:
                if notes is not None:
                    notes.append(f'{topic} left out: its type {typename} has no definition '
                                 'the bag or the suite can read')
                continue
            profile = QOS_PROFILES[_default_qos(topic)]
            connections[channel_id] = writer.add_connection(topic, typename, typestore=store,
                                                            offered_qos_profiles=[profile])
        for time_ns, channel_id, data in sorted(messages, key=lambda m: m[0]):
            if channel_id in connections:
                writer.write(connections[channel_id], time_ns, data)
        for key, value in _recorded_custom_data(path, notes).items():
            writer.set_custom_data(key, value)
        writer.close()
    except Exception as exc:  # noqa: BLE001 -- one line, and no half-written bag left
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise BagError(f'{path}: cannot write the recovered bag {out} '
                       f'({type(exc).__name__}: {exc})') from None
    return out


def _recorded_custom_data(path: Path, notes: list | None) -> dict:
    """The custom data a recording kept: its metadata.yaml's, else the copy beside it."""
    try:
        data = custom_data(path)
    except Exception:  # noqa: BLE001 -- an unreadable metadata.yaml: try the copy
        data = {}
    if data:
        return data
    copy = path / CUSTOM_DATA_FILE
    if not copy.is_file():
        return {}
    try:
        data = json.loads(copy.read_text())
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in data.items()):
            raise ValueError('not a mapping of strings')
    except ValueError as exc:
        if notes is not None:
            notes.append(f'{copy.name} unreadable ({exc}): custom data not kept')
        return {}
    return data


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    with open(tmp, 'w') as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _default_qos(topic: str) -> str:
    from sim2real_bringup.topics import qos_map
    return qos_map().get(topic, 'default')
