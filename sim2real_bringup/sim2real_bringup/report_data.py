"""What a run report reads from a bag: the series of its topics and how the run was made.

Everything comes from the bag alone (its messages and its metadata's ``custom_data``), so a
bag from the robot, from ``ros2 bag record`` or from the in-process runtime gives the same
report. Times are the bag's receive times in seconds (the simulated clock for an in-process
run, the robot's clock otherwise).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sim2real_bringup import convert
from sim2real_bringup.bag import bag_summary, BagError, custom_data, read_bag
from sim2real_bringup.topics import BY_NAME

NS = 1e9
# The topics that make a bag one of the suite's (a report needs at least one of them).
REPORT_TOPICS = ('/policy/action_chunk', '/control/diagnostics', '/safety/command',
                 '/safety/status', '/supervisor/state', '/episode/result')
# Read too when present: measured gripper state, the proposals, the logger's anomaly checks.
OPTIONAL_TOPICS = ('/robot/state', '/control/proposed_command', '/diagnostics')
CAMERA_TOPIC = '/camera/image_raw'
# custom_data keys of the in-process runtime (Pipeline, `sim2real demo`)
RUNTIME_KEY = 'sim2real.runtime'
WHERE_KEY = 'sim2real.where'
POLICY_DIGEST_KEY = 'sim2real.policy_sha256'
CONFIG_DIGEST_KEY = 'sim2real.config_sha256'
CALIBRATIONS_KEY = 'sim2real.cell_calibrations'


def check_topics(bag: str | Path) -> dict:
    """The bag's topics (``bag_summary``), checked to be the suite's.

    Raises :class:`BagError` (one line naming the bag and what is missing) when it holds none
    of the report's topics, or holds one of the topics a report reads with another type.
    """
    held = bag_summary(bag)
    wrong = [f'{name} is {held[name]["type"]}, not {BY_NAME[name].typename}'
             for name in REPORT_TOPICS + OPTIONAL_TOPICS + (CAMERA_TOPIC,) if name in held
             and held[name]['type'] != BY_NAME[name].typename]
    if wrong:
        raise BagError(f'{bag}: not the sim2real types: {"; ".join(wrong)}')
    if not any(name in held for name in REPORT_TOPICS):
        others = ', '.join(f'{name} ({info["type"]})' for name, info in list(held.items())[:5])
        more = f' and {len(held) - 5} more' if len(held) > 5 else ''
        raise BagError(f'{bag}: no sim2real topic to report on (none of '
                       f'{", ".join(REPORT_TOPICS)}); the bag holds '
                       f'{others + more if held else "no topics"}')
    return held


def collect(bag: str | Path) -> dict:
    """The series a report needs, read from the bag (:class:`BagError` if it has none).

    ``control`` rows: ``(t, period, latency, command_source, deadline_misses, tick, jitter)``;
    ``verdicts``: ``(t, verdict, constraints, software_stop_active, software_stop_cause)``;
    ``modes``: ``(t, mode, reason)``; ``commands``/``proposed``: ``(t, x, y, z, yaw,
    gripper_width)``; ``robot``: ``(t, gripper_width, gripper_effort, z)``; ``anomalies``:
    ``(t, check, level, message)`` of every non-OK check of the logger; ``results``: dicts of
    every GraspResult field a report shows; ``frames``: the camera's receive times (ns, as
    recorded). ``t`` is seconds from the bag's start (``start_ns``).
    """
    held = check_topics(bag)
    series = {key: [] for key in ('chunk_latency', 'control', 'commands', 'proposed',
                                  'verdicts', 'modes', 'results', 'robot', 'anomalies',
                                  'frames')}
    series['model_ids'] = {}
    series['start_ns'] = start = start_time_ns(bag)
    wanted = {t for t in REPORT_TOPICS + OPTIONAL_TOPICS if t in held}
    for m in read_bag(bag, topics=wanted):
        t, msg = (m.time_ns - start) / NS, m.msg
        if m.topic == '/policy/action_chunk':
            series['chunk_latency'].append((t, msg.inference_latency))
            series['model_ids'][msg.model_id] = series['model_ids'].get(msg.model_id, 0) + 1
        elif m.topic == '/control/diagnostics':
            series['control'].append((t, msg.period, msg.latency, msg.command_source,
                                      msg.deadline_misses, msg.tick, msg.jitter))
        elif m.topic == '/safety/command':
            series['commands'].append((t, *convert.command_pose(msg)))
        elif m.topic == '/control/proposed_command':
            series['proposed'].append((t, *convert.command_pose(msg)))
        elif m.topic == '/safety/status':
            series['verdicts'].append((t, msg.verdict,
                                       tuple(v.constraint for v in msg.violations),
                                       msg.software_stop_active, msg.software_stop_cause))
        elif m.topic == '/supervisor/state':
            series['modes'].append((t, msg.mode, msg.reason))
        elif m.topic == '/robot/state':
            series['robot'].append((t, msg.gripper_width, msg.gripper_effort, msg.z))
        elif m.topic == '/diagnostics':
            series['anomalies'].extend((t, s.name, diagnostic_level(s.level), s.message)
                                       for s in msg.status if diagnostic_level(s.level) > 0)
        elif m.topic == '/episode/result':
            series['results'].append({
                't_end': t, 'episode': int(msg.episode), 'success': bool(msg.success),
                'duration_s': float(msg.duration), 'seed': int(msg.seed),
                'attempts': int(msg.attempts), 'interventions': int(msg.interventions),
                'failure_reason': msg.failure_reason,
                'label': 'operator' if msg.label_source == 1 else 'automatic',
                'labelled_by': msg.operator_name, 'lift_height_m': float(msg.lift_height),
                'final_gripper_width_m': float(msg.final_gripper_width)})
    if CAMERA_TOPIC in held:
        # receive times only: the frames themselves are read later, a few per episode
        series['frames'] = frame_times(bag)
    return series


def diagnostic_level(level) -> int:
    """A DiagnosticStatus level (a ``byte``: an int, or one byte, by runtime)."""
    if isinstance(level, (bytes, bytearray)):
        return level[0] if level else 0
    return int(level)


def _reader(bag: str | Path):
    from rosbags.highlevel import AnyReader

    from sim2real_bringup import interfaces
    return AnyReader([Path(bag)], default_typestore=interfaces.typestore())


def start_time_ns(bag: str | Path) -> int:
    """The bag's first receive time (ns; 0 for an empty bag)."""
    try:
        with _reader(bag) as reader:
            return int(reader.start_time) if reader.message_count else 0
    except Exception as exc:  # noqa: BLE001 -- rosbags and mcap raise many kinds
        raise BagError(f'{bag}: cannot read the bag ({type(exc).__name__}: {exc})') from None


