"""BucketBatchSampler: one bucket per batch, determinism, rank sharding, resume."""

import itertools

import pytest

from tenku.data.buckets import BucketBatchSampler, bucket_counts

# 3 buckets of uneven sizes, plus skipped items (None).
BUCKETS = [(9, 32, 32)] * 23 + [(9, 32, 48)] * 17 + [(1, 32, 32)] * 11 + [None] * 5
BUCKETS = [BUCKETS[(5 * i) % len(BUCKETS)] for i in range(len(BUCKETS))]  # interleave (5 is coprime to 56)


def epoch(sampler, e=0):
    sampler.set_epoch(e)
    return list(sampler)


def test_every_batch_is_one_bucket_and_full():
    s = BucketBatchSampler(BUCKETS, batch_size=4, seed=0)
    batches = epoch(s)
    assert len(batches) == len(s) == 23 // 4 + 17 // 4 + 11 // 4
    for b in batches:
        assert len(b) == 4 and len({BUCKETS[i] for i in b}) == 1 and None not in {BUCKETS[i] for i in b}
    flat = list(itertools.chain(*batches))
    assert len(flat) == len(set(flat))  # no index twice


def test_deterministic_by_seed_and_epoch():
    a, b, c = (BucketBatchSampler(BUCKETS, 4, seed=s) for s in (0, 0, 1))
    assert epoch(a) == epoch(b)
    assert epoch(a) != epoch(c)
    assert epoch(a, 0) != epoch(a, 1)
    assert epoch(a, 1) == epoch(b, 1)


def test_drop_last_false_covers_everything():
    s = BucketBatchSampler(BUCKETS, batch_size=4, seed=3, drop_last=False)
    flat = sorted(itertools.chain(*epoch(s)))
    assert flat == [i for i, b in enumerate(BUCKETS) if b is not None]


@pytest.mark.parametrize("drop_last", [True, False])
def test_ranks_get_disjoint_batches_of_equal_count(drop_last):
    world = 3
    ranks = [BucketBatchSampler(BUCKETS, 4, seed=5, rank=r, world_size=world, drop_last=drop_last) for r in range(world)]
    per_rank = [epoch(s, 2) for s in ranks]
    assert len({len(p) for p in per_rank}) == 1 and len(per_rank[0]) == len(ranks[0]) > 0
    if drop_last:  # disjoint; with drop_last=False a few batches are repeated to even out the counts
        flat = [i for p in per_rank for b in p for i in b]
        assert len(flat) == len(set(flat))
    else:
        covered = {i for p in per_rank for b in p for i in b}
        assert covered == {i for i, b in enumerate(BUCKETS) if b is not None}
    # Sharding splits the one global order: the ranks together see what one process sees, in slices.
    single = BucketBatchSampler(BUCKETS, 4, seed=5, drop_last=drop_last)
    glob = epoch(single, 2)
    glob = glob + glob  # drop_last=False pads with the first batches again
    for r in range(world):
        assert per_rank[r] == glob[: len(per_rank[0]) * world][r::world]


@pytest.mark.parametrize("world_size", [1, 2])
def test_resume_mid_epoch_equals_uninterrupted(world_size):
    def make():
        return BucketBatchSampler(BUCKETS, 3, seed=7, rank=world_size - 1, world_size=world_size)

    full = make()
    expected = epoch(full, 4) + epoch(full, 5)
    run = make()
    run.set_epoch(4)
    it = iter(run)
    taken = [next(it) for _ in range(5)]
    state = run.state_dict()
    assert state["epoch"] == 4 and state["position"] == 5

    resumed = make()
    resumed.load_state_dict(state)
    resumed.set_epoch(4)  # a loop that sets the current epoch again must not lose its place
    rest = list(resumed)
    resumed.set_epoch(5)
    assert taken + rest + list(resumed) == expected


def test_resume_at_epoch_end_goes_to_next_epoch():
    s = BucketBatchSampler(BUCKETS, 4, seed=1)
    first = epoch(s, 0)
    state = s.state_dict()
    assert (state["epoch"], state["position"]) == (1, 0) and len(first) == len(s)
    r = BucketBatchSampler(BUCKETS, 4, seed=1)
    r.load_state_dict(state)
    assert list(r) == epoch(BucketBatchSampler(BUCKETS, 4, seed=1), 1) and r.epoch == 1
    # Iterating a finished epoch again without set_epoch moves on to the next one; set_epoch(e) restarts e.
    assert list(r) == epoch(BucketBatchSampler(BUCKETS, 4, seed=1), 2)
    assert epoch(r, 2) == epoch(BucketBatchSampler(BUCKETS, 4, seed=1), 2)


def test_state_with_consumed_count_and_errors():
    s = BucketBatchSampler(BUCKETS, 4, seed=2)
    batches = epoch(s, 0)  # as if a prefetching DataLoader ran ahead to the end
    state = s.state_dict(consumed=2)
    r = BucketBatchSampler(BUCKETS, 4, seed=2)
    r.load_state_dict(state)
    assert list(r) == batches[2:]
    with pytest.raises(ValueError, match="seed 2"):
        BucketBatchSampler(BUCKETS, 4, seed=9).load_state_dict(state)
    with pytest.raises(ValueError, match="rank"):
        BucketBatchSampler(BUCKETS, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler(BUCKETS, 0)


def test_world_size_change_on_resume_maps_position():
    one = BucketBatchSampler(BUCKETS, 2, seed=4)
    one.set_epoch(0)
    it = iter(one)
    for _ in range(6):
        next(it)
    two = BucketBatchSampler(BUCKETS, 2, seed=4, rank=0, world_size=2)
    two.load_state_dict(one.state_dict())
    assert two.position == 3 and list(two) == epoch(BucketBatchSampler(BUCKETS, 2, seed=4, world_size=2), 0)[3:]


def test_bucket_counts():
    assert bucket_counts(BUCKETS) == {(1, 32, 32): 11, (9, 32, 32): 23, (9, 32, 48): 17}  # None not counted
    assert list(bucket_counts([(9, 8, 8), None, (1, 8, 8)])) == [(1, 8, 8), (9, 8, 8)] and bucket_counts([None]) == {}
