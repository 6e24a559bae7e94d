"""The bundled keypoint policy: perception on unseen worlds, bounded chunks, its contract."""
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest
import yaml

from sim2real_policy.keypoint_policy import (
    FINGERTIP_GRASP_HEIGHT,
    GraspPlanner,
    KeypointGraspPolicy,
    load_policy,
)
from sim2real_policy.keypoints import KEYPOINTS, render_dataset
from sim2real_policy.models import BUNDLED
from sim2real_policy.policy import ACTION_NAMES, ModelError
from sim2real_policy.sim.scene import STAGE_RANGE
from sim2real_safety.cell_file import read_cell_file

CONFIG = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / 'config' / 'randomization.yaml').read_text())
EXPECTED = {'action_names': list(ACTION_NAMES), 'horizon': 16, 'action_period': 0.05}


@pytest.fixture(scope='module')
def policy():
    return load_policy(BUNDLED, 'onnxruntime', EXPECTED)


@pytest.fixture(scope='module')
def unseen():
    """Heavy worlds from seeds neither training (10**6...) nor validation (2 * 10**6...) used."""
    return render_dataset(CONFIG, 'heavy', range(3 * 10**6, 3 * 10**6 + 40), 4, workers=1)


def test_the_bundled_policy_is_the_keypoint_policy_and_meets_the_deployment(policy):
    assert isinstance(policy, KeypointGraspPolicy)
    assert policy.meta.extra['randomization'] == 'heavy'
    with pytest.raises(ModelError, match='horizon'):
        load_policy(BUNDLED, 'onnxruntime', dict(EXPECTED, horizon=8))
    with pytest.raises(ModelError, match='onnxruntime only'):
        load_policy(BUNDLED, 'cv2_dnn', EXPECTED)


def test_keypoints_are_found_to_a_pixel_on_worlds_never_seen(policy, unseen):
    errors = {name: [] for name in KEYPOINTS}
    for frame, labels in zip(unseen['frames'], unseen['labels']):
        found = policy.detector(frame)
        for name, (u, v) in zip(KEYPOINTS, labels):
            if 0 <= u <= 95 and 0 <= v <= 95:
                errors[name].append(np.hypot(found[name][0] - u, found[name][1] - v))
    for name in ('object_base', 'tcp'):
        assert np.median(errors[name]) < 1.0, (name, np.median(errors[name]))


def test_without_a_cell_calibration_the_policy_refuses_to_plan(policy):
    policy.calibration = None
    with pytest.raises(ModelError, match='calibration'):
        policy.predict(np.zeros((96, 96, 3), np.uint8), np.zeros(6))


def _calibration():
    """The nominal simulated cell's calibration, as shipped (made by the procedure)."""
    return read_cell_file(Path(__file__).resolve().parents[2] / 'config'
                            / 'cell_calibration_sim.yaml')


@settings(max_examples=60, deadline=None)
@given(st.floats(0.3, 0.8), st.floats(-0.25, 0.25), st.floats(0.0, 0.45),
       st.floats(-1.5, 1.5), st.floats(0.0, 0.085), st.floats(-50.0, 50.0),
       st.integers(0, 2**31 - 1))
def test_every_chunk_stays_in_the_envelope(policy, x, y, z, yaw, width, effort, seed):
    # Whatever the image shows and wherever the robot is, the chunk's targets stay in the
    # stage's reach and the gripper's range, and advance no faster than the planner's speed.
    policy.calibration = _calibration()
    policy.reset()
    frame = np.random.default_rng(seed).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    proprio = np.array([x, y, z, yaw, width, effort])
    for k in range(3):
        chunk = policy.predict(frame, proprio, stamp_ns=k * 100_000_000)
        assert chunk.shape == (16, 5) and np.all(np.isfinite(chunk))
        assert np.all(chunk[:, 4] >= 0.0) and np.all(chunk[:, 4] <= 0.085)
        for j, (low, high) in enumerate(STAGE_RANGE[:3]):
            assert np.all(chunk[:, j] >= min(low, proprio[j]) - 1e-9)
            assert np.all(chunk[:, j] <= max(high, proprio[j]) + 1e-9)
        steps = np.linalg.norm(np.diff(chunk[:, :3], axis=0), axis=1)
        assert np.all(steps <= 0.15 * 0.05 + 1e-9)


