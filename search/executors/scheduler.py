"""What runs next: a trial's first job, its promotion past a rung, the rung ladder and what the
budget still allows.

The scheduler turns the plan (:mod:`search.plan`) and the promotion rule (:mod:`search.promotion`)
into jobs. It reads the study (other trials' rung records, for promotions) but never writes to it;
the driver stores every outcome, and ``on_plan`` stores the ladder once it is chosen.

The ladder is chosen from measurements, not guesses: every ladder starts with a rung of one
epoch, so new candidates run their first rung at once, and once η of them have been timed
(their training speed, their overhead) the plan picks the rungs the rest of the budget affords.
A study that has its ladder already (an earlier run, ``--rungs``, ``--override epochs``) keeps it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from evaluators.pipeline import Checkpoint, RungJob
from search import attrs
from search.executors.jobs import Job
from search.front import FrontSpec
from search.plan import CostModel, Plan, climb_seconds, make_plan
from search.promotion import Decision, RungEntry, decide, rung_entry
from search.records import sample_candidate
from spaces.candidate import Candidate
from spaces.registry import SampleContext, SpaceSpec

FIRST_RUNG_EPOCHS = 1
"""Every chosen ladder starts here, so first rungs can run before the ladder is known."""


@dataclass(frozen=True)
class Verdict:
    """What happens to a trial after a rung.

    Attributes:
        kind: ``complete`` (it finished the top rung), ``continue`` (``next_job`` runs next),
            ``wait`` (too few candidates finished the rung to decide; it waits without a slot) or
            ``stop`` (it is told PRUNED).
        next_job: The next rung's job when it continues.
        reason: Why it stops or waits, for people.
        decision: The promotion decision, when one was made.
    """

    kind: str
    next_job: Job | None = None
    reason: str = ""
    decision: Decision | None = None


@dataclass(frozen=True)
class Budget:
    """What the plan needs to know about the run's budget.

    Attributes:
        total_s: The study's budget (``--timeout``).
        spent_before_s: What earlier runs spent.
        cap: Candidates this run may still start (``--trials`` minus those evaluated), or ``None``.
        eta: Successive-halving factor.
        max_epochs: Epochs of the longest top rung.
    """

    total_s: float
    spent_before_s: float
    cap: int | None
    eta: int
    max_epochs: int


class Scheduler:
    """Jobs of one search run.

    Args:
        study: The Optuna study (read only here).
        space: The search space; overrides: fixed Candidate fields; context: what the space may sample.
        spec: Objectives as the front sees them (promotions rank by them).
        rungs: The study's ladder, or ``None`` to choose it once η first rungs are timed.
        budget: The budget the plan divides.
        cost: The cost model (observed jobs refine it).
        deadline: ``time.monotonic()`` after which no job should still be running.
        study_dir: ``<out>/<study>``.
        teacher_macs: ``() -> MACs`` per image of the KD teacher (counted when first needed).
        on_plan: Called with the plan once the ladder is chosen (the driver stores it).
        announce: Prints a line for the user (a decision about KD, the plan).
        first_rung_share: Most of the budget one candidate's first rung may spend training
            (``--max-first-rung-share``; 0: no limit). It applies while the ladder has more than
            one rung (or is not chosen yet): in a one-rung search the first rung is the trial.
        first_look: Share of each epoch a first rung trains (``search.plan.first_look_share``;
            1: whole epochs). Fixed for the study, so every first rung is ranked at one fidelity.
    """

    def __init__(
        self, *, study: Any, space: SpaceSpec, overrides: Mapping[str, Any], context: SampleContext,
        spec: FrontSpec, rungs: tuple[int, ...] | None, budget: Budget, cost: CostModel, deadline: float,
        study_dir: Path, teacher_macs: Callable[[], float] | None = None,
        on_plan: Callable[[Plan], None] | None = None, announce: Callable[[str], None] = print,
        first_rung_share: float = 0.0, first_look: float = 1.0,
    ) -> None:
        self.study = study
        self.space = space
        self.overrides = dict(overrides)
        self.context = context
        self.spec = spec
        self.rungs = rungs
        self.budget = budget
        self.eta = budget.eta
        self.cost = cost
        self.deadline = deadline
        self.study_dir = study_dir
        self.teacher_macs = teacher_macs
        self.on_plan = on_plan
        self.announce = announce
        self.first_rung_share = first_rung_share
        self.first_look = first_look
        self._teacher_epochs: int | None = None
        trials = study.get_trials(deepcopy=False)
        self._top_started = rungs is not None and any(attrs.rung_key(len(rungs) - 1) in t.user_attrs
                                                      and not t.user_attrs.get(attrs.START_POINT) for t in trials)
        self._best_accuracy = max((float(record["figures"]["accuracy"]) for t in trials
                                   for record in attrs.rung_records(t.user_attrs).values()
                                   if (record.get("figures") or {}).get("accuracy") is not None), default=0.0)

    @property
    def top(self) -> int | None:
        """Index of the top rung (``None`` while the ladder is not chosen)."""
        return None if self.rungs is None else len(self.rungs) - 1

    def remaining_s(self) -> float:
        """Seconds of budget left."""
        return self.deadline - time.monotonic()

    def first_rung_limit_s(self, share: float = 1.0) -> float | None:
        """Most training seconds a new candidate's first rung may cost (``None``: no limit).

        A first rung that trains ``share`` of each epoch (a first look) gets the same share of the
        limit, so the cost of a candidate's epoch, not of its look, is what the limit bounds.
        """
        if self.first_rung_share <= 0 or (self.rungs is not None and len(self.rungs) < 2):
            return None
        return self.first_rung_share * self.budget.total_s * share

    def _first_epochs(self) -> int:
        return self.rungs[0] if self.rungs is not None else FIRST_RUNG_EPOCHS

    def _note_top_start(self, job: Job) -> None:
        """Lift the top reserve once a searched candidate (not the start point) starts the top rung."""
        if job.rung.final and not job.trial.user_attrs.get(attrs.START_POINT):
            self._top_started = True

    def top_reserve_s(self) -> float:
        """Budget kept for taking one searched candidate from its first rung to the top (0 once one
        got there).

        While no candidate but the start point has started the top rung of a multi-rung ladder,
        new candidates start only if a typical candidate could still climb from the first rung to
        the top after them: otherwise the search spends its last minutes on first looks and ends
        with no candidate at the top (one 6-minute bench run trained 14 first rungs and 3 middle
        ones, and its front was empty). The start point does not lift it: it climbs whatever its
        rank, early, and a front of the start point alone is what the reserve is there to avoid.
        """
        if self.rungs is None or len(self.rungs) < 2 or self._top_started:
            return 0.0
        return climb_seconds(self.rungs, self.cost.typical_epoch_seconds(), self.cost.overhead_s, self.first_look)

    def new_candidate_fits(self) -> bool:
        """Whether a new candidate's first rung is expected to end before the deadline, with the
        top rung's reserve (:meth:`top_reserve_s`) left after it.

        Until a job of this run has been timed there is nothing to estimate from, so the first
        candidate always starts while budget is left; the budget's hard stop still bounds it.
        """
        if self.remaining_s() <= 0:
            return False
        if not self.cost.observed:
            return True
        return self.first_rung_estimate_s() + self.top_reserve_s() <= self.remaining_s()

    def first_rung_estimate_s(self) -> float:
        """Seconds a typical new candidate's first rung is expected to cost (its fine-tune included)."""
        first_epochs = self._first_epochs() * self.first_look + self.cost.first_rung_extra_epochs
        return self.cost.typical_epoch_seconds() * first_epochs + self.cost.overhead_s

    def defers_climb(self, job: Job, entries: list[RungEntry], climb: Job) -> bool:
        """Whether a start point promoted past its first rung waits before its ``climb``.

        It waits until η other candidates have finished their first rung, so that the first
        promotion decision among them is made and the first results are told before it holds a slot
        for its whole climb: on 5,000 real-size photos the 192-px start point climbed at once, held
        the one slot for 290 s, and no trial was told until 25 % of the budget had passed. It never
        waits when one more typical first rung would leave its climb no room in the budget.
        """
        others = sum(1 for entry in entries if entry.number != job.number)
        return (job.rung.rung == 0 and others < self.eta
                and climb.estimate_s + self.first_rung_estimate_s() <= self.remaining_s())

    def choose_ladder(self) -> Plan:
        """Choose the rungs from the timed first rungs and the budget left (once per study)."""
        stored = self.study.user_attrs.get(attrs.STUDY_RUNGS)
        rungs = tuple(int(e) for e in stored) if stored is not None else None
        spent = self.budget.total_s - self.remaining_s()
        plan = make_plan(budget_s=self.budget.total_s, spent_s=max(0.0, spent), epoch_s=self.cost.typical_epoch_seconds(),
                         overhead_s=self.cost.overhead_s, eta=self.eta, max_epochs=self.budget.max_epochs,
                         cap=self.budget.cap, rungs=rungs, first_extra_epochs=self.cost.first_rung_extra_epochs,
                         first_extra_s=self.cost.untrained_seconds_per_candidate(), first_look=self.first_look,
                         sure_climbers_epoch_s=self.sure_climbers_epoch_s())
        self.rungs = plan.rungs
        if self.on_plan is not None:
            self.on_plan(plan)
        return plan

    def sure_climbers_epoch_s(self) -> list[float]:
        """Seconds per epoch of the trials that climb to the top whatever their rank: a start point
        whose own first rung finished feasible (its figures are its own, not a continuation's copy)."""
        out = []
        for t in self.study.get_trials(deepcopy=False):
            record = t.user_attrs.get(attrs.rung_key(0)) if t.user_attrs.get(attrs.START_POINT) else None
            seconds = attrs.record_epoch_seconds(record)
            if seconds is not None and record.get("feasible") and record.get("copied_from") is None:
                out.append(seconds)
        return out

    def teacher_epochs(self) -> int:
        """Epochs of the KD teacher this search affords (0: KD is off, said once).

        Decided once the first job has been timed (before that a job trains without the teacher);
        off for good once a job refused the teacher as weaker than the candidates (:meth:`observe`).
        """
        from search.context import TEACHER_MIN_EPOCHS, TEACHER_SHARE, teacher_epochs_for

        if self._teacher_epochs is None:
            if not self.cost.observed:
                return 0
            if self.teacher_macs is None:
                self._teacher_epochs = 0
            else:
                epoch_s = self.cost.epoch_seconds(self.teacher_macs())
                self._teacher_epochs = teacher_epochs_for(self.budget.total_s, epoch_s)
                if self._teacher_epochs < 1:
                    self.announce(f"KD teacher: {TEACHER_MIN_EPOCHS} epochs (~{epoch_s * TEACHER_MIN_EPOCHS:.0f} s, the "
                                  f"fewest worth training) are more than {TEACHER_SHARE:.0%} of the "
                                  f"{self.budget.total_s:.0f} s budget; knowledge distillation is off in this search "
                                  "(KD candidates train without it)")
                else:
                    self.announce(f"KD teacher: {self._teacher_epochs} epochs, ~{epoch_s * self._teacher_epochs:.0f} s "
                                  f"(at most {TEACHER_SHARE:.0%} of the budget), trained when a KD candidate first "
                                  "reaches rung 1; used only if its validation accuracy beats every candidate's")
        return self._teacher_epochs

    def _teacher_for(self, candidate: Candidate, rung: int) -> int:
        """KD from rung 1 on, or in a one-rung ladder (the first rung trains without the teacher)."""
        if candidate.loss.kd <= 0 or (rung == 0 and (self.rungs is None or len(self.rungs) > 1)):
            return 0
        return self.teacher_epochs()

    def _job(self, trial: Any, candidate: Candidate, rung: int, start: Checkpoint | None, macs: float | None,
             resumed_from: dict[str, Any] | None = None, previous: Mapping[str, Any] | None = None) -> Job:
        """The job of ``rung``; its cost estimate uses the candidate's own epoch time when a rung of it was timed."""
        done = start.epochs if start is not None else 0
        target = self.rungs[rung] if self.rungs is not None else FIRST_RUNG_EPOCHS
        share = self.first_look if start is None else 1.0
        finetune = candidate.finetune_epochs if start is None and candidate.prune_ratio > 0 else 0
        epochs = (target - done + finetune) * share
        own_epoch_s = attrs.record_epoch_seconds(previous)
        if own_epoch_s is not None:
            estimate = own_epoch_s * epochs + self.cost.overhead_s
        elif macs and self.cost.observed:
            estimate = self.cost.job_seconds(macs, epochs)
        else:
            estimate = self.cost.typical_epoch_seconds() * epochs + self.cost.overhead_s
        job = RungJob(rung=rung, epochs=target, final=self.top is not None and rung == self.top,
                      teacher_epochs=self._teacher_for(candidate, rung), teacher_min_accuracy=self._best_accuracy,
                      start=start, screen=start is None,
                      max_train_s=self.first_rung_limit_s(share) if start is None else None, epoch_share=share)
        return Job(trial, candidate, job, self.study_dir / f"trial_{trial.number}", estimate, resumed_from,
                   time.monotonic())

    def first_job(self, trial: Any) -> Job:
        """The first job of a newly asked trial: rung 0, or the continuation of an interrupted trial.

        Raises:
            CandidateError: The sampled parameters do not make a valid candidate.
        """
        candidate = sample_candidate(self.space, trial, self.overrides, self.context)
        continues = trial.user_attrs.get(attrs.CONTINUES)
        if continues is not None and self.rungs is not None:
            job = self._continuation(trial, candidate, int(continues))
            if job is not None:
                self._note_top_start(job)
                return job
        return self._job(trial, candidate, 0, None, None)

    def _continuation(self, trial: Any, candidate: Candidate, number: int) -> Job | None:
        """Continue trial ``number``'s last promoted checkpoint in ``trial`` (its rung records copied)."""
        assert self.top is not None
        old = next((t for t in self.study.get_trials(deepcopy=False) if t.number == number), None)
        records = attrs.rung_records(old.user_attrs) if old is not None else {}
        promoted = [r for r, rec in records.items()
                    if (rec.get("decision") or {}).get("promote") and rec.get("checkpoint") and r < self.top]
        if old is None or not promoted:
            return None
        last = max(promoted)
        for rung in sorted(records):
            if rung <= last:
                trial.set_user_attr(attrs.rung_key(rung), {**records[rung], "copied_from": number})
        record = records[last]
        checkpoint = Checkpoint.from_dict(record["checkpoint"])
        for key in (attrs.SCREEN, attrs.START_POINT):
            if old.user_attrs.get(key):
                trial.set_user_attr(key, old.user_attrs[key])
        macs = (old.user_attrs.get(attrs.METRICS) or {}).get("macs")
        resumed = {"trial": number, "rung": last, "checkpoint_sha256": checkpoint.sha256}
        return self._job(trial, candidate, self.next_rung(old, last), checkpoint, macs, resumed, record)

    def next_rung(self, trial: Any, rung: int) -> int:
        """The rung a candidate promoted past ``rung`` trains next: the next one, or the top for a start
        point. It climbs whatever its rank and other candidates are ranked without it, so a middle rung
        would decide nothing for it and cost it a job's overhead and a warm restart (on the embedded
        data its test accuracy was 0.7-7 points lower through 1 -> 3 -> 9 than through 1 -> 9, 3 seeds)."""
        assert self.top is not None
        return self.top if trial.user_attrs.get(attrs.START_POINT) else rung + 1

    def entries(self, rung: int, *, without_start_point: bool = False) -> list[RungEntry]:
        """Every trial's figures at ``rung`` (records copied into continuations are counted once).

        Args:
            without_start_point: Leave out a feasible start point: it climbs whatever its rank and
                the plan counts it in addition to the candidates the quota promotes, so it takes
                no other candidate's slot.
        """
        out = []
        for t in self.study.get_trials(deepcopy=False):
            record = t.user_attrs.get(attrs.rung_key(rung))
            if not record or record.get("copied_from") is not None or not record.get("values"):
                continue
            if without_start_point and record.get("feasible") and t.user_attrs.get(attrs.START_POINT):
                continue
            out.append(rung_entry(t.number, record))
        return out

    def after_rung(self, job: Job, record: Mapping[str, Any], macs: float, *, final: bool = False) -> Verdict:
        """Decide what follows ``job``'s rung, whose stored ``record`` the entries now include.

        Args:
            final: No more candidates will finish this rung in this run: decide now, even with
                fewer than η competitors (and choose the ladder now if it is not chosen).
        """
        rung = job.rung.rung
        start_point = bool(job.trial.user_attrs.get(attrs.START_POINT))
        entries = self.entries(rung, without_start_point=not start_point)
        if not any(e.number == job.number for e in entries):
            entries.append(rung_entry(job.number, record))
        if self.rungs is None:
            if len(entries) < self.eta and not final:
                return Verdict("wait", reason=f"the rung ladder is chosen once {self.eta} candidates are timed")
            self.choose_ladder()
        if rung == self.top:
            return Verdict("complete")
        decision = decide(job.number, entries, self.spec, rung, self.eta, final=final)
        # the start point climbs whatever its rank once it has η competitors like any candidate; its climb
        # then waits for η other first rungs (defers_climb), so the first results are told before it
        if record["feasible"] and not decision.wait and start_point:
            decision = dataclasses.replace(decision, promote=True, reason=(
                f"rung {rung}: the space's start point continues straight to the top rung whatever its rank "
                "(what the search returns is never less than it)"))
        if decision.wait:
            return Verdict("wait", reason=decision.reason, decision=decision)
        if not decision.promote:
            return Verdict("stop", reason=decision.reason, decision=decision)
        checkpoint = Checkpoint.from_dict(record["checkpoint"])
        next_job = self._job(job.trial, job.candidate, self.next_rung(job.trial, rung), checkpoint, macs,
                             previous=record)
        if next_job.estimate_s > self.remaining_s():
            reason = (f"promoted past rung {rung}, but rung {next_job.rung.rung} (~{next_job.estimate_s:.0f} s) would end "
                      f"after the budget ({max(0.0, self.remaining_s()):.0f} s left)")
            return Verdict("stop", reason=reason, decision=dataclasses.replace(decision, promote=False, reason=reason))
        if start_point and not final and self.defers_climb(job, entries, next_job):
            return Verdict("wait", reason=f"the start point climbs once {self.eta} other candidates have finished their "
                                          "first rung (the first results are told first)")
        self._note_top_start(next_job)
        return Verdict("continue", next_job=next_job, decision=decision)

    def observe_untrained(self, outcome: Any) -> None:
        """Learn what a candidate stopped before training cost (the plan counts it per candidate)."""
        self.cost.observe_untrained(sum(outcome.stage_seconds.values()))

    def observe(self, job: Job, outcome: Any) -> None:
        """Learn from a finished rung: its timings, its validation accuracy, whether it refused the teacher.

        A KD teacher must beat the best validation accuracy a candidate has reached; once a job
        refused it, KD is off for the rest of the search (said once).
        """
        if outcome.metrics is not None:
            self._best_accuracy = max(self._best_accuracy, float(outcome.metrics.accuracy))
        if outcome.teacher_accuracy is not None and not outcome.kd_applied and self._teacher_epochs:
            self.announce(f"KD teacher: validation accuracy {outcome.teacher_accuracy:.3f} after "
                          f"{self._teacher_epochs} epochs is not above the best candidate's "
                          f"({job.rung.teacher_min_accuracy:.3f}); knowledge distillation is off for the rest of "
                          "this search (KD candidates train without it)")
            self._teacher_epochs = 0
        stages = outcome.stage_seconds
        trained = stages.get("train", 0.0) + stages.get("prune_finetune", 0.0)
        other = sum(v for k, v in stages.items() if k not in ("train", "prune_finetune", "teacher"))
        finetune = (job.candidate.finetune_epochs if "prune_finetune" in stages else 0) * job.rung.epoch_share
        epochs = job.rung.train_epochs + finetune
        if outcome.metrics is not None:
            extra = finetune if job.rung.start is None else None
            self.cost.observe(outcome.metrics.macs, epochs, trained, other, first_rung_extra_epochs=extra)
