"""The budget plan: which ladder a budget affords, and what a first rung costs."""

from __future__ import annotations

import pytest

from search.plan import MIN_TOP, CostModel, climb_seconds, ladder_options, make_plan

PLAN = {"spent_s": 0.0, "overhead_s": 5.0, "eta": 3, "max_epochs": 9}


def test_a_large_budget_gets_the_full_ladder_with_enough_candidates_at_the_top() -> None:
    plan = make_plan(budget_s=20_000, epoch_s=10.0, **PLAN)
    assert plan.rungs == (1, 3, 9)
    assert plan.expected[-1] >= MIN_TOP and plan.expected[0] > plan.expected[1] > plan.expected[2]


def test_a_budget_short_of_the_full_ladder_skips_the_middle_rung_before_it_shortens_the_top() -> None:
    full = make_plan(budget_s=500, epoch_s=10.0, rungs=(1, 3, 9), **PLAN)
    assert full.expected[-1] < MIN_TOP, "the full ladder does not fit"
    deep = make_plan(budget_s=500, epoch_s=10.0, **PLAN)
    assert deep.rungs == (1, 9) and deep.expected[-1] >= MIN_TOP
    assert deep.expected[0] < full.expected[0], "depth is bought with fewer first looks"


def test_a_small_budget_shortens_the_top_and_keeps_the_one_epoch_rung() -> None:
    medium = make_plan(budget_s=250, epoch_s=10.0, **PLAN)
    tiny = make_plan(budget_s=60, epoch_s=10.0, **PLAN)
    assert medium.rungs == (1, 3)
    assert tiny.rungs == (1,)


def test_a_budget_too_small_for_two_at_any_top_buys_depth_for_one_candidate() -> None:
    two_at_three = make_plan(budget_s=140, epoch_s=10.0, rungs=(1, 3), **PLAN)
    assert two_at_three.expected[-1] < MIN_TOP, "no ladder brings two candidates to its top"
    plan = make_plan(budget_s=140, epoch_s=10.0, **PLAN)
    assert plan.rungs == (1, 9) and 1.0 <= plan.expected[-1] < MIN_TOP


def test_ladder_options_prefer_depth_then_more_rungs() -> None:
    assert ladder_options(3, 9) == [(1, 3, 9), (1, 9), (1, 3), (1,)]
    assert ladder_options(2, 8)[:3] == [(1, 2, 4, 8), (1, 8), (1, 2, 4)]
    assert ladder_options(3, 1) == [(1,)]


def test_the_fine_tune_after_pruning_is_paid_by_the_first_rung() -> None:
    plain = make_plan(budget_s=3_000, epoch_s=10.0, rungs=(1, 3), **PLAN)
    pruning = make_plan(budget_s=3_000, epoch_s=10.0, rungs=(1, 3), first_extra_epochs=1.0, **PLAN)
    assert pruning.expected[0] < 0.8 * plain.expected[0]
    started, promoted = pruning.expected[0], pruning.expected[1]
    spent = started * (2 * 10.0 + 5.0) + promoted * (2 * 10.0 + 5.0)
    assert spent == pytest.approx(3_000, rel=0.01), "the plan spends the budget, fine-tune included"


def test_a_cap_on_candidates_limits_the_first_rung() -> None:
    plan = make_plan(budget_s=20_000, epoch_s=1.0, cap=12, **PLAN)
    assert plan.expected[0] == 12 and plan.cap == 12
    assert "at most 12 candidates" in plan.describe()


def test_the_cost_model_learns_rates_overheads_and_first_rung_fine_tunes() -> None:
    cost = CostModel(rate=0.0, images=100)
    assert not cost.observed and cost.first_rung_extra_epochs == 0.0
    cost.observe(macs=1e6, epochs=2, train_s=20.0, other_s=3.0, first_rung_extra_epochs=1)
    cost.observe(macs=2e6, epochs=1, train_s=20.0, other_s=5.0, first_rung_extra_epochs=0)
    cost.observe(macs=1e6, epochs=2, train_s=20.0, other_s=4.0)
    assert cost.observed
    assert cost.epoch_seconds(1e6) == pytest.approx(10.0)
    assert cost.job_seconds(2e6, 3) == pytest.approx(3 * 20.0 + 4.0)
    assert cost.first_rung_extra_epochs == pytest.approx(0.5), "later rungs do not count"


def test_a_typical_epoch_is_the_median_of_the_jobs_own_epochs_not_a_product_of_medians() -> None:
    cost = CostModel(rate=0.0, images=100)
    # three architectures whose per-MAC speeds differ 10x: the rate's median times the median MACs
    # would price a typical epoch at 1 s, while the jobs took 10, 12 and 20 s per epoch
    cost.observe(macs=1e5, epochs=1, train_s=10.0, other_s=1.0, first_rung_extra_epochs=0)
    cost.observe(macs=1e6, epochs=1, train_s=12.0, other_s=1.0, first_rung_extra_epochs=0)
    cost.observe(macs=1e7, epochs=2, train_s=40.0, other_s=1.0, first_rung_extra_epochs=0)
    assert cost.typical_epoch_seconds() == pytest.approx(12.0)


