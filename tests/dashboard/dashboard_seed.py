"""Seed an Optuna RDB storage with hwsearch studies, written the way the launcher stores them.

Each trial is sampled by the real space function on a draft trial, and its attributes are written
by the launcher's own writers (:mod:`search.records`: ``sample_candidate``,
``record_screened_out``, ``rung_record``/``record_rung``, ``record_decision``, ``record_stopped``,
``record_complete``, ``record_failure``) from ``RungOutcome`` records, as the driver does.
Successive halving is run as the driver runs it: after each rung below the top,
:func:`search.promotion.decide` on every candidate that finished that rung so far; a candidate
that must wait for more competitors is parked (RUNNING) and decided when one arrives. Finished
drafts are then added with ``study.add_trial`` in trial-number order. Figures come from
:mod:`seed_figures`, not from training.

A study holds: baselines, screened-out candidates (COMPLETE, ``trained=False``, the objectives'
worst values), candidates stopped at rung 0 and 1 (PRUNED, with their rung records and decision),
candidates that finished the top rung, one trial interrupted while training a rung it was
promoted to (FAIL) and the trial that continues it from its checkpoint (``continues``,
``resumed_from``, copied rung records), a trial that failed in training, a trial still running,
and the RUNNING trials parked for a decision. With ``specials`` (the default) four top-rung
trials are bent: one collapses under the accuracy floor, one's final artifact measures over the
latency budget, and two become a pair whose slower member is on the front only within noise.
``esfair-legacy`` is written in the layout of hwsearch before rungs (``esfair_score``, no
intervals, no ``fairness_method``, PRUNED = over budget).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from seed_figures import (
    GROUP_COUNTS,
    accuracy_at,
    latency_ms,
    latency_result,
    legacy_latency,
    legacy_metrics,
    make_metrics,
    per_group_at,
    stage_seconds,
)

from evaluators.contracts import LatencyResult
from evaluators.pipeline import Checkpoint, RungJob, RungOutcome, ScreenResult
from search import attrs
from search.front import FrontSpec, dominated_within_noise, front, points_from_trials
from search.plan import make_plan
from search.promotion import RungEntry, decide
from search.records import (
    record_complete,
    record_decision,
    record_failure,
    record_rung,
    record_screened_out,
    record_stopped,
    rung_record,
    sample_candidate,
)
from spaces import Candidate, SampleContext, Task, get_space

RUNGS = (1, 3, 9)
ETA = 2
FLOOR = 0.55
TOP = len(RUNGS) - 1


class Draft:
    """A trial being run: answers the space's suggestions and holds what :mod:`search.records` writes.

    With ``fixed`` params it returns those values (an enqueued trial); otherwise it draws uniformly
    from each distribution with ``rng`` (a random-sampler trial).
    """

    def __init__(self, number: int, rng: random.Random, fixed: dict[str, Any] | None = None) -> None:
        self.number = number
        self.rng = rng
        self.fixed = fixed or {}
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, BaseDistribution] = {}
        self.user_attrs: dict[str, Any] = {}
        self.state = TrialState.RUNNING
        self.values: list[float] | None = None
        self.candidate: Candidate | None = None
        self.resumed: dict[str, Any] | None = None

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value

    def _take(self, name: str, distribution: BaseDistribution, draw: Any) -> Any:
        value = self.fixed.get(name, draw)
        self.params[name] = value
        self.distributions[name] = distribution
        return value

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._take(name, CategoricalDistribution(list(choices)), self.rng.choice(list(choices)))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        if step:
            draw = round(low + step * self.rng.randint(0, round((high - low) / step)), 10)
        elif log:
            draw = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        else:
            draw = self.rng.uniform(low, high)
        return float(self._take(name, FloatDistribution(low, high, step=step, log=log), draw))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._take(name, IntDistribution(low, high, step=step, log=log), self.rng.randint(low, high)))


@dataclass
class SeededStudy:
    """What :func:`seed_storage` wrote for one study (trial numbers by kind)."""

    name: str
    space: str
    complete: list[int] = field(default_factory=list)
    screened_out: list[int] = field(default_factory=list)
    stopped: dict[int, list[int]] = field(default_factory=dict)
    parked: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    interrupted: int | None = None
    continuation: int | None = None
    floor_violator: int | None = None
    over_budget_final: int | None = None
    noise_member: int | None = None
    baselines: dict[str, int] = field(default_factory=dict)
    artifact_trial: int | None = None
    artifact_path: Path | None = None
    test_metrics_trials: list[int] = field(default_factory=list)

    @property
    def pruned(self) -> list[int]:
        """Every PRUNED trial."""
        return sorted(n for numbers in self.stopped.values() for n in numbers)

    @property
    def trials(self) -> int:
        """Number of trials written."""
        kinds = (self.complete, self.screened_out, self.pruned, self.running, self.failed)
        return sum(len(k) for k in kinds)


class Seeder:
    """Runs candidates through screening and the rungs of one study, as the driver does."""

    def __init__(self, study: optuna.Study, space: str, task: Task, out_dir: Path, *, fake: bool, seed: int,
                 grouped: bool) -> None:
        self.study, self.space, self.task, self.out_dir = study, get_space(space), task, out_dir
        self.fake, self.grouped = fake, grouped
        self.rng = random.Random(seed)
        self.spec = FrontSpec.from_task(task)
        self.drafts: list[Draft] = []
        self.entries: dict[int, list[RungEntry]] = {}
        self.parked: dict[int, list[Draft]] = {}
        self.top: list[Draft] = []
        self.interrupt_next = False
        self.seeded = SeededStudy(study.study_name, space)
        self.offset = len(study.get_trials(deepcopy=False))

    def ask(self, fixed: dict[str, Any] | None = None, baseline: str = "",
            continues: int | None = None) -> Draft:
        """A new trial: its candidate sampled and stored by ``sample_candidate``."""
        draft = Draft(self.offset + len(self.drafts), self.rng, fixed)
        if baseline:
            draft.set_user_attr(attrs.BASELINE, baseline)
            self.seeded.baselines[baseline] = draft.number
        if continues is not None:
            draft.set_user_attr(attrs.CONTINUES, continues)
        draft.candidate = sample_candidate(self.space, draft, {}, SampleContext(grouped_data=self.grouped))
        draft.set_user_attr(attrs.WORKER, {"host": "seed-host", "pid": 4242})
        self.drafts.append(draft)
        return draft

    def run(self, draft: Draft) -> None:
        """Screen the candidate, then rung 0 and whatever successive halving makes of it."""
        assert draft.candidate is not None
        latency = latency_result(latency_ms(draft.candidate) * (1 + self.rng.uniform(-0.03, 0.03)), self.fake,
                                 self.rng, under_load=not self.fake and draft.number == 1)
        size = int(4e6 * draft.candidate.width ** 2)
        screen = ScreenResult(f"fp{draft.number:04d}", latency, size, 1000, 1000, {}, 2.4)
        screen.violations = self.task.screen_violations(screen.metrics())
        if not screen.feasible:
            job = RungJob(rung=0, epochs=1, final=False, screen=True)
            draft.values = record_screened_out(draft, RungOutcome(job, screen, None, stage_seconds={"screen": 2.4}),
                                               self.task)
            draft.state = TrialState.COMPLETE
            self.seeded.screened_out.append(draft.number)
            return
        self._finish(draft, 0, screen)

    def _outcome(self, draft: Draft, rung: int, screen: ScreenResult | None, *, latency: LatencyResult | None = None,
                 per_group: dict[str, float] | None = None, accuracy: float | None = None,
                 sha256: str = "") -> RungOutcome:
        candidate = draft.candidate
        assert candidate is not None
        epochs = RUNGS[rung]
        if latency is None:
            previous = draft.user_attrs.get(attrs.LATENCY) or (screen.latency.to_dict() if screen else {})
            latency = latency_result(previous["median_ms"], self.fake, self.rng,
                                     under_load=previous.get("under_load", False))
        if accuracy is None:
            accuracy = accuracy_at(candidate, epochs, self.rng)
        if per_group is None and self.grouped:
            per_group = per_group_at(candidate, accuracy, self.rng)
        trial_dir = self.out_dir / f"trial_{draft.number}"
        artifact = str(trial_dir / "model.onnx")
        metrics = make_metrics(candidate, self.task, epochs=epochs, per_group=per_group, accuracy=accuracy,
                               latency=latency, artifact=artifact,
                               sha256=sha256 or hashlib.sha256(f"{artifact}@{rung}".encode()).hexdigest(),
                               grouped=self.grouped)
        checkpoint = Checkpoint(str(trial_dir / f"rung_{rung}.pt"), hashlib.sha256(f"{artifact}#{rung}".encode())
                                .hexdigest(), rung, epochs, candidate.prune_ratio > 0)
        job = RungJob(rung=rung, epochs=epochs, final=rung == TOP, start=None, screen=screen is not None)
        return RungOutcome(job, screen, metrics, checkpoint, stage_seconds(epochs, screen is not None),
                           [[1.7e9 + draft.number, 1.7e9 + draft.number + 10.0]], candidate.loss.kd > 0)

    def _record(self, draft: Draft, outcome: RungOutcome) -> dict[str, Any]:
        record = rung_record(outcome, self.task, resumed_from=draft.resumed)
        draft.resumed = None
        record_rung(draft, outcome, self.task, record)
        return record

    def _finish(self, draft: Draft, rung: int, screen: ScreenResult | None = None) -> None:
        if rung == TOP:
            self.top.append(draft)
            return
        record = self._record(draft, self._outcome(draft, rung, screen))
        self.entries.setdefault(rung, []).append(RungEntry(draft.number, tuple(record["values"]), record["feasible"]))
        self._decide(draft, rung)
        for waiting in list(self.parked.get(rung, [])):
            if waiting is not draft and waiting in self.parked[rung]:
                self.parked[rung].remove(waiting)
                self._decide(waiting, rung)

    def _decide(self, draft: Draft, rung: int) -> None:
        decision = decide(draft.number, self.entries[rung], self.spec, rung, ETA)
        if decision.wait:
            if draft not in self.parked.setdefault(rung, []):
                self.parked[rung].append(draft)
            return
        record_decision(draft, decision)
        if not decision.promote:
            record_stopped(draft, decision.reason)
            draft.state = TrialState.PRUNED
            self.seeded.stopped.setdefault(rung, []).append(draft.number)
        elif self.interrupt_next:
            self.interrupt_next = False
            self._interrupt(draft, rung)
        else:
            self._finish(draft, rung + 1)

    def _interrupt(self, draft: Draft, rung: int) -> None:
        """``draft`` dies training rung ``rung + 1``; a continuation picks it up from its checkpoint."""
        record_failure(draft, "interrupted: its launcher (pid 4242 on seed-host) died")
        draft.state = TrialState.FAIL
        self.seeded.interrupted = draft.number
        self.seeded.failed.append(draft.number)
        again = self.ask(fixed=dict(draft.params), continues=draft.number)
        for number, record in attrs.rung_records(draft.user_attrs).items():
            again.set_user_attr(attrs.rung_key(number), {**record, "copied_from": draft.number})
        again.set_user_attr(attrs.SCREEN, draft.user_attrs[attrs.SCREEN])
        again.set_user_attr(attrs.LATENCY, draft.user_attrs[attrs.LATENCY])
        checkpoint = attrs.rung_records(draft.user_attrs)[rung]["checkpoint"]
        again.resumed = {"trial": draft.number, "rung": rung, "checkpoint_sha256": checkpoint["sha256"]}
        self.seeded.continuation = again.number
        self._finish(again, rung + 1)

    def fail_in_training(self) -> None:
        """A trial whose first rung crashed."""
        draft = self.ask()
        record_failure(draft, "RuntimeError: DataLoader worker exited unexpectedly")
        draft.set_user_attr(attrs.STAGE_SECONDS, {"screen": 2.1, "train": 12.0})
        draft.state = TrialState.FAIL
        self.seeded.failed.append(draft.number)

    def still_running(self) -> None:
        """A trial asked and training its first rung now."""
        self.seeded.running.append(self.ask().number)

    def _bend(self, specials: bool) -> dict[int, dict[str, Any]]:
        """Top-rung figures of the finishers: natural ones, and the four special ones with ``specials``."""
        natural = {}
        for draft in self.top:
            assert draft.candidate is not None
            accuracy = accuracy_at(draft.candidate, RUNGS[TOP], self.rng)
            per_group = per_group_at(draft.candidate, accuracy, self.rng) if self.grouped else None
            natural[draft.number] = {"accuracy": accuracy, "per_group": per_group}
        searched = [d for d in self.top if attrs.BASELINE not in d.user_attrs and d.number != self.seeded.continuation]
        if not specials:
            return natural
        if len(searched) < 4:
            raise RuntimeError(f"the seed's search reached the top rung with {len(searched)} searched trials; "
                               "the special ones need 4 (change the seed or the trial count)")
        floor, over = searched[-1], searched[-2]
        collapsed = {g: 0.35 for g in GROUP_COUNTS} if self.grouped else None
        natural[floor.number] = {"accuracy": 0.35, "per_group": collapsed}
        budget = self.task.latency_budget_ms or 1.0
        natural[over.number]["latency"] = latency_result(budget * 1.2, self.fake, self.rng)
        self.seeded.floor_violator, self.seeded.over_budget_final = floor.number, over.number
        pool = searched[:-2]
        by_latency = sorted(pool, key=lambda d: d.user_attrs[attrs.LATENCY]["median_ms"])
        fast, slow = by_latency[0], by_latency[-1]
        best = max(natural[d.number]["accuracy"] for d in self.top if d not in (floor, over))
        for draft, target in ((slow, best + 0.006), (fast, best + 0.002)):
            shape = natural[slow.number]["per_group"]
            if shape is None:
                natural[draft.number]["accuracy"] = target
                continue
            total = sum(GROUP_COUNTS.values())
            mean = sum(shape[g] * n for g, n in GROUP_COUNTS.items()) / total
            natural[draft.number]["per_group"] = {g: a + target - mean for g, a in shape.items()}
        self.seeded.noise_member = slow.number
        return natural

    def _complete(self, specials: bool) -> None:
        """Train the top rung of every finisher and store the top rung's verdict."""
        figures = self._bend(specials)
        for draft in self.top:
            bent = figures[draft.number]
            sha = ""
            if self.seeded.artifact_trial is None and draft.number not in (self.seeded.floor_violator,
                                                                          self.seeded.over_budget_final):
                path = self.out_dir / f"trial_{draft.number}" / "model.onnx"
                path.parent.mkdir(parents=True, exist_ok=True)
                payload = f"seeded artifact of trial {draft.number}: {draft.user_attrs[attrs.CANDIDATE_TEXT]}".encode()
                path.write_bytes(payload)
                sha = hashlib.sha256(payload).hexdigest()
                self.seeded.artifact_trial, self.seeded.artifact_path = draft.number, path
            outcome = self._outcome(draft, TOP, None, latency=bent.get("latency"), per_group=bent["per_group"],
                                    accuracy=bent["accuracy"], sha256=sha)
            self._record(draft, outcome)
            draft.values = record_complete(draft, self.task)
            draft.state = TrialState.COMPLETE
            self.seeded.complete.append(draft.number)

    def write(self, specials: bool = True, test_metrics: bool = True) -> SeededStudy:
        """Finish the top rungs, add every draft to the study, and store test figures of the front."""
        self._complete(specials)
        for waiting in (d for rung in self.parked.values() for d in rung):
            self.seeded.parked.append(waiting.number)
            self.seeded.running.append(waiting.number)
        for draft in self.drafts:
            self.study.add_trial(create_trial(
                state=draft.state, values=draft.values, params=draft.params, distributions=draft.distributions,
                user_attrs=draft.user_attrs,
            ))
        if test_metrics:
            self._store_test_metrics()
        return self.seeded

    def _store_test_metrics(self) -> None:
        """Test-split figures of the front members not dominated within noise (two at most)."""
        trials = self.study.get_trials(deepcopy=False)
        points = points_from_trials(trials, self.spec)
        noise = dominated_within_noise(points, self.spec)
        for point in [p for p in front(points, self.spec) if p.number not in noise][:2]:
            metrics = dict(trials[point.number].user_attrs[attrs.METRICS])
            test = {**metrics, "split": "test", "accuracy": float(metrics["accuracy"]) - 0.01}
            test["scores"] = self.task.score_values(test)
            self.study.set_user_attr(attrs.test_metrics_key(point.number), test)
            self.seeded.test_metrics_trials.append(point.number)


