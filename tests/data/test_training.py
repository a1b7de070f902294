"""mvvton.data.training: the resumable sampler of the trainers."""

from mvvton.data.training import EpochSeededSampler


def test_sampler_order_depends_on_seed_and_epoch_only():
    a, b = EpochSeededSampler(10, seed=3), EpochSeededSampler(10, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    b.set_epoch(3)
    assert list(a) != list(b)
