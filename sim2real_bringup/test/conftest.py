"""Offscreen rendering for the simulator tests, chosen before any test imports mujoco."""
import os

import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')


def _record_run(run, first_fails: bool):
    from sim2real_bringup.bag import BagRecorder
    from sim2real_bringup.config import load_yaml
    from sim2real_bringup.pipeline import Faults, Pipeline, PipelineConfig
    from sim2real_bringup.topics import qos_map
    from sim2real_policy.sim.randomization import Randomizer

    randomizer = Randomizer(load_yaml('randomization.yaml'), 'none')
    pipe = Pipeline(PipelineConfig.load(), lambda i: randomizer.sample(40 + i), policy='expert',
                    faults=Faults(grasp_offset=(0.06, 0.0) if first_fails else None))

    def misjudge_only_the_first(result):
        pipe.faults.grasp_offset = None
        return result

    pipe.result_hooks.append(misjudge_only_the_first)
    with BagRecorder(run / 'bag', qos=qos_map()).attach(pipe.graph):
        records = pipe.run_episodes(2)
    pipe.close()
    assert [r.success for r in records] == [not first_fails, True], records
    return run


@pytest.fixture(scope='session')
def short_run(tmp_path_factory):
    """A two-episode in-process run folder (bag/ only): one failed grasp, then a success.

    The scripted expert misjudges the object by 6 cm in the first episode (a policy failure,
    injected as the drills do), and grasps it in the second.
    """
    return _record_run(tmp_path_factory.mktemp('runs') / 'demo-short', first_fails=True)


@pytest.fixture(scope='session')
def short_run_ok(tmp_path_factory):
    """The same two episodes, both grasped (the expert does not misjudge)."""
    return _record_run(tmp_path_factory.mktemp('runs') / 'demo-ok', first_fails=False)