def test_the_object_is_only_measured_while_the_fingers_are_clear(policy):
    policy.calibration = _calibration()
    policy.reset()
    seen = {'object_base': (40.0, 60.0, 0.5), 'object_top': (40.0, 57.0, 0.5),
            'tcp': (48.0, 30.0, 0.5)}
    far = np.array([0.55, 0.0, 0.25, 0.0])
    first = policy.object_estimate(seen, far, 0)
    assert first is not None
    moved = dict(seen, object_base=(44.0, 60.0, 0.5), object_top=(44.0, 57.0, 0.5))
    close = np.array([first[0], first[1], first[2] + 0.02, 0.0])
    # the fingers are at the object: what the camera shows there is not the object
    assert np.allclose(policy.object_estimate(moved, close, 100_000_000), first)
    # clear again after a pause (a re-grasp): the new sightings replace the old
    later = policy.object_estimate(moved, far, 5 * 10**9)
    assert not np.allclose(later, first)


def test_an_object_whose_top_is_not_found_is_gripped_low_at_its_base(policy):
    # fine-tuned on real frames, the network may not find the top (no real label for it):
    # the base still places the object, and the grasp is the lowest that keeps the
    # fingertips off the table; without a credible base there is no object
    policy.calibration = _calibration()
    seen = {'object_base': (40.0, 60.0, 0.5), 'object_top': (40.0, 50.0, 0.5),
            'tcp': (48.0, 30.0, 0.5)}
    with_top = policy.locate(seen)
    without_top = policy.locate(dict(seen, object_top=(5.0, 5.0, 0.001)))
    assert with_top is not None and without_top is not None
    assert np.allclose(without_top[:2], with_top[:2])
    assert without_top[2] == pytest.approx(policy.table_height() + FINGERTIP_GRASP_HEIGHT)
    assert with_top[2] > without_top[2]
    assert policy.locate(dict(seen, object_base=(40.0, 60.0, 0.001))) is None


def test_the_planner_lifts_what_it_holds_and_retries_an_empty_grasp():
    holding = GraspPlanner((0.55, 0.0, 0.02), min_width=0.034, max_width=0.052, gripping=True)
    closing = GraspPlanner((0.55, 0.0, 0.02), min_width=0.034, max_width=0.052)
    at_object = (0.55, 0.0, 0.016, 0.0)
    assert holding.phase(at_object, 0.040) == 'lift'       # stopped on a 40 mm object
    assert closing.phase(at_object, 0.040) == 'close'      # still closing: not yet
    assert closing.phase(at_object, 0.0) == 'regrasp'      # closed on nothing
    reopening = GraspPlanner((0.55, 0.0, 0.02), 0.034, 0.052, previous_phase='regrasp')
    assert reopening.phase(at_object, 0.040) == 'regrasp'  # opening again, not a grasp
    planner = closing
    assert planner.phase((0.55, 0.0, 0.2, 0.0), 0.085) == 'descend'
    assert planner.phase((0.40, 0.1, 0.2, 0.0), 0.085) == 'approach'


def test_still_fingers_pressing_on_something_wider_than_any_object_are_a_grip():
    # a box gripped across its corners (its yaw is not estimated) stops the fingers wider
    # than the widest object; they press on it, so it is held
    at_object = (0.55, 0.0, 0.016, 0.0)
    holding = GraspPlanner((0.55, 0.0, 0.02), 0.034, 0.052, gripping=True,
                           previous_phase='close')
    assert holding.phase(at_object, 0.061) == 'lift'
    lifting = GraspPlanner((0.55, 0.0, 0.02), 0.034, 0.052, gripping=True,
                           previous_phase='lift')
    assert lifting.phase((0.55, 0.0, 0.05, 0.0), 0.061) == 'lift'
    closing = GraspPlanner((0.55, 0.0, 0.02), 0.034, 0.052, previous_phase='close')
    assert closing.phase(at_object, 0.061) == 'close'


