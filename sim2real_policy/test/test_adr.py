"""ADR on a task whose achievable range is known: ranges grow toward it, stop, and shrink."""
import numpy as np
import pytest

from sim2real_policy.sim.adr import ADR, ADRSettings, WholeRangeADR

SETTINGS = ADRSettings(step=0.05, buffer_size=20, low_threshold=0.5, high_threshold=0.8,
                       boundary_probability=1.0)
NOMINAL = {'friction': 1.0, 'delay': 0.1}
LIMITS = {'friction': (0.0, 2.0), 'delay': (0.0, 0.5)}


def solvable(achievable):
    """A task that succeeds (with 5% noise) iff every parameter is inside `achievable`."""
    def run(values, rng):
        inside = all(lo <= values[n] <= hi for n, (lo, hi) in achievable.items())
        return inside if rng.random() > 0.05 else not inside
    return run


def train(adr, task, episodes, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        values, boundary = adr.sample(rng)
        adr.report(boundary, task(values, rng))


def test_ranges_grow_toward_the_achievable_range_and_stop():
    achievable = {'friction': (0.6, 1.5), 'delay': (0.0, 0.3)}
    adr = ADR(NOMINAL, LIMITS, SETTINGS)
    train(adr, solvable(achievable), 6000)
    low, high = adr.ranges['friction']
    # one step (0.1) of slack around the achievable edges: it stops there, not beyond
    assert 0.5 <= low <= 0.75 and 1.35 <= high <= 1.6
    low, high = adr.ranges['delay']
    assert low == 0.0 and 0.25 <= high <= 0.35
    before = {k: list(v) for k, v in adr.ranges.items()}
    train(adr, solvable(achievable), 3000, seed=1)
    for name in before:  # stable: at most one step of dithering at the edges
        assert np.allclose(adr.ranges[name], before[name], atol=0.11)


def test_ranges_shrink_when_the_task_gets_harder():
    adr = ADR(NOMINAL, LIMITS, SETTINGS)
    train(adr, solvable({'friction': (0.6, 1.5), 'delay': (0.0, 0.3)}), 6000)
    train(adr, solvable({'friction': (0.9, 1.1), 'delay': (0.05, 0.15)}), 6000, seed=2)
    low, high = adr.ranges['friction']
    assert 0.8 <= low <= 1.0 and 1.0 <= high <= 1.2 + 1e-9
    assert any(u['to'] > u['from'] and u['boundary'] == 'low' for u in adr.updates)


def test_ranges_never_leave_limits_or_cross_nominal():
    adr = ADR(NOMINAL, LIMITS, SETTINGS)
    train(adr, lambda values, rng: True, 8000)
    assert adr.ranges == {'friction': [0.0, 2.0], 'delay': [0.0, 0.5]}
    train(adr, lambda values, rng: False, 8000)
    assert adr.ranges == {'friction': [1.0, 1.0], 'delay': [0.1, 0.1]}


def test_state_saves_and_resumes(tmp_path):
    adr = ADR(NOMINAL, LIMITS, SETTINGS)
    train(adr, solvable({'friction': (0.6, 1.5), 'delay': (0.0, 0.3)}), 1500)
    adr.save(tmp_path / 'adr.json')
    again = ADR.load(tmp_path / 'adr.json')
    assert again.ranges == adr.ranges and again.updates == adr.updates
    assert again.buffers == adr.buffers and again.episodes == adr.episodes


@pytest.mark.parametrize('text', ['{"bad": ', '[]', '{"kind": "per_boundary"}',
                                  '{"kind": "per_boundary", "nominal": {}, "limits": 3}',
                                  None])
def test_a_bad_state_file_is_one_line_naming_it(tmp_path, text):
    path = tmp_path / 'adr.json'
    if text is None:
        path.mkdir()          # a directory where the file should be
    else:
        path.write_text(text)
    with pytest.raises(ValueError, match=str(path)) as raised:
        ADR.load(path)
    assert '\n' not in str(raised.value)


def test_whole_range_variant_scales_every_range_together():
    adr = WholeRangeADR(NOMINAL, LIMITS, SETTINGS)
    train(adr, solvable({'friction': (0.5, 1.5), 'delay': (0.0, 0.3)}), 4000)
    # friction reaches 0.5..1.5 at scale 0.5; delay's high edge 0.3 at scale 0.5
    assert 0.35 <= adr.scale <= 0.65
    assert adr.ranges['friction'][0] == pytest.approx(1.0 - adr.scale)


@pytest.mark.parametrize('kwargs, message', [
    ({'step': 0.0}, 'step'), ({'buffer_size': 0}, 'buffer_size'),
    ({'low_threshold': 0.9, 'high_threshold': 0.8}, 'thresholds'),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ADRSettings(**kwargs)


def test_limits_must_contain_nominal():
    with pytest.raises(ValueError, match='must contain its nominal'):
        ADR({'friction': 3.0}, {'friction': (0.0, 2.0)})
