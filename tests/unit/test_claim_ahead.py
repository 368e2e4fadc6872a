"""ClaimAhead: how many tasks a worker holds beyond its free children."""

from taskmill.worker.claim_ahead import MAX_AHEAD_PER_CHILD, ClaimAhead


def test_a_fixed_prefetch_is_used_as_given_whatever_tasks_take() -> None:
    ahead = ClaimAhead(concurrency=4, fixed=3)
    ahead.observe(0.0001)
    assert ahead.target == 3


def test_before_any_task_ran_the_adaptive_target_is_one_per_child() -> None:
    assert ClaimAhead(concurrency=4).target == 4


def test_long_tasks_are_claimed_one_per_child() -> None:
    ahead = ClaimAhead(concurrency=2)
    ahead.observe(30.0)
    assert ahead.target == 2


def test_short_tasks_are_claimed_by_the_tenth_of_a_second_up_to_the_cap() -> None:
    ahead = ClaimAhead(concurrency=2)
    ahead.observe(0.01)  # ten per 0.1 s
    assert ahead.target == 20
    tiny = ClaimAhead(concurrency=2)
    tiny.observe(0.00001)
    assert tiny.target == 2 * MAX_AHEAD_PER_CHILD


def test_the_mean_follows_a_change_in_task_durations_gradually() -> None:
    ahead = ClaimAhead(concurrency=1)
    ahead.observe(0.001)
    for _ in range(50):
        ahead.observe(1.0)
    assert ahead.target == 1


def test_a_refill_waits_until_half_of_what_is_held_was_used() -> None:
    ahead = ClaimAhead(concurrency=2, fixed=10)
    assert not ahead.should_refill(6)
    assert ahead.should_refill(5)
    assert ahead.should_refill(0)
