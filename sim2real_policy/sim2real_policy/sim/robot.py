"""``GripperSim``: the simulated robot, speaking the suite's command and state vocabulary.

Commands are ``(x, y, z, yaw, gripper_width)`` targets (m, rad, m) applied after the episode's
``action_delay`` (stage) and ``gripper_lag`` (gripper). The state is what a driver reports:
TCP pose and velocity, gripper width and effort (N at the fingertips, positive closing), joint
states, and camera frames. Privileged information (object pose, grasp success) is separate
and only used by the expert, the episode bookkeeping and the tests.

Everything random inside an episode (pushes, sensor noise) draws from a generator seeded by
the episode's seed, so the same :class:`SimParams` and commands give bit-identical runs.
"""
from __future__ import annotations

from collections import deque
import functools
import math

import mujoco
import numpy as np

from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.scene import (
    build_model,
    object_half_height,
    STAGE_JOINTS,
    STAGE_RANGE,
    TIMESTEP,
)

HOME = (0.55, 0.0, 0.25, 0.0, 0.085)
GRIPPER_MAX_WIDTH = 0.085       # m, fully open 2F-85
EFFORT_PER_UNIT = 47.0          # N at the fingertips per unit of the model's actuator force
_PAD_GAP = 0.0084               # pad-centre distance when the fingertips touch (m)
LIFT_HEIGHT = 0.05              # object raised this much above its rest height = lifted (m)


class _Calibration:
    """Width <-> gripper control, measured once on the nominal model in free air."""

    def __init__(self):
        params = SimParams()
        model = build_model(params)
        data = mujoco.MjData(model)
        _set_stage(model, data, HOME[:4])
        controls = np.linspace(0.0, 255.0, 18)
        widths = []
        for ctrl in controls:
            data.ctrl[4] = ctrl
            for _ in range(1200):
                mujoco.mj_step(model, data)
            widths.append(_pad_width(data))
        order = np.argsort(widths)
        self.widths = np.asarray(widths)[order]
        self.controls = controls[order]

    def control_for(self, width: float) -> float:
        return float(np.interp(width, self.widths, self.controls))


@functools.lru_cache(maxsize=1)
def calibration() -> _Calibration:
    """The cached width calibration (about 0.4 s the first time)."""
    return _Calibration()


def _pad_width(data) -> float:
    left = data.geom('gripper/left_pad1').xpos
    right = data.geom('gripper/right_pad1').xpos
    return max(0.0, float(np.linalg.norm(left - right)) - _PAD_GAP)


def _set_stage(model, data, pose) -> None:
    for name, value in zip(STAGE_JOINTS, pose):
        data.qpos[model.joint(name).qposadr[0]] = value
    data.ctrl[:4] = pose
    mujoco.mj_forward(model, data)