def test_a_stage_that_stops_short_of_the_grasp_closes_there_and_is_held_down():
    obj = (0.55, 0.0, 0.02)
    short = (0.55, 0.0, 0.02 - 0.004 + 0.012, 0.0)     # 12 mm above the grasp height
    moving = GraspPlanner(obj, 0.034, 0.052)
    assert moving.phase(short, 0.085) == 'descend'
    stopped = GraspPlanner(obj, 0.034, 0.052, settled=True)
    assert stopped.phase(short, 0.085) == 'close'
    assert stopped.phase((0.55, 0.0, 0.02 - 0.004 + 0.03, 0.0), 0.085) == 'descend'
    # the close aims at the grasp height, not at where the stage stopped
    plan = stopped.plan(short, 0.085, settled=True)
    assert np.all(plan.waypoints[1:-1, 2] <= 0.02 - 0.004 + 1e-9)


def test_a_descent_held_up_far_above_the_grasp_closes_once_it_has_stood_still():
    obj = (0.55, 0.0, 0.02)                       # grasp height 0.016
    held_up = (0.55, 0.0, 0.05, 0.0)              # 34 mm above it: the safety node's floor
    still = GraspPlanner(obj, 0.034, 0.052, previous_phase='descend', settled=True)
    assert still.phase(held_up, 0.085) == 'descend'
    stalled = GraspPlanner(obj, 0.034, 0.052, previous_phase='descend', settled=True,
                           stalled=True)
    assert stalled.phase(held_up, 0.085) == 'close'
    # the close still aims at the grasp height: the floor, not the plan, holds the stage up
    plan = stalled.plan(held_up, 0.085, settled=True)
    assert np.all(plan.waypoints[1:-1, 2] <= 0.016 + 1e-9)
    # a descent that has not begun (just approached), or a stage beside the object, goes on
    approached = GraspPlanner(obj, 0.034, 0.052, previous_phase='approach', settled=True,
                              stalled=True)
    assert approached.phase(held_up, 0.085) == 'descend'
    assert stalled.phase((0.57, 0.0, 0.05, 0.0), 0.085) != 'close'
    # closing there goes on closing (it does not fall back to the descent it came from)
    closing = GraspPlanner(obj, 0.034, 0.052, previous_phase='close', settled=True,
                           stalled=True)
    assert closing.phase(held_up, 0.07) == 'close'