def study_task(space: str) -> Task:
    """The task a seeded study runs: the space's, with the accuracy floor the launcher adds."""
    return get_space(space).task.with_settings(floors={"accuracy": FLOOR})


def create_study(url: str, name: str, space: str, out_dir: Path, *, fake: bool, grouped: bool) -> optuna.Study:
    """A study with the attributes ``search.launch`` writes at creation and after planning."""
    task = study_task(space)
    study = optuna.create_study(storage=url, study_name=name, directions=task.directions)
    plan = make_plan(budget_s=600.0, spent_s=0.0, epoch_s=3.5, overhead_s=6.0, eta=ETA, max_epochs=RUNGS[-1],
                     rungs=RUNGS)
    groups = f"{len(GROUP_COUNTS)} groups" if grouped else "no groups"
    for key, value in {
        attrs.STUDY_SPACE: space, attrs.STUDY_TASK: task.record(), attrs.STUDY_DEVICE_TAG: "fake" if fake else "local",
        attrs.STUDY_LATENCY_BACKEND: "fake" if fake else "local", attrs.STUDY_OUT_DIR: str(out_dir),
        attrs.STUDY_DATA: f"embedded:{space} (seed 0, 2240 validation images, {groups})",
        attrs.STUDY_RUNGS: list(RUNGS), attrs.STUDY_ETA: ETA, attrs.STUDY_PLAN: plan.describe(),
        attrs.STUDY_SPENT_S: 412.5,
    }.items():
        study.set_user_attr(key, value)
    return study


