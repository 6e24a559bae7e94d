"""System identification of the Cartesian stage from recorded trajectories, and online adaptation.

The seed's ``SystemIdentification``: simulate the recorded commands in MuJoCo and minimize the
error between simulated and measured positions, velocities and joint efforts with SciPy's
L-BFGS-B within bounds. Fitted: the moving mass (scale), dry joint friction (N), joint
damping (scale), actuator strength (position-gain scale) and the command delay (s). With
efforts measured (every servo drive reports them) mass and gain are separable: positions
alone only fix their ratio.

The fit starts where the classical linear identification puts it (:func:`inverse_dynamics_
guess`: effort against acceleration, velocity and its sign, by least squares) and runs
L-BFGS-B in coordinates scaled by each parameter's sensitivity; that start and that scaling
are what make it land within a percent on every self-test draw instead of stalling in a
flat valley of mass and friction.

Trajectories come from the suite's bags (``/safety/command`` and ``/robot/joint_states``;
recordings are cut where the stage rests, so a long calibration run becomes pieces that
simulate in parallel), or from :mod:`sim2real_policy.calibration` runs on the robot or the
simulator: sums of sines inside the workspace at 80% of the speed limit, every target through
the safety filter.

:class:`OnlineAdaptation` follows a drifting parameter from streaming prediction errors with
bounded, rate-limited steps (normalized LMS), and records every update.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import time

import mujoco
from mujoco import rollout
import numpy as np
from scipy.optimize import minimize
from scipy.signal import savgol_filter

from sim2real_policy.sim.params import SimParams
from sim2real_policy.sim.scene import build_model, STAGE_JOINTS

PARAMS = ('mass_scale', 'friction', 'damping', 'strength', 'delay')
BOUNDS = {'mass_scale': (0.5, 2.0), 'friction': (0.0, 5.0), 'damping': (0.5, 2.0),
          'strength': (0.5, 1.5), 'delay': (0.0, 0.3)}
NOMINAL = {'mass_scale': 1.0, 'friction': 0.0, 'damping': 1.0, 'strength': 1.0, 'delay': 0.0}
UNITS = {'mass_scale': '', 'friction': 'N', 'damping': '', 'strength': '', 'delay': 's'}
SAMPLE = 0.01          # s between samples of a trajectory
# residual scales: 1 mm, 3 mm/s, 0.3 N (velocity and effort carry the mass: weigh them up)
SCALES = np.array([1e-3, 3e-3, 0.3])
AXES = 3               # x, y, z
LEAD = 30             # samples at rest kept before a trajectory's motion (start estimate)
MAX_EVALUATIONS = 400  # simulations of every trajectory the fit may spend (about a minute)


class SysidDataError(ValueError):
    """Recordings that cannot be used, with what is missing or dropped."""


@dataclass
class Trajectory:
    """Commanded targets and measured stage state, sampled every ``SAMPLE`` seconds."""

    command: np.ndarray    # (N, 3) x, y, z targets (m)
    position: np.ndarray   # (N, 3) measured (m)
    velocity: np.ndarray   # (N, 3) measured (m/s)
    effort: np.ndarray     # (N, 3) measured actuator force (N)
    source: str = ''

    def __post_init__(self):
        n = len(self.command)
        for name in ('position', 'velocity', 'effort'):
            if getattr(self, name).shape != (n, AXES):
                raise SysidDataError(f'{self.source}: {name} has shape '
                                     f'{getattr(self, name).shape}, expected ({n}, {AXES})')


def applied_commands(command: np.ndarray, delay: float, steps: int, timestep: float):
    """The targets the drive applies at each physics step, ``(N * steps, 3)``.

    Each command is held until the next (the drivers and the simulated robot take 100 Hz
    setpoints), then shifted by the delay, interpolated between physics steps so that
    everything computed from it is smooth in the delay.
    """
    step_times = np.arange(len(command) * steps) * timestep
    held = command[np.repeat(np.arange(len(command)), steps)]
    return np.stack([np.interp(step_times - delay, step_times, held[:, a])
                     for a in range(command.shape[1])], 1)


class StageSimulator:
    """The stage of the embedded scene, re-parameterized in place (no rebuild per trial)."""

    def __init__(self):
        self.model = build_model(SimParams(object_x=0.55, object_y=0.0))
        self._data = mujoco.MjData(self.model)
        self._datas = [mujoco.MjData(self.model) for _ in range(2)]  # rollout threads
        m = self.model
        self._joints = [m.joint(n).id for n in STAGE_JOINTS[:AXES]]
        self._qpos = [m.jnt_qposadr[j] for j in self._joints]
        self._dofs = [m.jnt_dofadr[j] for j in self._joints]
        self._moving = [b for b in range(m.nbody) if m.body(b).name == 'stage'
                        or m.body(b).name.startswith('gripper/')]
        self._mass0 = m.body_mass[self._moving].copy()
        self._inertia0 = m.body_inertia[self._moving].copy()
        self._damping0 = m.dof_damping[self._dofs].copy()
        self._kp0 = m.actuator_gainprm[:AXES, 0].copy()
        self._steps = int(round(SAMPLE / m.opt.timestep))
        assert self._steps >= 2, 'a sample must span several physics steps'

    def configure(self, params: dict) -> None:
        """Set the identified quantities on the model."""
        m = self.model
        m.body_mass[self._moving] = self._mass0 * params['mass_scale']
        m.body_inertia[self._moving] = self._inertia0 * params['mass_scale']
        m.dof_damping[self._dofs] = self._damping0 * params['damping']
        m.dof_frictionloss[self._dofs] = params['friction']
        kp = self._kp0 * params['strength']
        m.actuator_gainprm[:AXES, 0] = kp
        m.actuator_biasprm[:AXES, 1] = -kp

    def simulate(self, params: dict, traj: Trajectory) -> np.ndarray:
        """(N, 3, 3): simulated position, velocity and effort at the trajectory's samples."""
        return self.simulate_many(params, [traj])[0]

    def simulate_many(self, params: dict, trajs: list[Trajectory]) -> list[np.ndarray]:
        """Every trajectory at once: MuJoCo's rollout runs them in C, one thread per core.

        The effort is the stage drive's force kp * (command - position) over the physics step
        that ends at each sample (what a servo drive reports). Commands are held
        between samples (zero-order hold, as the drivers and the simulated robot do).
        """
        self.configure(params)
        m = self.model
        groups: dict[int, list[int]] = {}
        for index, traj in enumerate(trajs):
            groups.setdefault(len(traj.command), []).append(index)
        results: list = [None] * len(trajs)
        for n, indices in groups.items():
            batch = [trajs[i] for i in indices]
            initial = np.stack([self._initial_state(t) for t in batch])
            controls = np.zeros((len(batch), n * self._steps, m.nu))
            for b, traj in enumerate(batch):
                controls[b, :, :AXES] = applied_commands(traj.command, params['delay'],
                                                         self._steps, m.opt.timestep)
            state, _ = rollout.rollout(m, self._datas, initial, controls)
            # state k*steps-1 is the state after k samples; sample 0 is the initial state
            take = np.arange(1, n) * self._steps - 1
            qpos = np.concatenate([initial[:, None, 1:1 + m.nq], state[:, take, 1:1 + m.nq]],
                                  axis=1)
            qvel = np.concatenate([initial[:, None, 1 + m.nq:1 + m.nq + m.nv],
                                   state[:, take, 1 + m.nq:1 + m.nq + m.nv]], axis=1)
            # the force of the last physics step before each sample (what MuJoCo's
            # actuator_force holds after mj_step, and what a drive reports)
            last = np.maximum(np.arange(n) * self._steps - 1, 0)
            applied = controls[:, last, :AXES]
            before = np.concatenate([initial[:, None, 1:1 + m.nq],
                                     state[:, take - 1, 1:1 + m.nq]], axis=1)
            kp = m.actuator_gainprm[:AXES, 0]
            for b, i in enumerate(indices):
                position = qpos[b][:, self._qpos]
                velocity = qvel[b][:, self._dofs]
                effort = kp * (applied[b] - before[b][:, self._qpos])
                results[i] = np.stack([position, velocity, effort], axis=1)
        return results

    def _initial_state(self, traj: Trajectory) -> np.ndarray:
        m, d = self.model, self._data
        mujoco.mj_resetData(m, d)
        adr = m.joint('object').qposadr[0]
        d.qpos[adr:adr + 3] = (2.0, 2.0, 0.1)  # the object out of the stage's way
        start = rest_position(traj)
        for i, q in enumerate(self._qpos):
            d.qpos[q] = start[i]
        mujoco.mj_forward(m, d)
        state = np.empty(mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS))
        mujoco.mj_getState(m, d, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        return state


def rest_position(traj: Trajectory) -> np.ndarray:
    """Where the stage starts: the mean measured position over the leading samples at rest.

    A trajectory starts at rest under a constant command (recordings are cut there; the
    calibration settles first). Starting the simulation from one noisy sample instead biases
    the fit: a tenth of a millimetre against a 6000 N/m drive is a newton, as much as the dry
    friction being fitted.
    """
    moved = np.flatnonzero(np.any(np.abs(traj.command - traj.command[0]) > 1e-9, axis=1))
    still = int(moved[0]) if len(moved) else len(traj.command)
    return traj.position[:max(1, min(still, LEAD))].mean(axis=0)


def excitation(seed: int, duration: float = 3.0, start=(0.55, 0.0, 0.22),
               safety_limits=None) -> np.ndarray:
    """A calibration command: sums of sines per axis, through the safety filter if given.

    The sines start at zero (each term minus its value at t=0) so the command starts at
    ``start`` and leaves it smoothly.
    """
    rng = np.random.default_rng([seed, 0x5151])
    t = np.arange(int(duration / SAMPLE)) * SAMPLE
    command = np.tile(np.asarray(start, float), (len(t), 1))
    for axis, amplitude in enumerate((0.05, 0.05, 0.04)):
        for _ in range(3):
            freq, phase = rng.uniform(0.5, 3.0), rng.uniform(0, 2 * math.pi)
            a = amplitude / 3 * rng.uniform(0.5, 1.0)
            command[:, axis] += a * (np.sin(2 * math.pi * freq * t + phase) - math.sin(phase))
    if safety_limits is not None:
        # Plan well inside the speed limit (80%) so that the filter has nothing to cut on
        # the robot, where the measured pose lags the plan; then let it check every step.
        speed = np.max(np.linalg.norm(np.diff(command, axis=0), axis=1)) / SAMPLE
        allowed = 0.8 * safety_limits.max_cartesian_speed
        if speed > allowed:
            command = command[0] + (command - command[0]) * (allowed / speed)
        command = _through_safety(command, safety_limits)
    return command


def _through_safety(command: np.ndarray, limits) -> np.ndarray:
    from sim2real_safety.filter import SafetyFilter, SEED_READINGS

    flt = SafetyFilter(limits)
    ns = 1_000_000_000
    now = 10 * ns
    pose = (*command[0], 0.0, 0.085)
    for _ in range(SEED_READINGS):  # the filter trusts agreeing readings only
        now += int(SAMPLE * ns)
        flt.observe_exact_robot(pose, now)
    out = []
    for target in command:
        now += int(SAMPLE * ns)
        flt.observe_exact_robot(pose, now)  # the stage where its last command was
        flt.supervisor_heartbeat(now)
        decision = flt.check((*target, 0.0, 0.085), now - 1, now)
        pose = decision.command
        out.append(pose[:3])
    return np.asarray(out)


def synthetic_recordings(true: dict, count: int, noise: dict | None = None, seed: int = 0,
                         duration: float = 3.0, limits=None) -> list[Trajectory]:
    """Recordings made in the simulator with known parameters plus sensor noise."""
    noise = noise or {'position': 1e-4, 'velocity': 2e-3, 'effort': 0.5}
    rng = np.random.default_rng([seed, 0x7E57])
    sim = StageSimulator()
    recordings = []
    for k in range(count):
        command = excitation(seed * 100 + k, duration, safety_limits=limits)
        command = np.concatenate([np.tile(command[0], (LEAD, 1)), command])  # settled first
        blank = Trajectory(command, np.tile(command[0], (len(command), 1)),
                           np.zeros_like(command), np.zeros_like(command), f'synthetic {k}')
        measured = sim.simulate(true, blank)
        recordings.append(Trajectory(
            command, measured[:, 0] + rng.normal(0, noise['position'], command.shape),
            measured[:, 1] + rng.normal(0, noise['velocity'], command.shape),
            measured[:, 2] + rng.normal(0, noise['effort'], command.shape),
            f'synthetic {k}'))
    return recordings


@dataclass
class FitResult:
    """Fitted parameters, their uncertainty and the residuals."""

    params: dict
    std: dict
    rms_before: dict
    rms_after: dict
    seconds: float
    evaluations: int
    history: list = field(default_factory=list)


def _pack(params: dict) -> np.ndarray:
    return np.array([(params[n] - BOUNDS[n][0]) / (BOUNDS[n][1] - BOUNDS[n][0]) for n in PARAMS])


def _unpack(z: np.ndarray) -> dict:
    return {n: BOUNDS[n][0] + float(v) * (BOUNDS[n][1] - BOUNDS[n][0]) for n, v in zip(PARAMS, z)}


def _rms(sim: StageSimulator, params: dict, trajs: list[Trajectory]) -> dict:
    errors = [simulated - np.stack([t.position, t.velocity, t.effort], 1)
              for simulated, t in zip(sim.simulate_many(params, trajs), trajs)]
    stacked = np.concatenate(errors)
    return {'position_mm': float(np.sqrt(np.mean(stacked[:, 0] ** 2)) * 1e3),
            'velocity_mm_s': float(np.sqrt(np.mean(stacked[:, 1] ** 2)) * 1e3),
            'effort_n': float(np.sqrt(np.mean(stacked[:, 2] ** 2)))}


def _drive_law(trajs, kp0, dt) -> tuple[float, float]:
    """Delay and actuator gain from the drive law, ``effort = k kp0 (applied - position)``.

    The reported effort is the force of the last physics step before a sample; the target
    applied then is command ``k - n - 1``, or command ``k - n``, or (when the delayed switch
    falls inside that very step) the blend ``(1 - a) c[k-n-1] + a c[k-n]``, which is linear in
    ``(k, k a)``: one least-squares solve per whole number ``n`` of sample periods. A blend
    gives the delay to a fraction of a step, ``n T - a dt``; otherwise it is only known to
    lie within the period, and the middle of it is returned.
    """
    best = (math.inf, 0.0, 1.0)
    for n in range(int(round(BOUNDS['delay'][1] / SAMPLE)) + 1):
        columns, effort = [[], []], []
        for traj in trajs:
            k = np.arange(len(traj.command))
            older = traj.command[np.clip(k - n - 1, 0, None)]
            newer = traj.command[np.clip(k - n, 0, None)]
            before = traj.position - dt * traj.velocity   # one physics step earlier
            columns[0].append((kp0 * (older - before)).ravel())
            columns[1].append((kp0 * (newer - older)).ravel())
            effort.append(traj.effort.ravel())
        design = np.stack([np.concatenate(c) for c in columns], 1)
        effort = np.concatenate(effort)
        gain, blend = np.linalg.lstsq(design, effort, rcond=None)[0]
        a = float(np.clip(blend / gain, 0.0, 1.0)) if gain > 0 else 0.0
        residual = float(np.sum((effort - design @ np.array([gain, gain * a])) ** 2))
        if residual < best[0]:
            if 1e-3 < a < 1.0 - 1e-3:
                delay = n * SAMPLE - a * dt
            else:   # a whole period: somewhere inside it
                delay = (n + 0.5) * SAMPLE if a <= 1e-3 else (n - 0.5) * SAMPLE
            best = (residual, delay, float(gain))
    return float(np.clip(best[1], 0.0, BOUNDS['delay'][1])), best[2]


def _regress_inertia(trajs, delay, strength, bodies, armature, damping0, kp0, steps, dt):
    """Mass scale, damping scale and friction by least squares, for a given delay/strength.

    Over each sample interval: the mean drive force (setpoints switch inside it when the delay
    is not a whole period) against the velocity change across it.
    """
    guess = dict(NOMINAL, delay=delay, strength=strength)
    rows, rhs = [], []
    window = 15  # samples of the Savitzky-Golay smoother (0.15 s)
    for traj in trajs:
        if len(traj.command) <= 2 * window:
            continue
        velocity = savgol_filter(traj.velocity, window, 3, axis=0)
        accel = np.diff(velocity, axis=0) / SAMPLE
        v_mid = 0.5 * (velocity[1:] + velocity[:-1])
        applied = applied_commands(traj.command, delay, steps, dt)
        applied = applied.reshape(-1, steps, AXES).mean(axis=1)[:-1]
        position = 0.5 * (traj.position[1:] + traj.position[:-1])
        effort = strength * kp0 * (applied - position)
        inner = slice(window, -window)
        for a in range(AXES):
            v, acc = v_mid[inner, a], accel[inner, a]
            rows.append(np.stack([bodies[a] * acc, damping0[a] * (v + dt * acc), np.sign(v)], 1))
            rhs.append(effort[inner, a] - armature[a] * acc)
    if rows:
        solution = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)[0]
        guess.update(mass_scale=solution[0], damping=solution[1], friction=solution[2])
    return guess


