"""The typed configuration of a search: built once from the command line and the environment,
validated once, then passed whole to everything that runs the search.

Every bad value ends the launcher with one line naming the value and the fix (exit code 2),
before anything is stored. Nothing here imports torch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from evaluators.errors import HwsearchError

ENV_FLEET_TOKEN = "HWSEARCH_FLEET_TOKEN"
MAX_EPOCHS = 9
"""Epochs of the top rung when the plan chooses the rungs."""
DEFAULT_FIRST_RUNG_SHARE = 0.10
"""Most of the budget one candidate's first rung may spend training (``--max-first-rung-share``).
A candidate whose one epoch costs more than a tenth of the budget could not be trained to the
middle rung (3 epochs) without spending a third of it on one model; it is the KD teacher's share
too (:data:`search.context.TEACHER_SHARE`)."""


class ConfigError(HwsearchError):
    """A command-line or environment value is invalid."""


def _positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        relation = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} {value:g} is not a finite number {relation}", f"pass {name} with a value {relation}")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["resolution=32", "epochs=1"]`` -> ``{"resolution": 32, "epochs": 1}``, validated.

    Raises:
        CandidateError: For malformed items or unknown Candidate fields.
    """
    from spaces.candidate import Candidate, CandidateError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CandidateError(f"override {item!r} is not KEY=VALUE (e.g. resolution=64)")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        out[key.strip()] = value
    probe = Candidate(backbone="mobilenetv3_small", width=1.0, resolution=64)
    Candidate.from_params({**probe.to_params(), **out})
    return out