def test_candidates_stopped_untrained_are_paid_by_the_first_rungs() -> None:
    cost = CostModel(rate=0.0, images=100)
    cost.observe_untrained(30.0)
    assert cost.untrained_seconds_per_candidate() == 0.0, "nothing to divide by before a first rung"
    cost.observe(macs=1e6, epochs=1, train_s=10.0, other_s=1.0, first_rung_extra_epochs=0)
    cost.observe(macs=1e6, epochs=1, train_s=10.0, other_s=1.0, first_rung_extra_epochs=0)
    cost.observe(macs=1e6, epochs=2, train_s=20.0, other_s=1.0)
    assert cost.untrained_seconds_per_candidate() == pytest.approx(15.0), "later rungs are not candidates"
    free = make_plan(budget_s=600, epoch_s=10.0, rungs=(1, 3), **PLAN)
    paying = make_plan(budget_s=600, epoch_s=10.0, rungs=(1, 3), first_extra_s=15.0, **PLAN)
    assert paying.expected[0] < free.expected[0]


def test_a_large_training_split_gets_a_first_look_at_one_eta_th_of_an_epoch() -> None:
    from search.plan import FIRST_LOOK_IMAGES, first_look_share

    assert first_look_share(3 * FIRST_LOOK_IMAGES - 1, 3) == 1.0, "the embedded default's 1,200 images: whole epochs"
    assert first_look_share(3 * FIRST_LOOK_IMAGES, 3) == pytest.approx(1 / 3)
    assert first_look_share(4 * FIRST_LOOK_IMAGES, 4) == pytest.approx(1 / 4)


def test_a_first_look_costs_its_share_and_the_next_rung_pays_all_its_epochs() -> None:
    from search.promotion import expected_promotions

    budget, epoch_s = 400.0, 10.0
    whole = make_plan(budget_s=budget, epoch_s=epoch_s, rungs=(1, 3), **{**PLAN, "overhead_s": 0.0})
    look = make_plan(budget_s=budget, epoch_s=epoch_s, rungs=(1, 3), first_look=1 / 3, **{**PLAN, "overhead_s": 0.0})
    started = look.expected[0]
    spent = started * epoch_s / 3 + expected_promotions(started, 3) * 3 * epoch_s
    assert budget - 3 * epoch_s < spent <= budget + 1e-6, "1/3 epoch per look, then 3 whole epochs for the promoted"
    assert look.expected[0] > 1.2 * whole.expected[0], "more candidates get a first look in the same budget"
    assert "rungs 1/3 → 3 epochs" in look.describe() and "at 1/3 epoch," in look.describe()
    assert "rungs 1 → 3 epochs" in whole.describe()


def test_a_start_point_sure_to_climb_keeps_the_deepest_top_its_climb_affords() -> None:
    plain = make_plan(budget_s=250, epoch_s=10.0, **PLAN)
    assert plain.rungs == (1, 3), "without it, two candidates at 3 epochs beat one at 9"
    with_start = make_plan(budget_s=250, epoch_s=10.0, sure_climbers_epoch_s=(10.0,), **PLAN)
    assert with_start.rungs == (1, 9), "the start point's climb is affordable, so the top stays 9 epochs"
    assert with_start.expected[-1] >= MIN_TOP, "the start point counts at the top"
    started, promoted = with_start.expected[0], with_start.expected[1] - 1
    climb = 8 * 10.0 + 5.0
    assert started * (10.0 + 5.0) + promoted * climb + climb <= 250, "its climb is paid before the rest is divided"
    same_ladder = make_plan(budget_s=250, epoch_s=10.0, rungs=(1, 9), **PLAN)
    assert started < same_ladder.expected[0], "the budget it reserves starts fewer new candidates"


def test_a_start_point_whose_climb_is_unaffordable_does_not_fix_the_top() -> None:
    slow = make_plan(budget_s=250, epoch_s=10.0, sure_climbers_epoch_s=(40.0,), **PLAN)
    assert slow.rungs == (1, 3) and slow.expected[-1] >= MIN_TOP, "8 epochs of 40 s do not fit; 2 of 40 s do"
    none = make_plan(budget_s=250, epoch_s=10.0, sure_climbers_epoch_s=(400.0,), **PLAN)
    assert none.rungs == make_plan(budget_s=250, epoch_s=10.0, **PLAN).rungs, "no climb fits: planned as without it"


def test_the_start_points_climb_is_one_job_straight_to_the_top() -> None:
    assert climb_seconds((1, 3, 9), 10.0, 5.0, 1.0, straight=True) == climb_seconds((1, 9), 10.0, 5.0, 1.0) == 85.0
    assert climb_seconds((1, 3, 9), 10.0, 5.0, 1.0) == 90.0, "a candidate ranked at every rung pays a job per rung"
    plan = make_plan(budget_s=100, epoch_s=10.0, sure_climbers_epoch_s=(10.0,), **PLAN)
    assert plan.rungs[-1] == 9 and plan.expected[-1] >= 1, "85 s of 100 s: its 9-epoch climb fits"
    assert all(n < 1 for n in plan.expected[1:-1]), "it skips the middle rung: nothing else is expected there"