def frame_times(bag: str | Path) -> list[int]:
    """Receive times (ns) of every camera frame (no image decoded)."""
    try:
        with _reader(bag) as reader:
            conns = [c for c in reader.connections if c.topic == CAMERA_TOPIC]
            return [time_ns for _, time_ns, _ in reader.messages(connections=conns)]
    except Exception as exc:  # noqa: BLE001 -- rosbags and mcap raise many kinds
        raise BagError(f'{bag}: cannot read the bag ({type(exc).__name__}: {exc})') from None


def run_info(bag: str | Path, held: dict | None = None) -> dict:
    """How and where the run was made, as far as the bag says.

    ``clock``: ``simulated`` (the in-process runtime, or a bag with /clock: node times are
    charged or scheduled, not measured) or ``robot`` (node times measured on the wall clock).
    ``date``: the recording's start for a robot bag; for a simulated one (whose clock starts
    at 0) the time its metadata was written, i.e. when the run ended.
    """
    bag = Path(bag)
    held = held if held is not None else bag_summary(bag)
    custom = custom_data(bag)
    simulated = custom.get(RUNTIME_KEY) == 'inprocess' or '/clock' in held
    where = custom.get(WHERE_KEY) or ('simulation (profile not recorded)' if simulated
                                      else 'robot')
    date, date_what = None, ''
    start = start_time_ns(bag)
    if not simulated and start > 0:
        date, date_what = datetime.fromtimestamp(start / NS, timezone.utc), 'recording started'
    if date is None:
        date = datetime.fromtimestamp((bag / 'metadata.yaml').stat().st_mtime, timezone.utc)
        date_what = 'bag closed (end of the run)'
    return {'clock': 'simulated' if simulated else 'robot', 'where': where,
            'policy_sha256': custom.get(POLICY_DIGEST_KEY),
            'config_sha256': custom.get(CONFIG_DIGEST_KEY),
            'date': date.strftime('%Y-%m-%d %H:%M UTC'), 'date_what': date_what,
            'bag': str(bag), 'calibrations': custom.get(CALIBRATIONS_KEY)}


def read_frames(bag: str | Path, times_ns) -> dict[int, object]:
    """The camera frames (RGB uint8 arrays) received at exactly ``times_ns``.

    Only those frames are decoded. A frame in an encoding the report cannot show (not rgb8
    or bgr8) is left out: no thumbnail, no failure.
    """
    wanted = set(times_ns)
    frames = {}
    try:
        with _reader(bag) as reader:
            conns = [c for c in reader.connections if c.topic == CAMERA_TOPIC]
            for conn, time_ns, raw in reader.messages(connections=conns):
                if time_ns in wanted:
                    try:
                        frames[time_ns] = convert.image_array(
                            reader.deserialize(raw, conn.msgtype))
                    except ValueError:
                        continue
    except Exception as exc:  # noqa: BLE001 -- rosbags and mcap raise many kinds
        raise BagError(f'{bag}: cannot read the bag ({type(exc).__name__}: {exc})') from None
    return frames