def inverse_dynamics_guess(sim: StageSimulator, trajs: list[Trajectory]) -> dict:
    """A starting point from the classical linear-in-parameters identification.

    The drive's effort balances the stage's inertia, damping and dry friction,
    ``effort = (s * M_bodies + armature) * a + d * c0 * (v + dt * a) + f * sign(v)``
    (the ``dt * a`` term is the implicit integrator's damping), which is linear in mass scale
    ``s``, damping scale ``d`` and friction ``f``: one least-squares solve. Strength and delay
    come from the drive law ``effort = k * kp0 * (command(t - delay) - position)``
    (:func:`_drive_law`), the delay to within the sample period or better, settled among its
    neighbours by simulating each candidate. The output-error fit then only refines (the
    cost is nearly flat in mass and friction near the noise floor: where it starts matters).
    """
    m = sim.model
    sim.configure(NOMINAL)
    data = mujoco.MjData(m)
    mujoco.mj_forward(m, data)
    inertia = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, data, inertia)
    armature = m.dof_armature[sim._dofs]
    bodies = np.array([inertia[d, d] for d in sim._dofs]) - armature
    damping0, kp0, dt = sim._damping0, sim._kp0, m.opt.timestep
    steps = sim._steps
    delay0, gain = _drive_law(trajs, kp0, dt)
    # The interval-averaged regression is sensitive to where inside an interval the setpoint
    # switches, which the drive law pins only when it switches in the sample's own physics
    # step: try delays around it and keep the candidate whose simulated response fits best
    # (one rollout each).
    measured = [np.stack([t.position, t.velocity, t.effort], 1) for t in trajs]
    candidates = []
    for offset in np.arange(-0.006, 0.0065, 0.001):
        delay = float(np.clip(delay0 + offset, 0.0, BOUNDS['delay'][1]))
        if abs(delay / dt - round(delay / dt)) < 1e-6:
            # half a physics step on: the cost has a kink at every whole step of delay
            # (targets switch on step boundaries), and a start on a kink stalls the search
            delay += 0.5 * dt
        guess = _regress_inertia(trajs, delay, gain, bodies, armature, damping0, kp0,
                                 steps, dt)
        guess = {n: float(np.clip(v, *BOUNDS[n])) for n, v in guess.items()}
        cost = sum(float(np.mean(((simulated - meas) / SCALES[None, :, None]) ** 2))
                   for simulated, meas in zip(sim.simulate_many(guess, trajs), measured))
        candidates.append((cost, guess))
    guess = min(candidates, key=lambda c: c[0])[1]
    return guess


