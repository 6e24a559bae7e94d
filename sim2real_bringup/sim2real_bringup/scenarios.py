"""Seeded traffic scenarios for the in-process runtime.

``synthetic_traffic`` drives every kind of suite topic with seeded stand-ins (a chunk source,
a hold-latest 100 Hz controller, a first-order stage, a heartbeat supervisor). It exercises the
scheduler, the graph and the recorder end to end in a fraction of a second and is the
runtime's own determinism check; the full stack lives in ``sim2real_bringup.pipeline``.
"""
from __future__ import annotations

import numpy as np

from sim2real_bringup import interfaces as ifc
from sim2real_bringup.runtime import Graph, Scheduler
from sim2real_bringup.topics import BY_NAME

ACTION_NAMES = ['x', 'y', 'z', 'yaw', 'gripper_width']


def _pub(graph: Graph, topic: str):
    return graph.create_publisher(topic, BY_NAME[topic].typename)


def synthetic_traffic(graph: Graph, scheduler: Scheduler, seed: int,
                      chunk_period_s: float = 0.2, horizon: int = 20) -> None:
    """Install the stand-in nodes on ``graph``; run the scheduler to make traffic."""
    rng = np.random.default_rng(seed)
    chunk_pub = _pub(graph, '/policy/action_chunk')
    cmd_pub = _pub(graph, '/control/proposed_command')
    state_pub = _pub(graph, '/robot/state')
    mode_pub = _pub(graph, '/supervisor/state')
    latest: dict = {'chunk': None, 'target': np.array([0.5, 0.0, 0.3, 0.0, 0.08])}
    pose = latest['target'].copy()

    def publish_chunk() -> None:
        start = latest['target'] + rng.normal(0.0, 0.01, 5)
        actions = start + np.cumsum(rng.normal(0.0, 0.002, (horizon, 5)), axis=0)
        chunk_pub.publish(ifc.make(
            BY_NAME['/policy/action_chunk'].typename,
            header=ifc.header(scheduler.now_ns, 'base_link'), model_id='synthetic',
            horizon=horizon, action_dim=5, action_names=list(ACTION_NAMES),
            action_period=ifc.duration_from_ns(10_000_000),
            actions=actions.ravel().astype(np.float64), inference_latency=0.0))

    def on_chunk(msg) -> None:
        latest['chunk'] = (ifc.ns_from_time(msg.header.stamp), msg.actions.reshape(-1, 5))

    def control_tick() -> None:
        if latest['chunk'] is not None:
            stamp_ns, actions = latest['chunk']
            index = min((scheduler.now_ns - stamp_ns) // 10_000_000, len(actions) - 1)
            latest['target'] = actions[index]
        x, y, z, yaw, width = (float(v) for v in latest['target'])
        cmd_pub.publish(ifc.make(
            BY_NAME['/control/proposed_command'].typename,
            header=ifc.header(scheduler.now_ns, 'base_link'),
            x=x, y=y, z=z, yaw=yaw, gripper_width=width))

    def on_command(msg) -> None:
        latest['command'] = np.array([msg.x, msg.y, msg.z, msg.yaw, msg.gripper_width])

    def robot_tick() -> None:
        if 'command' in latest:
            pose[:] += 0.2 * (latest['command'] - pose)  # first-order lag, tau ~ 45 ms
        x, y, z, yaw, width = (float(v) for v in pose)
        state_pub.publish(ifc.make(
            BY_NAME['/robot/state'].typename, header=ifc.header(scheduler.now_ns, 'base_link'),
            x=x, y=y, z=z, yaw=yaw, gripper_width=width))

    def supervisor_tick() -> None:
        mode_pub.publish(ifc.make(
            BY_NAME['/supervisor/state'].typename,
            header=ifc.header(scheduler.now_ns), autonomy_enabled=True))

    graph.create_subscription('/policy/action_chunk', BY_NAME['/policy/action_chunk'].typename,
                              on_chunk, latency_s=0.05)
    graph.create_subscription('/control/proposed_command',
                              BY_NAME['/control/proposed_command'].typename, on_command)
    scheduler.create_timer(chunk_period_s, publish_chunk, 'policy')
    scheduler.create_timer(0.01, control_tick, 'control')
    scheduler.create_timer(0.01, robot_tick, 'robot')
    scheduler.create_timer(0.1, supervisor_tick, 'supervisor')
