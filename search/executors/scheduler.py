"""What runs next: a trial's first job, its promotion past a rung, and what the budget still allows.

The scheduler turns the plan (:mod:`search.plan`) and the promotion rule (:mod:`search.promotion`)
into jobs. It reads the study (other trials' rung records, for promotions) but never writes to
it; the driver stores every outcome.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from evaluators.pipeline import Checkpoint, RungJob
from search import attrs
from search.executors.jobs import Job
from search.front import FrontSpec
from search.plan import CostModel
from search.promotion import Decision, RungEntry, decide
from search.records import sample_candidate
from spaces.candidate import Candidate
from spaces.registry import SampleContext, SpaceSpec


@dataclass(frozen=True)
class Verdict:
    """What happens to a trial after a rung.

    Attributes:
        kind: ``complete`` (it finished the top rung), ``continue`` (``next_job`` runs next),
            ``wait`` (too few candidates finished the rung to decide; it waits without a slot) or
            ``stop`` (it is told PRUNED).
        next_job: The next rung's job when it continues.
        reason: Why it stops, for people.
        decision: The promotion decision, when one was made.
    """

    kind: str
    next_job: Job | None = None
    reason: str = ""
    decision: Decision | None = None


class Scheduler:
    """Jobs of one search run.

    Args:
        study: The Optuna study (read only here).
        space: The search space; overrides: fixed Candidate fields; context: what the space may sample.
        spec: Objectives as the front sees them (promotions rank by them).
        rungs: Training epochs of each rung; eta: successive-halving factor.
        cost: The cost model (observed jobs refine it).
        deadline: ``time.monotonic()`` after which no job should still be running.
        typical_epoch_s: Estimated epoch cost of a candidate not yet screened.
        kd: Whether knowledge distillation is affordable in this run.
        study_dir: ``<out>/<study>``.
    """

    def __init__(
        self, *, study: Any, space: SpaceSpec, overrides: Mapping[str, Any], context: SampleContext,
        spec: FrontSpec, rungs: tuple[int, ...], eta: int, cost: CostModel, deadline: float,
        typical_epoch_s: float, kd: bool, study_dir: Path,
    ) -> None:
        self.study = study
        self.space = space
        self.overrides = dict(overrides)
        self.context = context
        self.spec = spec
        self.rungs = rungs
        self.eta = eta
        self.cost = cost
        self.deadline = deadline
        self.typical_epoch_s = typical_epoch_s
        self.kd = kd
        self.study_dir = study_dir

    @property
    def top(self) -> int:
        """Index of the top rung."""
        return len(self.rungs) - 1

    def remaining_s(self) -> float:
        """Seconds of budget left."""
        return self.deadline - time.monotonic()

    def new_candidate_fits(self) -> bool:
        """Whether a new candidate's first rung is expected to end before the deadline.

        Until a job of this run has been timed the estimate is only the probe's (a busy machine
        can make it many times too high), so the first candidate always starts while budget is
        left; the budget's hard stop still bounds it.
        """
        if self.remaining_s() <= 0:
            return False
        if not self.cost.observed:
            return True
        return self.typical_epoch_s * self.rungs[0] + self.cost.overhead_s <= self.remaining_s()

    def _kd_at(self, candidate: Candidate, rung: int) -> bool:
        """KD from rung 1 on (rung 0 of a laddered search trains without the teacher)."""
        return self.kd and candidate.loss.kd > 0 and (rung > 0 or len(self.rungs) == 1)

    def _job(self, trial: Any, candidate: Candidate, rung: int, start: Checkpoint | None, macs: float | None,
             resumed_from: dict[str, Any] | None = None) -> Job:
        done = start.epochs if start is not None else 0
        epochs = self.rungs[rung] - done
        estimate = (self.cost.job_seconds(macs, epochs) if macs else
                    self.typical_epoch_s * epochs + self.cost.overhead_s)
        job = RungJob(rung=rung, epochs=self.rungs[rung], final=rung == self.top, kd=self._kd_at(candidate, rung),
                      start=start, screen=start is None)
        return Job(trial, candidate, job, self.study_dir / f"trial_{trial.number}", estimate, resumed_from,
                   time.monotonic())

    def first_job(self, trial: Any) -> Job:
        """The first job of a newly asked trial: rung 0, or the continuation of an interrupted trial.

        Raises:
            CandidateError: The sampled parameters do not make a valid candidate.
        """
        candidate = sample_candidate(self.space, trial, self.overrides, self.context)
        continues = trial.user_attrs.get(attrs.CONTINUES)
        if continues is not None:
            job = self._continuation(trial, candidate, int(continues))
            if job is not None:
                return job
        return self._job(trial, candidate, 0, None, None)

    def _continuation(self, trial: Any, candidate: Candidate, number: int) -> Job | None:
        """Continue trial ``number``'s last promoted checkpoint in ``trial`` (its rung records copied)."""
        old = next((t for t in self.study.get_trials(deepcopy=False) if t.number == number), None)
        records = attrs.rung_records(old.user_attrs) if old is not None else {}
        promoted = [r for r, rec in records.items()
                    if (rec.get("decision") or {}).get("promote") and rec.get("checkpoint") and r < self.top]
        if not promoted:
            return None
        last = max(promoted)
        for rung in sorted(records):
            if rung <= last:
                trial.set_user_attr(attrs.rung_key(rung), {**records[rung], "copied_from": number})
        record = records[last]
        checkpoint = Checkpoint.from_dict(record["checkpoint"])
        if old is not None and old.user_attrs.get(attrs.SCREEN):
            trial.set_user_attr(attrs.SCREEN, old.user_attrs[attrs.SCREEN])
        macs = (old.user_attrs.get(attrs.METRICS) or {}).get("macs") if old is not None else None
        resumed = {"trial": number, "rung": last, "checkpoint_sha256": checkpoint.sha256}
        return self._job(trial, candidate, last + 1, checkpoint, macs, resumed)

    def entries(self, rung: int) -> list[RungEntry]:
        """Every trial's figures at ``rung`` (records copied into continuations are counted once)."""
        out = []
        for t in self.study.get_trials(deepcopy=False):
            record = t.user_attrs.get(attrs.rung_key(rung))
            if not record or record.get("copied_from") is not None or not record.get("values"):
                continue
            out.append(RungEntry(t.number, tuple(float(v) for v in record["values"]), bool(record.get("feasible"))))
        return out

    def after_rung(self, job: Job, record: Mapping[str, Any], macs: float, *, final: bool = False) -> Verdict:
        """Decide what follows ``job``'s rung, whose stored ``record`` the entries now include.

        Args:
            final: No more candidates will finish this rung in this run: decide now, even with
                fewer than η competitors.
        """
        rung = job.rung.rung
        if rung == self.top:
            return Verdict("complete")
        entries = self.entries(rung)
        if not any(e.number == job.number for e in entries):
            entries.append(RungEntry(job.number, tuple(record["values"]), bool(record["feasible"])))
        decision = decide(job.number, entries, self.spec, rung, self.eta, final=final)
        if decision.wait:
            return Verdict("wait", reason=decision.reason, decision=decision)
        if not decision.promote:
            return Verdict("stop", reason=decision.reason, decision=decision)
        checkpoint = Checkpoint.from_dict(record["checkpoint"])
        next_job = self._job(job.trial, job.candidate, rung + 1, checkpoint, macs)
        if next_job.estimate_s > self.remaining_s():
            reason = (f"promoted past rung {rung}, but rung {rung + 1} (~{next_job.estimate_s:.0f} s) would end "
                      f"after the budget ({max(0.0, self.remaining_s()):.0f} s left)")
            return Verdict("stop", reason=reason, decision=dataclasses.replace(decision, promote=False, reason=reason))
        return Verdict("continue", next_job=next_job, decision=decision)

    def observe(self, job: Job, outcome: Any) -> None:
        """Refine the cost model with a finished rung's timings."""
        stages = outcome.stage_seconds
        trained = stages.get("train", 0.0) + stages.get("prune_finetune", 0.0)
        other = sum(v for k, v in stages.items() if k not in ("train", "prune_finetune", "teacher"))
        start = job.rung.start.epochs if job.rung.start is not None else 0
        epochs = job.rung.epochs - start + (job.candidate.finetune_epochs if "prune_finetune" in stages else 0)
        if outcome.metrics is not None:
            self.cost.observe(outcome.metrics.macs, epochs, trained, other)
            self.typical_epoch_s = self.cost.typical_epoch_seconds()