def fit(trajs: list[Trajectory], start: dict | None = None, progress=None) -> FitResult:
    """L-BFGS-B over the bounded parameters, preconditioned by their sensitivities.

    Starts from :func:`inverse_dynamics_guess` unless ``start`` is given. The parameters act
    on very different scales (a millisecond of delay moves the residuals as much as a tenth
    of the friction range), so the fit runs in coordinates scaled by the square root of the
    Gauss-Newton Hessian's diagonal at the start: box bounds stay boxes, and the condition
    number drops by two orders of magnitude (8500 -> 55 on a self-test draw). Without it
    L-BFGS-B's line search stalls in the steep delay/strength directions while mass and
    friction are still off.
    """
    if not trajs:
        raise SysidDataError('no trajectory to fit')
    started = time.perf_counter()
    sim = StageSimulator()
    prior = dict(start or NOMINAL)   # the model before the fit: residuals 'before'
    start = dict(start or inverse_dynamics_guess(sim, trajs))
    measured = [np.stack([t.position, t.velocity, t.effort], 1) for t in trajs]
    # every trajectory weighs the same whatever its length: cost = mean over trajectories
    # of the mean squared scaled residual
    weights = [1.0 / math.sqrt(m.size * len(trajs)) for m in measured]
    evaluations = [0]
    history = []
    channels = SCALES.copy()   # residual scale per channel; re-estimated after a first pass

    def residuals(z):
        params = _unpack(np.clip(z, 0.0, 1.0))
        evaluations[0] += 1
        return np.concatenate([((simulated - meas) / channels[None, :, None]).ravel() * w
                               for simulated, meas, w in
                               zip(sim.simulate_many(params, trajs), measured, weights)])

    def jacobian(z, r0, step=1e-4):
        columns = []
        for i in range(len(PARAMS)):
            h = step if z[i] + step <= 1.0 else -step
            shifted = z.copy()
            shifted[i] += h
            columns.append((residuals(shifted) - r0) / h)
        return np.stack(columns, 1)

    last = {'cost': math.nan}

    def descend(z0, budget):
        """Preconditioned L-BFGS-B from ``z0``; returns where it stopped."""
        r0 = residuals(z0)
        sensitivity = np.sqrt(np.sum(jacobian(z0, r0) ** 2, axis=0))
        scale = np.maximum(sensitivity, 1e-3 * max(sensitivity.max(), 1e-12))

        def objective(w):
            last['cost'] = float(np.sum(residuals(w / scale) ** 2))
            return last['cost']

        def callback(w):
            history.append({'params': _unpack(np.clip(w / scale, 0.0, 1.0)),
                            'cost': last['cost']})
            if progress:
                progress(len(history), history[-1])

        # a run that stalls is restarted from where it stopped (a fresh curvature estimate)
        # while it still gains more than a ten-thousandth of the cost
        w, previous = z0 * scale, math.inf
        end = evaluations[0] + budget
        while evaluations[0] < end:
            result = minimize(objective, w, method='L-BFGS-B',
                              bounds=[(0.0, float(s)) for s in scale], callback=callback,
                              options={'maxiter': 60, 'maxfun': end - evaluations[0],
                                       'eps': 1e-6, 'ftol': 1e-13, 'gtol': 1e-10})
            w = result.x
            if previous - result.fun < 1e-4 * max(1.0, abs(result.fun)):
                break
            previous = result.fun
        return np.clip(w / scale, 0.0, 1.0)

    before = _rms(sim, prior, trajs)
    # Pass 1 with the default channel scales; pass 2 weighs each channel by the residual it
    # left (maximum likelihood for unknown sensor noise: a noisy channel counts less, a
    # precise one more), from where pass 1 stopped.
    z = descend(_pack(start), MAX_EVALUATIONS // 2)
    fitted = np.concatenate([simulated - meas for simulated, meas in
                             zip(sim.simulate_many(_unpack(z), trajs), measured)])
    rms = np.sqrt(np.mean(fitted ** 2, axis=(0, 2)))
    channels = np.maximum(rms, 1e-3 * SCALES)
    z = descend(z, MAX_EVALUATIONS - evaluations[0])
    params = _unpack(z)
    # Uncertainty: the Gauss-Newton covariance at the fit, sigma^2 (J^T J)^-1, with sigma^2
    # the variance of a (weighted) residual: the cost spread over the degrees of freedom.
    r = residuals(z)
    jac = jacobian(z, r)
    samples = sum(m.size for m in measured)
    sigma2 = float(r @ r) / max(1, samples - len(PARAMS))
    covariance = np.linalg.pinv(jac.T @ jac) * sigma2
    std = {n: float(math.sqrt(max(0.0, covariance[i, i])) * (BOUNDS[n][1] - BOUNDS[n][0]))
           for i, n in enumerate(PARAMS)}
    return FitResult(params, std, before, _rms(sim, params, trajs),
                     time.perf_counter() - started, evaluations[0], history)


def self_test(count: int = 6, seed: int = 0, progress=None) -> dict:
    """Known parameters drawn at random, synthetic noisy recordings, fit, relative errors."""
    rng = np.random.default_rng([seed, 0x11D])
    true = {'mass_scale': float(rng.uniform(0.7, 1.5)), 'friction': float(rng.uniform(0.5, 3)),
            'damping': float(rng.uniform(0.7, 1.5)), 'strength': float(rng.uniform(0.7, 1.3)),
            'delay': float(rng.uniform(0.02, 0.2))}
    started = time.perf_counter()
    recordings = synthetic_recordings(true, count, seed=seed)
    result = fit(recordings, progress=progress)
    out = {}
    for name in PARAMS:
        rel = abs(result.params[name] - true[name]) / abs(true[name]) if true[name] else None
        out[name] = {'true': true[name], 'fitted': result.params[name], 'rel_error': rel,
                     'abs_error': abs(result.params[name] - true[name]),
                     'std': result.std[name]}
    return {'params': out, 'seconds': time.perf_counter() - started,
            'trajectories': count, 'rms_before': result.rms_before,
            'rms_after': result.rms_after, 'evaluations': result.evaluations}


class SelfTestDraws:
    """A rollout worker: :func:`self_test` of one draw per ``{'seed': int}``."""

    def __init__(self, trajectories: int = 6):
        self.trajectories = trajectories

    def __call__(self, spec: dict) -> dict:
        """The self-test of draw ``spec['seed']``."""
        return self_test(self.trajectories, spec['seed'])


def trajectories_from_messages(commands, joint_states, min_length: int = 100) -> tuple:
    """Trajectories from ``[(t_ns, (x, y, z))]`` and ``[(t_ns, names, pos, vel, eff)]``.

    Returns ``(trajectories, notes)``: samples with non-finite values are dropped and gaps
    longer than two sample periods split a recording; every drop and split is in ``notes``.
    """
    notes = []
    if not commands:
        raise SysidDataError('no commanded trajectory (/safety/command is missing or empty)')
    if not joint_states:
        raise SysidDataError('no measured trajectory (/robot/joint_states is missing or empty)')
    names = list(joint_states[0][1])
    missing = [j for j in STAGE_JOINTS[:AXES] if j not in names]
    if missing:
        raise SysidDataError(f'/robot/joint_states lacks joint(s) {missing}')
    index = [names.index(j) for j in STAGE_JOINTS[:AXES]]
    if any(len(js[4]) == 0 for js in joint_states):
        raise SysidDataError('/robot/joint_states carries no efforts; the fit needs them to '
                             'separate mass from gain')
    cmd_t = np.array([c[0] for c in commands], float)
    cmd = np.array([c[1] for c in commands], float)
    rows, dropped = [], 0
    for t_ns, _, pos, vel, eff in joint_states:
        row = np.concatenate([np.asarray(pos)[index], np.asarray(vel)[index],
                              np.asarray(eff)[index]])
        if not np.all(np.isfinite(row)):
            dropped += 1
            continue
        rows.append((t_ns, row))
    if dropped:
        notes.append(f'dropped {dropped} joint-state samples with non-finite values')
    good = np.all(np.isfinite(cmd), axis=1)
    if not good.all():
        notes.append(f'dropped {int((~good).sum())} commands with non-finite values')
        cmd_t, cmd = cmd_t[good], cmd[good]
    segments, current = [], []
    for t_ns, row in rows:
        if current and t_ns - current[-1][0] > 2 * SAMPLE * 1e9:
            notes.append(f'gap of {(t_ns - current[-1][0]) / 1e9:.3f} s at '
                         f'{current[-1][0] / 1e9:.3f} s: recording split')
            segments.append(current)
            current = []
        current.append((t_ns, row))
    segments.append(current)
    trajs = []
    for segment in segments:
        if len(segment) < min_length:
            if segment:
                notes.append(f'a segment of {len(segment)} samples is too short; skipped')
            continue
        t = np.array([s[0] for s in segment], float)
        data = np.array([s[1] for s in segment])
        command = np.stack([np.interp(t, cmd_t, cmd[:, a]) for a in range(AXES)], 1)
        for piece in _split_at_rest(command, data[:, 3:6]):
            if len(piece) < min_length:
                continue
            trajs.append(Trajectory(command[piece], data[piece, :3], data[piece, 3:6],
                                    data[piece, 6:9], f'segment at {t[piece[0]] / 1e9:.2f} s'))
    if not trajs:
        raise SysidDataError('no usable segment left: ' + '; '.join(notes or ['too short']))
    return trajs, notes


def _split_at_rest(command: np.ndarray, velocity: np.ndarray) -> list[np.ndarray]:
    """Index ranges of a recording cut where the stage rests under a constant command.

    A piece starting at rest after the command has been still for longer than the largest
    delay fitted is simulated exactly from there, and the pieces run in parallel: a long
    calibration run becomes one trajectory per excitation. Each piece keeps ``LEAD`` samples
    of the rest before the motion (:func:`rest_position` averages them).
    """
    hold = int(math.ceil(BOUNDS['delay'][1] / SAMPLE)) + 5 + LEAD
    n = len(command)
    still = np.zeros(n, bool)
    steady = np.all(np.abs(np.diff(command, axis=0)) < 1e-7, axis=1)
    run = 0
    for k in range(1, n):
        run = run + 1 if steady[k - 1] else 0
        still[k] = run >= hold and np.all(np.abs(velocity[k]) < 1e-3)
    cuts = [k - LEAD for k in range(1, n - 1) if still[k] and not still[k + 1]]
    edges = [0] + cuts + [n]
    return [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


class OnlineAdaptation:
    """Follow a parameter of a linear-in-parameter model ``y = theta * phi`` as data streams.

    Normalized LMS: ``theta += clip(rate * e * phi / (phi^2 + eps), +-max_step)``, then clamped
    to ``bounds``. The step bound makes it rate-limited and unable to run away whatever the
    data; every update is recorded.
    """

    def __init__(self, initial: float, bounds: tuple, rate: float = 0.2,
                 max_step: float = 0.02, min_excitation: float = 1e-6):
        low, high = bounds
        if not low <= initial <= high:
            raise ValueError(f'initial value {initial} outside bounds {bounds}')
        self.theta = float(initial)
        self.bounds = (float(low), float(high))
        self.rate = rate
        self.max_step = max_step
        self.min_excitation = min_excitation
        self.updates: list[dict] = []

    def update(self, phi: float, measured: float, time_s: float = math.nan) -> float:
        """One streaming sample; returns the new estimate."""
        if not (math.isfinite(phi) and math.isfinite(measured)) or \
                phi * phi < self.min_excitation:
            return self.theta  # no information in this sample
        error = measured - self.theta * phi
        step = self.rate * error * phi / (phi * phi + self.min_excitation)
        step = max(-self.max_step, min(self.max_step, step))
        new = min(self.bounds[1], max(self.bounds[0], self.theta + step))
        self.updates.append({'time_s': time_s, 'from': self.theta, 'to': new, 'error': error})
        self.theta = new
        return new
