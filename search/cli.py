"""Command-line interface of ``python -m search.launch``.

Choices come from the registries (spaces, latency backends, samplers), so a plugin that registers
a space or a backend (``HWSEARCH_PLUGINS``) appears here. Values are only parsed here; they are
validated once, with one-line errors, by :class:`search.config.SearchConfig`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from search.config import DEFAULT_FIRST_RUNG_SHARE
from search.samplers import DEFAULT_SAMPLER, SAMPLERS


def build_parser() -> argparse.ArgumentParser:
    """The launcher's argument parser (every option explained in ``--help``)."""
    from evaluators.latency import LATENCY_BACKENDS
    from spaces.registry import list_spaces

    backends = "; ".join(f"{name} = {LATENCY_BACKENDS.get(name).help}" for name in LATENCY_BACKENDS.names())
    p = argparse.ArgumentParser(
        prog="python -m search.launch",
        description="Hardware-aware search for image classifiers that are Pareto-optimal in accuracy, "
        "group fairness and latency on the target device. Re-running the same command resumes the study.",
    )
    p.add_argument("--space", default="esfair", help=f"search space: {', '.join(list_spaces())} (default: esfair)")
    p.add_argument("--study", help="study name (default: the space name); an existing study is resumed")
    p.add_argument("--storage", help="Optuna storage URL; also env HWSEARCH_STORAGE "
                   "(default: sqlite:///<out>/hwsearch.db)")
    p.add_argument("--timeout", type=float, metavar="SEC",
                   help="wall-clock budget of the study's search in seconds, counting earlier runs of the same "
                   "study (default: the space's, 720 s for esfair); the plan of how many candidates to train at "
                   "which fidelity follows from it")
    p.add_argument("--trials", type=int, metavar="N",
                   help="cap on the candidates the study evaluates, counting earlier runs; failed trials do not "
                   "count and are run again (default: no cap, the time budget decides)")
    p.add_argument("--rungs", metavar="E1,E2,...",
                   help="training epochs at each fidelity rung, e.g. 1,3,9 (default: planned from the budget, "
                   "at most 9 epochs; --override epochs=N trains every candidate N epochs in one rung)")
    p.add_argument("--max-first-rung-share", type=float, default=DEFAULT_FIRST_RUNG_SHARE, metavar="SHARE",
                   help="most of the budget one candidate's first rung may spend training; a probe of its first "
                   "steps stops a costlier one, which is screened out as too costly (default "
                   f"{DEFAULT_FIRST_RUNG_SHARE:g}; 0: no limit; not applied with one rung, e.g. --override epochs=N)")
    p.add_argument("--first-look", metavar="SHARE", default="auto",
                   help="share of an epoch each candidate's first rung trains: 'auto' (1/eta when the training "
                   "split has at least eta x 1000 images, else 1), or a number in (0, 1]; fixed for a study")
    p.add_argument("--eta", type=int, default=3,
                   help="successive-halving factor: the top 1/eta of a rung continues to the next (default 3)")
    p.add_argument("--data", help="image folder ROOT/[train|val|test/][<group>/]<class>/*, a CSV manifest "
                   "path,label[,group][,split], or embedded:<name> (default: the space's embedded data set)")
    p.add_argument("--latency", choices=LATENCY_BACKENDS.names(), default="local",
                   help=f"latency backend: {backends} (default: local)")
    p.add_argument("--latency-budget", type=float, metavar="MS",
                   help="median latency budget in ms; slower candidates are infeasible and never trained "
                   "(default: the space's budget)")
    p.add_argument("--latency-threads", type=int, default=1, help="onnxruntime threads when measuring (default 1)")
    p.add_argument("--min-accuracy", type=float, metavar="ACC",
                   help="accuracy floor on the validation split; a model below it is infeasible whatever its "
                   "other figures (default: chance + 10 points, chance being the majority class's share; 0 disables)")
    p.add_argument("--floor", action="append", default=[], metavar="OBJECTIVE=VALUE",
                   help="a floor on any objective (at least VALUE for a maximised one, at most for a minimised one)")
    p.add_argument("--eval-batch", type=int, default=1, metavar="N",
                   help="deployment batch size the artifacts are evaluated at (default 1, as on a device)")
    p.add_argument("--pretrained", metavar="PATH|imagenet",
                   help="warm-start weights: a file or folder of timm/PyTorch state dicts named after their timm "
                   "variant (e.g. mobilenetv3_small_075.pth), or 'imagenet' for timm's hub download (online "
                   "only); searched as an on/off dimension where weights exist (default: none, nothing downloads)")
    p.add_argument("--sampler", choices=SAMPLERS, default=DEFAULT_SAMPLER,
                   help=f"Optuna sampler (default: {DEFAULT_SAMPLER}, multivariate TPE with constraints)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler, data order and data split (default 0)")
    p.add_argument("--out", type=Path, default=Path("runs"),
                   help="folder for artifacts, the data cache and the default database (default: runs)")
    p.add_argument("--jobs", type=int, default=1,
                   help="trials run in parallel in this process with --backend local (default 1)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where trials run: local = in this process (--jobs at once); ray = as Ray tasks, as many "
                   "at once as the cluster's resources allow (default: local)")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="Ray cluster to join with --backend ray: auto, HOST:PORT or ray://HOST:10001 (default: env "
                   "RAY_ADDRESS, else a private Ray instance on this machine); the cluster's token comes from "
                   "RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH")
    p.add_argument("--trial-cpus", type=float, default=1.0, metavar="N",
                   help="CPUs each Ray trial reserves, also its torch threads (default 1)")
    p.add_argument("--trial-gpus", type=float, default=0.0, metavar="N",
                   help="GPUs each Ray trial reserves (fractions allowed); > 0 trains on CUDA with AMP (default 0)")
    p.add_argument("--no-start-point", action="store_true",
                   help="do not train the space's start point first (a new study trains a plain, cheap recipe "
                   "first and brings it to the top rung; see the space's start_point)")
    p.add_argument("--baselines", action="store_true",
                   help="enqueue the field's hand-designed recipes as the first trials (once per study)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a candidate field for every trial, e.g. --override resolution=32 --override epochs=1 "
                   "(stored in each trial's candidate)")
    p.add_argument("--minority-group", help="group that ESFair's SPD compares with (default: the smallest group)")
    p.add_argument("--train-device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="torch device for training (default: cuda when available, else cpu)")
    p.add_argument("--device", default=None, metavar="TAG",
                   help="target device tag whose agents measure latency with --latency remote (e.g. rpi4b)")
    p.add_argument("--fleet", metavar="URL", help="URL of a running fleet coordinator (--latency remote)")
    p.add_argument("--fleet-listen", metavar="HOST:PORT",
                   help="start an embedded fleet coordinator on HOST:PORT (--latency remote)")
    p.add_argument("--fleet-token", help="fleet token; also env HWSEARCH_FLEET_TOKEN")
    p.add_argument("--fleet-ca", metavar="PATH",
                   help="PEM file of the CA that signed an https:// fleet coordinator's certificate (also env "
                   "HWSEARCH_FLEET_CA; default: the system's CAs)")
    p.add_argument("--fleet-timeout", type=float, default=600.0,
                   help="seconds to wait for an agent's measurement before failing the trial (default 600)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar; print one line per finished trial instead (for logs)")
    return p