def seed_study(url: str, out_root: Path, name: str, space: str, *, fake: bool, arrivals: int, seed: int,
               specials: bool = True) -> SeededStudy:
    """One study: baselines, ``arrivals`` sampled candidates, the failures and running trials."""
    grouped = get_space(space).task.needs_groups
    out_dir = out_root / name
    seeder = Seeder(create_study(url, name, space, out_dir, fake=fake, grouped=grouped), space, study_task(space),
                    out_dir, fake=fake, seed=seed, grouped=grouped)
    for recipe, candidate in get_space(space).baselines().items():
        seeder.run(seeder.ask(fixed=candidate.to_params(), baseline=recipe))
    for index in range(arrivals):
        seeder.interrupt_next = seeder.interrupt_next or index == arrivals // 2
        seeder.run(seeder.ask())
    seeder.fail_in_training()
    seeder.still_running()
    return seeder.write(specials)


def seed_legacy(url: str, out_root: Path, name: str = "esfair-legacy", seed: int = 2) -> SeededStudy:
    """A study in hwsearch's layout before rungs: ``esfair_score``, no intervals, PRUNED = over budget."""
    task = get_space("esfair").task
    study = optuna.create_study(storage=url, study_name=name, directions=task.directions)
    study.set_user_attr(attrs.STUDY_SPACE, "esfair")
    study.set_user_attr(attrs.STUDY_TASK, {"objectives": [{"name": o.name, "metric": o.metric, "direction": o.direction}
                                                          for o in task.objectives],
                                           "latency_budget_ms": task.latency_budget_ms, "size_budget_mb": 20.0})
    study.set_user_attr(attrs.STUDY_LATENCY_BACKEND, "local")
    rng = random.Random(seed)
    seeded = SeededStudy(name, "esfair")
    budget = task.latency_budget_ms or 1.0
    for index, fixed in enumerate([{"quant": "fp32"}] * 4 + [{"backbone": "efficientnet_lite0", "width": 1.0,
                                                              "resolution": 224, "quant": "int8_dynamic"}] * 2):
        draft = Draft(index, rng, {**fixed, "fairness_method": "none"})
        candidate = get_space("esfair").sample(draft, SampleContext(grouped_data=True))
        params = {k: v for k, v in candidate.to_params().items() if k != "fairness_method"}
        draft.params.pop("fairness_method", None)
        draft.distributions.pop("fairness_method", None)
        latency = latency_result(latency_ms(candidate), False, rng)
        user: dict[str, Any] = {attrs.CANDIDATE: params, attrs.CANDIDATE_TEXT: candidate.describe(),
                                attrs.LATENCY: legacy_latency(latency.to_dict())}
        state, values = TrialState.COMPLETE, None
        if latency.median_ms > budget:
            reason = f"median latency {latency.median_ms:.2f} ms over the {budget:g} ms budget"
            user.update({attrs.FEASIBLE: False, attrs.TRAINED: False, attrs.CONSTRAINT: [latency.median_ms - budget],
                         attrs.INFEASIBLE_REASON: reason})
            state = TrialState.PRUNED if index == 5 else TrialState.COMPLETE
            values = [0.0, 0.0, latency.median_ms] if state == TrialState.COMPLETE else None
            (seeded.stopped.setdefault(0, []) if index == 5 else seeded.screened_out).append(index)
        else:
            accuracy = accuracy_at(candidate, 9, rng)
            metrics = make_metrics(candidate, task, epochs=9, per_group=per_group_at(candidate, accuracy, rng),
                                   accuracy=accuracy, latency=latency, artifact="", sha256="", grouped=True)
            data = metrics.to_dict()
            values = task.objective_values(data)
            user.update({attrs.FEASIBLE: True, attrs.TRAINED: True, attrs.CONSTRAINT: [-1.0],
                         attrs.METRICS: legacy_metrics(data, metrics.scores["esfair"])})
            seeded.complete.append(index)
        study.add_trial(create_trial(state=state, values=values, params=draft.params,
                                     distributions=draft.distributions, user_attrs=user))
    return seeded


