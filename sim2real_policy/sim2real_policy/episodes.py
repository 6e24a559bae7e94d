"""Episodes on a simulated cell: when one ends, its verdict, and the next object's place.

Shared by the simulated robot (``sim_robot_node``) and the stand-in driver
(``standin_driver_node``): an episode succeeds when the object has been lifted and held between
the fingers for ``success_hold_time``, and fails after ``episode_timeout``. The simulator is
the judge here (it knows where the object is); on a real cell that is the operator's or the
collect node's label.
"""
from __future__ import annotations

from sim2real_policy.sim.params import SimParams
from sim2real_safety.node_interface import NS

M = 'sim2real_msgs/msg/'


class EpisodeJudge:
    """Bookkeeping of one episode after another on a :class:`GripperSim`."""

    def __init__(self, episode_timeout: float, success_hold_time: float):
        self.timeout_ns = int(round(episode_timeout * NS))
        self.hold_ns = int(round(success_hold_time * NS))
        self.episode = -1
        self.start_ns = 0
        self.held_since_ns: int | None = None

    def begin(self, now_ns: int) -> None:
        """A new episode starts now."""
        self.episode += 1
        self.start_ns = now_ns
        self.held_since_ns = None

    def verdict(self, sim, now_ns: int) -> bool | None:
        """True (held long enough), False (timed out) or None (the episode goes on)."""
        if sim.object_lifted() and sim.object_in_gripper():
            if self.held_since_ns is None:
                self.held_since_ns = now_ns
            if now_ns - self.held_since_ns >= self.hold_ns:
                return True
        else:
            self.held_since_ns = None
        if now_ns - self.start_ns >= self.timeout_ns:
            return False
        return None

    def result_msg(self, msgs, sim, success: bool, now_ns: int):
        """The episode's GraspResult (the simulator's verdict)."""
        return msgs.make(
            M + 'GraspResult', header=msgs.header(now_ns), episode=self.episode,
            attempts=1, success=bool(success), label_source=0,
            duration=(now_ns - self.start_ns) / NS,
            lift_height=float(sim.object_position()[2] - sim.rest_z),
            final_gripper_width=sim.gripper_width(), seed=int(sim.params.seed),
            failure_reason='' if success else 'not lifted in time')


def stage_pose(sim) -> tuple:
    """Where the stage stands (true TCP x, y, z, yaw and opening): the next world's start."""
    x, y, z, yaw = (float(v) for v in sim.tcp(noisy=False)[:4])
    return (x, y, z, yaw, sim.gripper_width())


def next_object(cell: SimParams, drawn: SimParams) -> SimParams:
    """``cell`` with the object of ``drawn``: a new task on the same commissioned cell.

    The camera, table, delay and physics stay the cell's (what commissioning measured); only
    the object and where it lies change, as when an operator puts the next one down.
    """
    return cell.replace(object_shape=drawn.object_shape, object_size=drawn.object_size,
                        object_height=drawn.object_height, object_mass=drawn.object_mass,
                        object_friction=drawn.object_friction, object_x=drawn.object_x,
                        object_y=drawn.object_y, object_yaw=drawn.object_yaw,
                        object_rgb=drawn.object_rgb, seed=drawn.seed)