def test_the_policy_takes_a_descent_for_held_up_only_once_it_stopped_falling(policy):
    from sim2real_policy.keypoint_policy import STALL_TIME
    from sim2real_policy.sim.params import SimParams
    from sim2real_policy.sim.robot import GripperSim, HOME

    with GripperSim(SimParams(), start=HOME, settle_s=0.2) as sim:
        frame = sim.render(96, 96)
    policy.calibration = _calibration()
    step = 50_000_000
    stamps = list(range(step, int(3 * STALL_TIME * 1e9), step))

    def phases(heights):
        policy.reset()
        policy.predict(frame, [0.55, 0.0, 0.25, 0.0, 0.085, 0.0], stamp_ns=0)  # clear: seen
        obj = np.median([e for _, e in policy.estimates], axis=0)
        found = []
        for stamp, dz in zip(stamps, heights):
            policy.predict(frame, [obj[0], obj[1], obj[2] + dz, 0.0, 0.085, 0.0],
                           stamp_ns=stamp)
            found.append(policy.phase)
        return found

    # held up 35 mm above the object's centre, the encoder's readings noisy (2 mm, the heavy
    # ranges' most): a descent until a whole STALL_TIME of it fell nowhere, then a close that
    # never goes back to the descent (which would open the fingers mid-grip)
    noise = np.random.default_rng(7).normal(0.0, 0.002, len(stamps))
    held = phases(0.035 + noise)
    first = held.index('close')
    assert all(p == 'descend' for p in held[:first])
    assert all(p == 'close' for p in held[first:])
    assert STALL_TIME * 1e9 <= stamps[first] - stamps[0] <= (STALL_TIME + 0.3) * 1e9
    # nor when, closing, the window shows a fall again (the stage sinking 8 mm on the floor)
    sinking = list(0.035 + noise[:first + 1]) + [0.035 - 0.001 * k for k in range(1, 9)]
    assert phases(sinking)[first:] == ['close'] * (len(sinking) - first)
    # a pause in the inferences (the controller held the stage) starts the window over: the
    # readings after it must span a whole STALL_TIME of their own
    policy.reset()
    policy.predict(frame, [0.55, 0.0, 0.25, 0.0, 0.085, 0.0], stamp_ns=0)
    obj = np.median([e for _, e in policy.estimates], axis=0)
    still = [obj[0], obj[1], obj[2] + 0.035, 0.0, 0.085, 0.0]
    policy.predict(frame, still, stamp_ns=step)
    after_pause = [2 * 10**9 + k * step for k in range(int(STALL_TIME * 1e9) // step + 2)]
    seen = []
    for stamp in after_pause:
        policy.predict(frame, still, stamp_ns=stamp)
        seen.append(policy.phase)
    assert seen == ['descend' if t - after_pause[0] < STALL_TIME * 1e9 else 'close'
                    for t in after_pause]
    # a stage still going down, at 40 mm/s, is never held up
    falling = [0.10 - 0.002 * k for k in range(len(stamps))]
    going = phases(falling)
    assert all(p == 'descend' for p, dz in zip(going, falling) if dz > 0.03)


def test_a_compliant_stage_is_aimed_past_the_object_by_the_planners_offset():
    obj = np.array([0.55, 0.0, 0.02])
    above = (0.53, 0.0, 0.2, 0.0)
    plain = GraspPlanner(obj, 0.034, 0.052).plan(above, 0.085)
    aimed = GraspPlanner(obj, 0.034, 0.052, aim_offset=(0.01, -0.005)).plan(above, 0.085)
    assert np.allclose(plain.waypoints[0], aimed.waypoints[0])       # from where it is
    assert np.allclose(aimed.waypoints[1:, :2] - plain.waypoints[1:, :2], (0.01, -0.005))
    # the phase still measures the stage against the object itself, not the aim
    at = (0.55, 0.0, 0.016, 0.0)
    assert GraspPlanner(obj, 0.034, 0.052, aim_offset=(0.03, 0.0)).phase(at, 0.085) == 'close'


def test_the_fingers_close_only_at_the_grasp_and_the_grip_floor_never_rises(policy):
    frame, obj = _seen(policy)
    above = [obj[0], obj[1], obj[2] + 0.03, 0.0, 0.085, 0.0]
    descending = policy.predict(frame, above, stamp_ns=100_000_000)
    assert policy.phase == 'descend'
    assert np.all(descending[:, 4] >= 0.085 - 1e-9)    # the chunk's tail does not close
    at_grasp = [obj[0], obj[1], obj[2] - 0.004, 0.0]
    floors = []
    for k, width in enumerate((0.08, 0.07, 0.075, 0.06)):   # 0.075: a stale, wider reading
        chunk = policy.predict(frame, [*at_grasp, width, 0.0], stamp_ns=(2 + k) * 10**8)
        assert policy.phase == 'close'
        floors.append(chunk[0, 4])
    assert np.allclose(floors, [0.074, 0.064, 0.064, 0.054])


def _seen(policy):
    """The nominal scene's frame, and the object the reset policy estimates from clear above."""
    from sim2real_policy.sim.params import SimParams
    from sim2real_policy.sim.robot import GripperSim, HOME

    with GripperSim(SimParams(), start=HOME, settle_s=0.2) as sim:
        frame = sim.render(96, 96)
    policy.calibration = _calibration()
    policy.reset()
    policy.predict(frame, [0.55, 0.0, 0.25, 0.0, 0.085, 0.0], stamp_ns=0)   # clear: seen
    return frame, np.median([e for _, e in policy.estimates], axis=0)


def test_a_grip_that_slips_out_of_the_lift_is_retried_at_once():
    up = (0.55, 0.0, 0.10, 0.0)
    holding = GraspPlanner((0.55, 0.0, 0.02), 0.034, 0.052, previous_phase='lift')
    assert holding.phase(up, 0.050) == 'lift'
    slipped = GraspPlanner((0.55, 0.0, 0.02), 0.034, 0.052, previous_phase='lift', lost=True)
    assert slipped.phase(up, 0.050) == 'regrasp'


def _lifting(policy, held=0.045):
    """The policy lifting a grip ``held`` wide; returns the frame, TCP and next stamp."""
    from sim2real_policy.keypoint_policy import GRIP_TIME

    frame, obj = _seen(policy)
    at_grasp = [obj[0], obj[1], obj[2] - 0.004, 0.0]
    stamp = 10**8
    for width in (0.085, 0.075, 0.07, held + 0.005):
        chunk = policy.predict(frame, [*at_grasp, width, 0.0], stamp_ns=stamp)
        if width == 0.085:     # the fingers go at once to where they may first touch
            assert chunk[0, 4] == pytest.approx(policy.first_contact_width())
        stamp += 10**8
    while policy.phase != 'lift':        # still on the object, pressing
        assert stamp < 10**8 * (5 + 3 * GRIP_TIME * 10)
        policy.predict(frame, [*at_grasp, held, 170.0], stamp_ns=stamp)
        stamp += 5 * 10**7
    return frame, [obj[0], obj[1], obj[2] + 0.03, 0.0], stamp


def test_the_policy_retries_once_the_lifted_fingers_close_on_nothing(policy):
    from sim2real_policy.keypoint_policy import GRIP_EFFORT, GRIP_TIME, SLIP_CLOSE

    step = 5 * 10**7
    n = int(GRIP_TIME * 1e9) // step + 1
    # fingers still pressing on what they hold: the lift goes on
    frame, up, stamp = _lifting(policy)
    assert policy.first_contact_width() == np.inf    # lifted: it may have tipped over
    for k in range(2 * n):
        policy.predict(frame, [*up, 0.045, 170.0], stamp_ns=stamp + k * step)
        assert policy.phase == 'lift'
    # a grip settling, its effort under GRIP_EFFORT: the fingers creep in by less than
    # SLIP_CLOSE over a GRIP_TIME, so something is still between them
    frame, up, stamp = _lifting(policy)
    creep = SLIP_CLOSE / (n + 1)
    for k in range(2 * n):
        policy.predict(frame, [*up, 0.045 - creep * k, GRIP_EFFORT - 1.0],
                       stamp_ns=stamp + k * step)
        assert policy.phase == 'lift'
    # a box turning in the grip: the fingers close in, but press on it all along
    frame, up, stamp = _lifting(policy)
    for k in range(2 * n):
        policy.predict(frame, [*up, 0.045 - 0.001 * k, GRIP_EFFORT + 1.0],
                       stamp_ns=stamp + k * step)
        assert policy.phase == 'lift'
    # empty fingers following the grip floor shut: a re-grasp once a whole GRIP_TIME shows
    # them closing on nothing, long before they are shut below the narrowest object
    frame, up, stamp = _lifting(policy)
    regrasps = policy.regrasps
    phases = []
    for k in range(2 * n):
        policy.predict(frame, [*up, 0.045 - 0.001 * k, GRIP_EFFORT - 1.0],
                       stamp_ns=stamp + k * step)
        phases.append(policy.phase)
    first = phases.index('regrasp')
    assert all(p == 'lift' for p in phases[:first])
    assert step * first >= (GRIP_TIME - 0.05) * 1e9
    assert first <= n and 0.045 - 0.001 * first > 0.034
    assert policy.regrasps == regrasps + 1


@settings(max_examples=200, deadline=None)
@given(st.floats(0.02, 0.07), st.floats(0.0, 1.0), st.floats(0.0, np.pi / 2),
       st.sampled_from(['box', 'round']))
def test_the_first_close_goes_at_once_to_where_an_upright_object_can_be_met(
        policy, widest, share, yaw, shape):
    # The first close jumps to the widest width the fingers can first touch the object at,
    # then follows them at SQUEEZE: never inside an upright object of the widths the policy
    # was trained for (a box met across its diagonal), and a faster close than SQUEEZE's.
    from sim2real_policy.keypoint_policy import SQUEEZE

    face = widest * share
    contact = face * (abs(np.cos(yaw)) + abs(np.sin(yaw))) if shape == 'box' else face
    trained = policy.max_width
    try:
        policy.reset()
        policy.max_width = widest
        assert policy.first_contact_width() >= contact
        # once lifted or re-grasped it may lie on its side (longer than it is wide): no jump
        for state in ('lifted', 'regrasps'):
            policy.reset()
            setattr(policy, state, 1)
            assert policy.first_contact_width() >= 0.085 - SQUEEZE
    finally:
        policy.max_width = trained
        policy.reset()


def test_after_a_regrasp_the_close_follows_the_fingers_from_the_start(policy):
    from sim2real_policy.keypoint_policy import SQUEEZE

    firsts = []
    for regrasps in (0, 1):
        frame, obj = _seen(policy)
        policy.regrasps = regrasps
        chunk = policy.predict(frame, [obj[0], obj[1], obj[2] - 0.004, 0.0, 0.085, 0.0],
                               stamp_ns=10**8)
        assert policy.phase == 'close'
        firsts.append(chunk[0, 4])
    # the first close jumps past SQUEEZE's step, never inside the widest upright box
    assert policy.max_width * np.sqrt(2.0) <= firsts[0] < 0.085 - SQUEEZE
    assert firsts[1] == pytest.approx(0.085 - SQUEEZE)


def test_the_grip_floor_holds_while_the_fingers_press_on_something(policy):
    # Fingers give a little under load; a floor that followed them down would tighten the
    # grip until the gripper's full force (a GRIPPER_FAULT past max_gripper_effort). While
    # they grip at HOLD_EFFORT it holds; under it (a box's corners, the object turned in the
    # grip) it falls on.
    from sim2real_policy.keypoint_policy import HOLD_EFFORT

    frame, obj = _seen(policy)
    at_grasp = [obj[0], obj[1], obj[2] - 0.004, 0.0]
    # (measured width, effort): free; on a box's corners (it turns square under a closing
    # floor); gripping at HOLD_EFFORT and giving under it; pressing on nothing again
    readings = [(0.060, -10.0), (0.058, 60.0), (0.056, HOLD_EFFORT), (0.0555, 170.0),
                (0.055, 200.0), (0.054, 5.0)]
    floors = []
    for k, (width, effort) in enumerate(readings):
        chunk = policy.predict(frame, [*at_grasp, width, effort], stamp_ns=(1 + k) * 10**8)
        floors.append(round(float(chunk[0, 4]), 6))
    assert floors == [0.054, 0.052, 0.052, 0.052, 0.052, 0.048]


def test_fingers_stopped_wider_than_any_object_lift_only_on_a_firm_grip(policy):
    # A box met across its corners stops the fingers wider than any object's width; lifted
    # at a light press (60 N, measured) it turned out of them. It is a grip at HOLD_EFFORT.
    from sim2real_policy.keypoint_policy import GRIP_EFFORT, GRIP_TIME, HOLD_EFFORT

    frame, obj = _seen(policy)
    at_grasp = [obj[0], obj[1], obj[2] - 0.004, 0.0]
    step = 5 * 10**7
    stamps = iter(range(step, 10**10, step))
    for width in (0.085, 0.075, 0.067):
        policy.predict(frame, [*at_grasp, width, 0.0], stamp_ns=next(stamps))
    for _ in range(3 * int(GRIP_TIME * 1e9) // step):
        policy.predict(frame, [*at_grasp, 0.061, 60.0], stamp_ns=next(stamps))
        assert policy.phase == 'close'
    phases = [policy.predict(frame, [*at_grasp, 0.061, HOLD_EFFORT], stamp_ns=next(stamps))
              is not None and policy.phase for _ in range(int(GRIP_TIME * 1e9) // step + 1)]
    assert phases[-1] == 'lift'
    # lifting, a lighter reading (still pressing: GRIP_EFFORT and up) keeps the grip: the
    # fingers must not open under a box in the air
    up = [at_grasp[0], at_grasp[1], at_grasp[2] + 0.02, 0.0]
    for effort in (HOLD_EFFORT - 1.0, GRIP_EFFORT, HOLD_EFFORT):
        chunk = policy.predict(frame, [*up, 0.061, effort], stamp_ns=next(stamps))
        assert policy.phase == 'lift'
        assert np.all(chunk[:, 4] < 0.061)
    # nor when the box squares up in the grip: the fingers close in, pressing all along but
    # for one light reading
    for k in range(1, 12):
        effort = GRIP_EFFORT - 20.0 if k == 2 else GRIP_EFFORT + 10.0   # 2: still wide
        chunk = policy.predict(frame, [*up, 0.061 - 0.001 * k, effort], stamp_ns=next(stamps))
        assert policy.phase == 'lift'
        assert np.all(chunk[:, 4] < 0.061 - 0.001 * k)


@pytest.mark.parametrize('period', [0.05, 0.35, 0.9])
def test_a_grip_is_seen_and_lifted_however_far_apart_the_inferences_are(policy, period):
    # Up to the supervisor's inference_deadline (1 s) a slow policy is not a degraded mode,
    # so it must still lift what it holds: a window trimmed to GRIP_TIME held one reading
    # when inferences came more than GRIP_TIME apart, and no grip was ever seen.

    frame, obj = _seen(policy)
    at_grasp = [obj[0], obj[1], obj[2] - 0.004, 0.0]
    step = int(period * 1e9)
    phases = [policy.predict(frame, [*at_grasp, 0.045, 170.0], stamp_ns=k * step)
              is not None and policy.phase for k in range(1, 3 + int(0.6 / period))]
    assert phases[0] == 'close' and phases[-1] == 'lift'


def test_slow_inferences_tell_a_settling_grip_from_empty_fingers(policy):
    # Inferences 0.9 s apart (inside the supervisor's 1 s deadline): the window spans 0.9 s,
    # so a grip creeping in at 4 mm/s under GRIP_EFFORT (3.6 mm between two readings) is no
    # slip, and empty fingers closing at 13 mm/s are one.
    from sim2real_policy.keypoint_policy import GRIP_EFFORT

    step = 9 * 10**8
    for speed, slipped in ((0.004, False), (0.013, True)):
        frame, up, stamp = _lifting(policy, held=0.055)
        phases = []
        for k in (1, 2):     # wider than the narrowest object still: only the rate tells
            width = 0.055 - speed * 0.9 * k
            assert width > policy.min_width - 0.008
            policy.predict(frame, [*up, width, GRIP_EFFORT - 1.0], stamp_ns=stamp + k * step)
            phases.append(policy.phase)
        assert ('regrasp' in phases) == slipped, (speed, phases)
