"""Wall-clock is the budget: how many candidates to train at which fidelity, and what a job costs.

The plan is asynchronous successive halving (η = 3 by default) over rungs of training epochs
that rise geometrically to :data:`search.config.MAX_EPOCHS` (1 → 3 → 9). A candidate evaluated at
rung ``r`` continues only if it is in the top 1/η there
(:func:`search.promotion.expected_promotions` gives how many continue on average), so the plan
finds how many candidates the budget can start when each rung costs its new epochs plus a job's
overhead. It prefers the deepest top rung the budget affords while still bringing about
:data:`MIN_TOP` candidates there: the full ladder 1 → 3 → 9, else 1 → 9 (the middle rung
skipped: fewer candidates, the same depth), else 1 → 3. A budget that brings none of them to
:data:`MIN_TOP` still buys depth for one candidate (the deepest ladder with about one at the top)
before it falls back to 1 epoch alone. A candidate sure to reach the top (a space's start point,
promoted whatever its rank) fixes the top at the deepest its climb affords; its climb (straight
from its first rung to the top, in one job) is paid before the rest of the budget is divided, and
it counts towards :data:`MIN_TOP`.

On a large training split (:func:`first_look_share`) the first rung is a *first look*: the
ladder keeps its epochs, but rung 0 trains 1/η of an epoch's steps (its fine-tune after pruning
too), so η candidates are ranked and the first trial is told within a small share of the budget;
a promoted candidate then trains all epochs of its next rung from that checkpoint.

Costs come from a :class:`CostModel` fitted on every finished rung of the search itself (nothing
is guessed before the first rungs are timed): the typical epoch is the median of the timed jobs'
own seconds per epoch, plus a per-job overhead (screening, export, quantization, evaluation). A
first rung also pays the fine-tune epochs after pruning (pruning happens once, after rung 0) and
its share of the candidates stopped untrained (screened out, or too costly for the budget): the
model learns both and the plan counts them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from search.attrs import ladder_label, rung_label
from search.promotion import expected_promotions

MIN_TOP = 2
"""Candidates the plan wants at the top rung (the front is made of them). With 3, the default
run on 2 cores (then 10 minutes) planned one epoch for everything (best test accuracy 0.49); with 2 it plans
1 → 3 and the front is trained three times as long. When no ladder reaches it, one candidate at
the deepest affordable top is preferred to none: a model trained 8 epochs in a 6-minute budget
reached 0.92 test accuracy where one-epoch searches of the same budget found at most 0.54."""
DEFAULT_OVERHEAD_S = 4.0
"""Per-job cost besides training before any job has been timed."""
FIRST_LOOK_IMAGES = 1000
"""Training images a first look sees at least. A training split of at least η times as many
makes the first rung a look at 1/η of an epoch: on 3,500 real-size 200-px JPEGs one epoch of a first
rung took 51-91 s, so the η first rungs that must be ranked before any trial is told cost more
than 10 % of a 25-minute budget."""


def first_look_share(train_images: int, eta: int) -> float:
    """Share of an epoch the first rung trains: ``1/eta`` when the training split holds at least
    ``eta`` x :data:`FIRST_LOOK_IMAGES` images, else 1 (a whole epoch)."""
    return 1.0 / eta if train_images >= eta * FIRST_LOOK_IMAGES else 1.0


@dataclass
class CostModel:
    """Seconds a rung job costs, learned as the search runs.

    Invariants: ``rate >= 0`` (0 until a job was timed, :attr:`observed` says which); estimates
    are never negative.

    Attributes:
        rate: Training seconds per (MAC x image): prices a candidate by its MACs before it was
            timed itself.
        images: Training images per epoch.
        overhead_s: Median non-training seconds of a job.
        first_rung_extra_epochs: Mean fine-tune epochs (after pruning) of the first-rung jobs
            timed so far; 0 before any.
    """

    rate: float
    images: int
    overhead_s: float = DEFAULT_OVERHEAD_S
    first_rung_extra_epochs: float = 0.0
    _extra_epochs: list[float] = field(default_factory=list)
    _rates: list[float] = field(default_factory=list)
    _overheads: list[float] = field(default_factory=list)
    _epoch_s: list[float] = field(default_factory=list)
    _untrained_s: list[float] = field(default_factory=list)
    _first_rungs: int = 0

    @property
    def observed(self) -> bool:
        """True once a finished job has been timed."""
        return bool(self._rates)

    def typical_epoch_seconds(self) -> float:
        """Median seconds per training epoch of the jobs timed so far (0 before any).

        The median of each job's own figure, not the rate's median times the median MACs:
        per-MAC speed differs several-fold between architectures (an LCNet ×0.35 trains far
        slower per MAC than a MobileNetV2), and that product once priced a typical epoch at
        2 s when the jobs took 7–27 s, so the plan chose a ladder no candidate could climb.
        """
        return statistics.median(self._epoch_s) if self._epoch_s else 0.0

    def untrained_seconds_per_candidate(self) -> float:
        """Seconds spent on candidates stopped untrained, per candidate that trained a first rung.

        A search pays them on top of its first rungs (screening, the cost probe's steps); 0 until
        a first rung was timed.
        """
        return sum(self._untrained_s) / self._first_rungs if self._first_rungs else 0.0

    def observe_untrained(self, seconds: float) -> None:
        """Learn from a candidate stopped before training (screened out or too costly)."""
        self._untrained_s.append(max(0.0, float(seconds)))

    def epoch_seconds(self, macs: float) -> float:
        """Estimated seconds of one training epoch of a model with ``macs`` MACs per image."""
        return max(0.0, self.rate * float(macs) * self.images)

    def job_seconds(self, macs: float, epochs: float) -> float:
        """Estimated seconds of a rung job that trains ``epochs`` epochs."""
        return self.epoch_seconds(macs) * max(0.0, epochs) + self.overhead_s

    def observe(self, macs: float, epochs: float, train_s: float, other_s: float,
                first_rung_extra_epochs: float | None = None) -> None:
        """Learn from a finished job (its MACs, epochs trained, training and other seconds).

        Args:
            first_rung_extra_epochs: For a first-rung job, the fine-tune epochs among ``epochs``
                (0 when it did not prune); ``None`` for later rungs.
        """
        if first_rung_extra_epochs is not None:
            self._first_rungs += 1
            self._extra_epochs.append(float(first_rung_extra_epochs))
            self.first_rung_extra_epochs = statistics.fmean(self._extra_epochs)
        if epochs > 0 and train_s > 0:
            self._epoch_s.append(train_s / epochs)
        if macs > 0 and epochs > 0 and train_s > 0:
            self._rates.append(train_s / (float(macs) * self.images * epochs))
            self.rate = statistics.median(self._rates)
        if other_s >= 0:
            self._overheads.append(other_s)
            self.overhead_s = statistics.median(self._overheads)


@dataclass(frozen=True)
class Plan:
    """How the search spends its budget.

    Attributes:
        budget_s: The study's budget (``--timeout``).
        spent_s: What earlier runs of the study spent.
        rungs: Training epochs at each rung.
        eta: Successive-halving factor.
        expected: Expected candidates reaching each rung.
        epoch_s: Estimated seconds of one training epoch of a typical candidate.
        cap: ``--trials`` (candidates), or ``None``.
        first_look: Share of each epoch the first rung trains (:func:`first_look_share`).
    """

    budget_s: float
    spent_s: float
    rungs: tuple[int, ...]
    eta: int
    expected: tuple[float, ...]
    epoch_s: float
    cap: int | None = None
    first_look: float = 1.0

    @property
    def remaining_s(self) -> float:
        """Budget left for this run."""
        return max(0.0, self.budget_s - self.spent_s)

    def describe(self) -> str:
        """One line: budget, rungs and expected occupancy."""
        ladder = ladder_label(self.rungs, self.first_look)
        counts = ", ".join(f"~{n:.0f} at {rung_label(e, self.first_look if r == 0 else 1.0)} epoch"
                           f"{'s' if e > 1 and (r > 0 or self.first_look >= 1) else ''}"
                           for r, (n, e) in enumerate(zip(self.expected, self.rungs)))
        spent = f" ({self.spent_s:.0f} s spent)" if self.spent_s else ""
        cap = f", at most {self.cap} candidate{'s' if self.cap != 1 else ''}" if self.cap else ""
        return (f"plan: {self.remaining_s:.0f} s of a {self.budget_s:.0f} s budget{spent}; rungs {ladder} epochs "
                f"(η={self.eta}, ~{self.epoch_s:.1f} s per epoch of a typical candidate): {counts}{cap}")


def ladder(rung_count: int, eta: int, max_epochs: int) -> tuple[int, ...]:
    """``rung_count`` rungs from 1 epoch rising by ``eta``, capped at ``max_epochs`` (``(1, 3, 9)``, ``(1, 3)``)."""
    return tuple(min(eta ** r, max_epochs) for r in range(rung_count))


def ladder_options(eta: int, max_epochs: int) -> list[tuple[int, ...]]:
    """Ladders in the plan's order of preference: deepest top rung first, and for one top the most rungs.

    For each top (``max_epochs``'s ladder down to one epoch) the full geometric ladder comes
    first, then, where it has a middle, the ladder that skips to the top from the first rung
    (``(1, 3, 9)``, ``(1, 9)``, ``(1, 3)``, ``(1,)`` for η = 3 and 9 epochs). Skipping the middle
    rung costs fewer epochs per top-rung candidate, so a budget too small for 1 → 3 → 9 can still
    train its best candidates 9 epochs instead of 3.
    """
    longest = max(1, math.floor(math.log(max_epochs, eta) + 1e-9) + 1)
    options: list[tuple[int, ...]] = []
    for count in range(longest, 0, -1):
        full = ladder(count, eta, max_epochs)
        options.append(full)
        if count > 2:
            options.append((full[0], full[-1]))
    return options


def climb_seconds(rungs: tuple[int, ...], epoch_s: float, overhead_s: float, first_look: float, *,
                  straight: bool = False) -> float:
    """Seconds a candidate that finished its first rung costs to climb to the top of ``rungs``.

    The epochs above the first rung's checkpoint (none are behind a first look) at ``epoch_s``
    each, plus one job's ``overhead_s`` per later rung, or one job in all for a ``straight`` climb
    (a start point goes from its first rung to the top in one job).
    """
    behind = rungs[0] if first_look >= 1 else 0
    jobs = min(1, len(rungs) - 1) if straight else len(rungs) - 1
    return (rungs[-1] - behind) * epoch_s + overhead_s * jobs


def make_plan(
    *, budget_s: float, spent_s: float, epoch_s: float, overhead_s: float, eta: int, max_epochs: int,
    rungs: tuple[int, ...] | None = None, cap: int | None = None, first_extra_epochs: float = 0.0,
    first_extra_s: float = 0.0, first_look: float = 1.0, sure_climbers_epoch_s: Sequence[float] = (),
) -> Plan:
    """Choose the rungs (unless given) and the expected occupancy for the remaining budget.

    A candidate's first rung costs its epochs plus ``first_extra_epochs`` (the mean fine-tune
    epochs after pruning, :attr:`CostModel.first_rung_extra_epochs`) plus ``first_extra_s`` (its
    share of the candidates stopped untrained,
    :meth:`CostModel.untrained_seconds_per_candidate`); later rungs their new epochs; every rung
    one job's ``overhead_s``. A first look (``first_look < 1``) trains that share of the first
    rung's epochs (``first_extra_epochs`` already counts the fine-tune's share) and leaves no
    complete epoch behind, so the second rung pays all of its epochs.

    Every ladder starts at one epoch (the cheap first look at many candidates is the point);
    the first of :func:`ladder_options` whose expected top-rung count reaches :data:`MIN_TOP`
    wins, so a budget too small for 1 → 3 → 9 first skips the middle rung (1 → 9: its best
    candidates still train 9 epochs) and only then shortens the top (1 → 3). With none reaching
    it, the first option expected to bring one candidate to a top above one epoch wins; else a
    single rung of one epoch.

    ``sure_climbers_epoch_s`` holds the seconds per epoch of candidates that finished their first
    rung and climb to the top whatever their rank (a space's start point). The top is then the
    deepest whose ladder affords their climbs, which are paid first and counted at the top rung
    (they skip the middle ones); :data:`MIN_TOP` only chooses between the ladders of that top
    (short of it, the one with the most candidates at the top, then at the first rung wins). A plain recipe gains
    most from depth: a 6-minute bench run that shortened the top to 3 epochs (to have two
    candidates there) left its start point at 0.55 test accuracy, against 0.83-0.87 after 9
    epochs in the other seeds.
    """
    remaining = max(0.0, budget_s - spent_s)

    def climbs_s(candidate_rungs: tuple[int, ...]) -> float:
        return sum(climb_seconds(candidate_rungs, seconds, overhead_s, first_look, straight=True)
                   for seconds in sure_climbers_epoch_s)

    def sure(candidate_rungs: tuple[int, ...]) -> int:
        affordable = len(candidate_rungs) > 1 and climbs_s(candidate_rungs) <= remaining
        return len(sure_climbers_epoch_s) if affordable else 0

    def counts(started: float, candidate_rungs: tuple[int, ...]) -> list[float]:
        out = [started]
        for _ in candidate_rungs[1:]:
            out.append(expected_promotions(out[-1], eta))
        return out

    def cost(started: float, candidate_rungs: tuple[int, ...]) -> float:
        previous, total, extra, extra_s, share = 0, 0.0, first_extra_epochs, first_extra_s, first_look
        for count, epochs in zip(counts(started, candidate_rungs), candidate_rungs):
            total += count * (((epochs - previous) * share + extra) * epoch_s + overhead_s + extra_s)
            previous, extra, extra_s = (epochs if share >= 1 else 0), 0.0, 0.0
            share = 1.0
        return total

    def occupancy(candidate_rungs: tuple[int, ...]) -> tuple[float, ...]:
        extra = sure(candidate_rungs)
        left = remaining - (climbs_s(candidate_rungs) if extra else 0.0)
        low, high = 0.0, 1.0
        while cost(high, candidate_rungs) < left and high < 1e6:
            high *= 2
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (middle, high) if cost(middle, candidate_rungs) <= left else (low, middle)
        started = min(low, cap) if cap is not None else low
        top = len(candidate_rungs) - 1
        return tuple(n + (extra if 0 < r == top else 0) for r, n in enumerate(counts(started, candidate_rungs)))

    if rungs is None:
        options = ladder_options(eta, max_epochs)
        deep = [option for option in options if len(option) > 1]
        affordable_tops = [option[-1] for option in deep if sure(option)]
        if affordable_tops:
            deep = [option for option in deep if option[-1] == max(affordable_tops)]
        occupied = {option: occupancy(option) for option in deep}
        if affordable_tops:
            fallback = max(deep, key=lambda option: (occupied[option][-1], occupied[option][0]))
        else:
            fallback = next((option for option in deep if occupied[option][-1] >= 1.0), options[-1])
        rungs = next((option for option in deep if occupied[option][-1] >= MIN_TOP), fallback)
    return Plan(budget_s, spent_s, tuple(rungs), eta, occupancy(tuple(rungs)), epoch_s, cap, first_look)
