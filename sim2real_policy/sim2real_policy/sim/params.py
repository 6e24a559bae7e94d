"""Every parameter of one simulated episode, nominal values included.

An episode is fully determined by a :class:`SimParams` (and the commands it receives): the
randomizers sample one, the episode records it (``to_dict``), and ``from_dict`` rebuilds it, so
any episode can be replayed exactly.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

OBJECT_SHAPES = ('box', 'cylinder', 'sphere')


@dataclass(frozen=True)
class SimParams:
    """Scene, physics, latency, noise and appearance of one episode (SI units)."""

    seed: int = 0
    # object
    object_shape: str = 'box'
    object_size: float = 0.022        # half-width of the object (m); < 0.03 (wider jams)
    object_height: float = 0.025      # half-height (m)
    object_mass: float = 0.10         # kg
    object_friction: float = 1.0      # sliding friction coefficient (mu)
    rolling_friction: float = 1e-4    # m
    object_x: float = 0.55            # start position on the table (m, base frame)
    object_y: float = 0.0
    object_yaw: float = 0.0           # rad
    # world and stage
    table_height: float = 0.0         # table surface z (m)
    gravity: float = 9.81             # m/s^2, pointing down
    joint_damping: float = 1.0        # scale of the stage joints' damping
    joint_stiffness: float = 0.0      # stage joint spring toward their reference (N/m)
    joint_friction: float = 0.0       # dry friction of each stage joint (N)
    stage_mass: float = 1.0           # mass of the moving stage without the gripper (kg)
    actuator_strength: float = 1.0    # scale of the stage position gains
    gripper_strength: float = 1.0     # scale of the gripper's force limit
    pad_friction: float = 1.0         # scale of the finger pads' friction (wear < 1)
    # time
    action_delay: float = 0.0         # command to stage response delay (s)
    gripper_lag: float = 0.0          # command to gripper response delay (s)
    # disturbances and sensing
    push_force: float = 0.0           # magnitude of random external pushes on the object (N)
    push_rate: float = 0.0            # expected pushes per second
    encoder_noise: float = 0.0        # std of measured positions (m, rad)
    camera_noise: float = 2.0         # std of pixel noise (0..255); a real sensor is never 0
    # appearance
    object_rgb: tuple = (0.85, 0.2, 0.15)
    table_rgb: tuple = (0.55, 0.45, 0.35)
    floor_rgb: tuple = (0.25, 0.27, 0.3)
    light_pos: tuple = (0.6, 0.0, 1.5)
    light_intensity: float = 0.8
    camera_offset: tuple = (0.0, 0.0, 0.0)   # camera position jitter (m)
    camera_tilt: float = 0.0                  # camera pitch jitter (rad)
    # where the camera looks, moved (m): camera_offset alone re-aims the camera at the same
    # point; both by the same vector move it without turning it (a camera knocked sideways)
    camera_aim_offset: tuple = (0.0, 0.0, 0.0)
    # image-level (OpenCV) randomization, applied to rendered frames
    image: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain data (JSON-able) for recording the episode."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'SimParams':
        """The inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f'unknown simulation parameter(s) {unknown}')
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def replace(self, **changes) -> 'SimParams':
        """A copy with some fields changed."""
        data = self.to_dict()
        data.update(changes)
        return SimParams.from_dict(data)