def _floors(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, raw = item.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or not name or not math.isfinite(value):
            raise ConfigError(f"--floor {item!r} is not OBJECTIVE=NUMBER", "pass e.g. --floor fairness=0.2")
        out[name.strip()] = value
    return out


def _rungs(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        rungs = tuple(int(part) for part in text.split(","))
    except ValueError:
        rungs = ()
    if not rungs or any(r < 1 for r in rungs) or list(rungs) != sorted(set(rungs)):
        raise ConfigError(f"--rungs {text!r} is not a rising list of epochs", "pass e.g. --rungs 1,3,9")
    return rungs


def _first_look(text: str | None) -> float | None:
    """``--first-look``: ``None`` for ``auto``, else a share of an epoch in (0, 1]."""
    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        share = float(text)
    except ValueError:
        share = math.nan
    if not (math.isfinite(share) and 0 < share <= 1):
        raise ConfigError(f"--first-look {text!r} is not 'auto' or a share of an epoch in (0, 1]",
                          "pass e.g. --first-look 0.33, --first-look 1 (whole epochs) or --first-look auto")
    return share


@dataclass(frozen=True)
class SearchConfig:
    """Everything one launcher run needs to know, validated.

    Invariants: every number is finite and in range; ``space`` and ``latency`` are registered
    names; ``out_dir`` is absolute; ``overrides`` are valid Candidate fields; ``rungs`` (when set)
    rise strictly.
    """

    space: str
    study: str
    storage_url: str
    out_dir: Path
    timeout_s: float
    trials: int | None
    rungs: tuple[int, ...] | None
    eta: int
    data: str | None
    latency: str
    latency_budget_ms: float | None
    latency_threads: int
    min_accuracy: float | None
    floors: Mapping[str, float]
    eval_batch: int
    pretrained: str | None
    sampler: str
    seed: int
    jobs: int
    backend: str
    ray_address: str | None
    trial_cpus: float
    trial_gpus: float
    baselines: bool
    start_point: bool
    overrides: Mapping[str, Any]
    minority_group: str | None
    train_device: str
    device: str | None
    fleet: str | None
    fleet_listen: str | None
    fleet_token: str | None = field(repr=False)
    fleet_timeout: float
    no_progress: bool
    fleet_ca: str | None = None
    max_first_rung_share: float = DEFAULT_FIRST_RUNG_SHARE
    first_look: float | None = None

    @classmethod
    def from_args(cls, args: Any, environ: Mapping[str, str] | None = None) -> "SearchConfig":
        """Validate parsed ``args`` (``search.cli.build_parser``) and the environment.

        Raises:
            ConfigError: A bad value (one line, naming it and the fix).
            UnknownNameError: An unknown space (the message lists the known ones).
            CandidateError: A bad ``--override``.
        """
        from search.storage import resolve_storage_url
        from spaces.registry import get_space

        env = os.environ if environ is None else environ
        space = get_space(args.space)
        _positive("--timeout", args.timeout)
        _positive("--latency-budget", args.latency_budget)
        _positive("--fleet-timeout", args.fleet_timeout)
        _positive("--trial-cpus", args.trial_cpus)
        _positive("--trial-gpus", args.trial_gpus, allow_zero=True)
        for name, value in (("--trials", args.trials), ("--jobs", args.jobs), ("--latency-threads", args.latency_threads),
                            ("--eval-batch", args.eval_batch)):
            if value is not None and value < 1:
                raise ConfigError(f"{name} {value} must be >= 1", f"pass {name} 1 or more")
        share = getattr(args, "max_first_rung_share", DEFAULT_FIRST_RUNG_SHARE)
        if not (math.isfinite(share) and 0 <= share <= 1):
            raise ConfigError(f"--max-first-rung-share {share:g} is not in [0, 1]",
                              "pass e.g. --max-first-rung-share 0.1 (0 lets a first rung cost any share)")
        first_look = _first_look(getattr(args, "first_look", "auto"))
        if args.eta < 2:
            raise ConfigError(f"--eta {args.eta} must be >= 2", "pass --eta 3 (the top third continues)")
        if args.min_accuracy is not None and not (math.isfinite(args.min_accuracy) and 0 <= args.min_accuracy < 1):
            raise ConfigError(f"--min-accuracy {args.min_accuracy:g} is not in [0, 1)", "pass e.g. --min-accuracy 0.4")
        floors = _floors(args.floor)
        unknown = set(floors) - set(space.task.objective_names)
        if unknown:
            raise ConfigError(f"--floor names unknown objective(s) {', '.join(sorted(unknown))}",
                              f"use one of: {', '.join(space.task.objective_names)}")
        overrides = parse_overrides(args.override)
        quant = overrides.get("quant")
        if quant is not None:
            from evaluators.quantization import SCHEMES

            SCHEMES.get(str(quant))
        if args.pretrained:
            from evaluators.warm_start import WeightsSource

            WeightsSource.from_option(args.pretrained)
        out_dir = Path(args.out).expanduser().resolve()
        return cls(
            space=space.name, study=args.study or space.name,
            storage_url=resolve_storage_url(args.storage, out_dir),
            out_dir=out_dir, timeout_s=float(args.timeout or space.task.default_timeout_s), trials=args.trials,
            rungs=_rungs(args.rungs), eta=args.eta, data=args.data, latency=args.latency,
            latency_budget_ms=args.latency_budget, latency_threads=args.latency_threads,
            min_accuracy=args.min_accuracy, floors=floors, eval_batch=args.eval_batch, pretrained=args.pretrained,
            sampler=args.sampler, seed=args.seed, jobs=args.jobs, backend=args.backend,
            ray_address=args.ray_address, trial_cpus=args.trial_cpus, trial_gpus=args.trial_gpus,
            baselines=args.baselines, start_point=not args.no_start_point, overrides=overrides, minority_group=args.minority_group,
            train_device=args.train_device, device=args.device, fleet=args.fleet, fleet_listen=args.fleet_listen,
            fleet_token=args.fleet_token or env.get(ENV_FLEET_TOKEN) or None,
            fleet_timeout=args.fleet_timeout, no_progress=args.no_progress,
            fleet_ca=getattr(args, "fleet_ca", None), max_first_rung_share=share, first_look=first_look,
        )

    @property
    def fixed_epochs(self) -> int | None:
        """``--override epochs=N``: every candidate trains N epochs in one rung (fixed fidelity)."""
        value = self.overrides.get("epochs")
        return None if value is None else int(value)