class GripperSim:
    """One simulated episode."""

    def __init__(self, params: SimParams, start=HOME, settle_s: float = 0.3):
        self.params = params
        self.model = build_model(params)
        self.data = mujoco.MjData(self.model)
        self.rng = np.random.default_rng([params.seed, 0x51A])
        self._stage_qpos = [self.model.joint(n).qposadr[0] for n in STAGE_JOINTS]
        self._stage_qvel = [self.model.joint(n).dofadr[0] for n in STAGE_JOINTS]
        self._object_body = self.model.body('object').id
        # the gripper's colliding geoms: what can touch the table
        self._finger_geoms = np.array([
            g for g in range(self.model.ngeom)
            if (self.model.geom_contype[g] or self.model.geom_conaffinity[g])
            and (mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY,
                                   self.model.geom_bodyid[g]) or '').startswith('gripper/')])
        self._cal = calibration()
        self._stage_queue: deque = deque()
        self._gripper_queue: deque = deque()
        self.commanded = tuple(float(v) for v in start)
        self.stuck_gripper = False   # fault injection: gripper ignores commands
        self.pushes = 0
        self._pushed = False   # a push is on the object for the current substep
        _set_stage(self.model, self.data, start[:4])
        self.data.ctrl[4] = self._cal.control_for(start[4])
        self.rest_z = params.table_height + object_half_height(params)
        self._renderers: dict = {}
        self.step(settle_s)

    # --------------------------------------------------------------------------- commands
    @property
    def time(self) -> float:
        """Simulated time since the episode started (s)."""
        return float(self.data.time)

    def command(self, pose) -> None:
        """Queue a target ``(x, y, z, yaw, gripper_width)``; applied after the delays."""
        pose = tuple(float(v) for v in pose)
        self.commanded = pose
        now = self.data.time
        self._stage_queue.append((now + self.params.action_delay, pose[:4]))
        self._gripper_queue.append((now + self.params.gripper_lag, pose[4]))

    def _apply_due(self) -> None:
        now = self.data.time + 1e-12
        while self._stage_queue and self._stage_queue[0][0] <= now:
            target = self._stage_queue.popleft()[1]
            for i, (low, high) in enumerate(STAGE_RANGE):
                self.data.ctrl[i] = min(max(target[i], low), high)
        while self._gripper_queue and self._gripper_queue[0][0] <= now:
            width = self._gripper_queue.popleft()[1]
            if not self.stuck_gripper:
                self.data.ctrl[4] = self._cal.control_for(width)

    def step(self, duration: float) -> None:
        """Advance the physics by ``duration`` seconds (rounded to whole timesteps)."""
        steps = int(round(duration / TIMESTEP))
        push_p = self.params.push_rate * TIMESTEP
        model, data = self.model, self.data
        stage, gripper = self._stage_queue, self._gripper_queue
        # ten substeps per control period, a hundred periods a second, in every rollout:
        # the loop does only what a substep needs (a push lasts one substep; nothing else
        # writes the object's applied force)
        for _ in range(steps):
            now = data.time + 1e-12
            if (stage and stage[0][0] <= now) or (gripper and gripper[0][0] <= now):
                self._apply_due()
            if self._pushed:
                data.xfrc_applied[self._object_body] = 0.0
                self._pushed = False
            if push_p > 0.0 and self.rng.random() < push_p:
                direction = self.rng.normal(size=2)
                direction /= np.linalg.norm(direction) + 1e-12
                data.xfrc_applied[self._object_body, :2] = direction * self.params.push_force
                self._pushed = True
                self.pushes += 1
            mujoco.mj_step(model, data)

    def place_stage(self, pose, settle_s: float = 0.15) -> None:
        """Put the stage at ``(x, y, z, yaw)`` at once and let the gripper reach ``pose[4]``.

        For rendering training images at chosen poses; an episode moves by :meth:`command`.
        Pending delayed commands are dropped.
        """
        self._stage_queue.clear()
        self._gripper_queue.clear()
        _set_stage(self.model, self.data, pose[:4])
        self.data.ctrl[4] = self._cal.control_for(pose[4])
        self.commanded = tuple(float(v) for v in pose)
        self.step(settle_s)

    # ------------------------------------------------------------------------------ state
    def tcp(self, noisy: bool = True) -> np.ndarray:
        """Measured ``(x, y, z, yaw)`` with encoder noise (m, rad)."""
        pose = self.data.qpos[self._stage_qpos].copy()
        if noisy and self.params.encoder_noise > 0.0:
            pose += self.rng.normal(0.0, self.params.encoder_noise, 4)
        return pose

    def tcp_velocity(self) -> np.ndarray:
        """``(vx, vy, vz, yaw rate)`` (m/s, rad/s)."""
        return self.data.qvel[self._stage_qvel].copy()

    def gripper_width(self) -> float:
        """Measured fingertip distance (m)."""
        return min(_pad_width(self.data), GRIPPER_MAX_WIDTH)

    def gripper_effort(self) -> float:
        """Gripper effort (N at the fingertips, positive closing)."""
        return float(self.data.actuator_force[4]) * EFFORT_PER_UNIT

    def robot_state(self) -> tuple:
        """``(x, y, z, yaw, vx, vy, vz, width, effort)`` as a driver would report it."""
        x, y, z, yaw = self.tcp()
        vx, vy, vz, _ = self.tcp_velocity()
        return (x, y, z, yaw, vx, vy, vz, self.gripper_width(), self.gripper_effort())

    def joint_state(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Stage joint names, positions and velocities (noise-free encoders)."""
        return (list(STAGE_JOINTS), self.data.qpos[self._stage_qpos].copy(),
                self.data.qvel[self._stage_qvel].copy())

    def joint_efforts(self) -> np.ndarray:
        """Actuator forces of the stage joints (N, N m for yaw), as a driver reports them."""
        return self.data.actuator_force[:4].copy()

    # ------------------------------------------------------------------------- privileged
    def gripper_lowest_z(self) -> float:
        """World z of the gripper's lowest colliding point (m; its bounding boxes: errs low)."""
        g = self._finger_geoms
        aabb = self.model.geom_aabb[g]              # local centre (3), half sizes (3)
        rotation = self.data.geom_xmat[g].reshape(-1, 3, 3)
        centre_z = self.data.geom_xpos[g, 2] + np.einsum('nj,nj->n', rotation[:, 2, :],
                                                         aabb[:, :3])
        reach = np.einsum('nj,nj->n', np.abs(rotation[:, 2, :]), aabb[:, 3:])
        return float(np.min(centre_z - reach))

    def object_position(self) -> np.ndarray:
        """World position of the object's centre (m)."""
        return self.data.xpos[self._object_body].copy()

    def object_yaw(self) -> float:
        """Rotation of the object about z (rad)."""
        w, x, y, z = self.data.xquat[self._object_body]
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))

    def object_lifted(self) -> bool:
        """The object is at least ``LIFT_HEIGHT`` above where it rested."""
        return float(self.data.xpos[self._object_body][2]) - self.rest_z >= LIFT_HEIGHT

    def object_in_gripper(self) -> bool:
        """Both finger pads touch the object."""
        touching = set()
        object_geom = self.model.geom('object').id
        for i in range(self.data.ncon):
            contact = self.data.contact[i]
            other = contact.geom2 if contact.geom1 == object_geom else (
                contact.geom1 if contact.geom2 == object_geom else None)
            if other is None:
                continue
            name = self.model.geom(other).name
            if 'left_pad' in name:
                touching.add('left')
            elif 'right_pad' in name:
                touching.add('right')
        return touching == {'left', 'right'}

    # ------------------------------------------------------------------------------ camera
    def render(self, width: int = 96, height: int = 96) -> np.ndarray:
        """An RGB frame (uint8, height x width x 3) from the scene camera, with pixel noise."""
        key = (width, height)
        renderer = self._renderers.get(key)
        if renderer is None:
            renderer = self._renderers[key] = mujoco.Renderer(self.model, height, width)
        renderer.update_scene(self.data, camera='scene')
        frame = renderer.render()
        if self.params.camera_noise > 0.0:
            noise = self.rng.normal(0.0, self.params.camera_noise, frame.shape)
            frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
        return frame

    def project(self, point, width: int = 96, height: int = 96) -> tuple[float, float]:
        """Pixel ``(u, v)`` of a world point in the scene camera's image (pinhole model)."""
        cam = self.model.camera('scene').id
        rotation = self.data.cam_xmat[cam].reshape(3, 3)  # columns: right, up, backward
        local = rotation.T @ (np.asarray(point, float) - self.data.cam_xpos[cam])
        focal = 0.5 * height / math.tan(math.radians(self.model.cam_fovy[cam]) / 2)
        return (0.5 * width + focal * local[0] / -local[2],
                0.5 * height - focal * local[1] / -local[2])

    def close(self) -> None:
        """Release the renderers (needed with osmesa; harmless with egl)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def __enter__(self) -> 'GripperSim':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