def seed_storage(url: str, out_root: Path, prefix: str = "") -> dict[str, SeededStudy]:
    """Seed every study into ``url``, names starting with ``prefix``; returns them by study name.

    ``esfair-demo`` (FAKE latency, everything above), ``esfair-local`` (measured latency, one
    figure under load), ``lpirc-demo`` (no groups; scores lpirc and mnasnet) and ``esfair-legacy``.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = [
        seed_study(url, out_root, f"{prefix}esfair-demo", "esfair", fake=True, arrivals=28, seed=4),
        seed_study(url, out_root, f"{prefix}esfair-local", "esfair", fake=False, arrivals=6, seed=1, specials=False),
        seed_study(url, out_root, f"{prefix}lpirc-demo", "lpirc", fake=True, arrivals=16, seed=0),
        seed_legacy(url, out_root, f"{prefix}esfair-legacy"),
    ]
    return {s.name: s for s in studies}


def append_trial(url: str, name: str, out_root: Path, fixed: dict[str, Any], seed: int) -> int:
    """Run one more candidate of esfair study ``name`` through screening and rung 0 (it then waits
    for competitors, RUNNING); returns its number."""
    study = optuna.load_study(study_name=name, storage=url)
    seeder = Seeder(study, "esfair", study_task("esfair"), out_root / name, fake=True, seed=seed, grouped=True)
    draft = seeder.ask(fixed=fixed)
    seeder.run(draft)
    seeder.write(specials=False, test_metrics=False)
    return draft.number
