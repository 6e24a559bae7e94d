"""Episodes on a simulated cell: the judge's verdicts and the next object on the same cell."""
from dataclasses import fields
from pathlib import Path

from sim2real_policy.episodes import EpisodeJudge, next_object, stage_pose
from sim2real_policy.sim.randomization import scene_params
from sim2real_policy.sim.robot import GripperSim, HOME
from sim2real_safety.node_interface import NS

RANGES = str(Path(__file__).resolve().parents[2] / 'config' / 'randomization.yaml')
OBJECT_FIELDS = {'object_shape', 'object_size', 'object_height', 'object_mass',
                 'object_friction', 'object_x', 'object_y', 'object_yaw', 'object_rgb', 'seed'}


def test_the_next_object_lies_on_the_same_cell():
    """Camera, table, delay and physics stay what commissioning measured; the object is new."""
    cell = scene_params(RANGES, 'heavy', 7)
    for seed in range(8, 20):
        drawn = scene_params(RANGES, 'heavy', seed)
        episode = next_object(cell, drawn)
        for f in fields(episode):
            expected = drawn if f.name in OBJECT_FIELDS else cell
            assert getattr(episode, f.name) == getattr(expected, f.name), f.name
    # and something did change: the object's place
    assert next_object(cell, scene_params(RANGES, 'heavy', 8)).object_x != cell.object_x


def test_an_untouched_object_times_out_and_the_next_episode_starts_afresh():
    """A success needs a grasp: the in-place episodes test of the pipeline shows it."""
    judge = EpisodeJudge(episode_timeout=2.0, success_hold_time=0.5)
    sim = GripperSim(scene_params('', 'none', 0))
    try:
        judge.begin(0)
        assert judge.episode == 0
        now = 0
        verdicts = []
        while now < 3 * NS:
            sim.step(0.01)
            now += 10_000_000
            verdicts.append(judge.verdict(sim, now))
        # nothing lifted: no verdict until the timeout, then a failure
        first = next(i for i, v in enumerate(verdicts) if v is not None)
        assert verdicts[first] is False and abs((first + 1) * 0.01 - 2.0) < 1e-9
        judge.begin(now)
        assert judge.episode == 1 and judge.verdict(sim, now + 1) is None
        pose = stage_pose(sim)
        assert len(pose) == 5 and abs(pose[2] - HOME[2]) < 0.01
    finally:
        sim.close()
