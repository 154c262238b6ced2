"""Command-line interface of ``python -m search.launch``."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.samplers import DEFAULT_SAMPLER, SAMPLERS

DEFAULT_TRIALS = 12


def build_parser() -> argparse.ArgumentParser:
    """The launcher's argument parser (every option explained in ``--help``)."""
    p = argparse.ArgumentParser(
        prog="python -m search.launch",
        description="Hardware-aware search for image classifiers that are Pareto-optimal in accuracy, "
        "group fairness and latency on the target device. Re-running the same command resumes the study.",
    )
    p.add_argument("--space", default="esfair", help="search space name (default: esfair)")
    p.add_argument("--study", help="study name (default: the space name); an existing study is resumed")
    p.add_argument("--storage", help="Optuna storage URL; also env HWSEARCH_STORAGE "
                   "(default: sqlite:///<out>/hwsearch.db)")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                   help=f"total COMPLETE trials the study should reach, counting earlier runs; failed "
                   f"trials do not count and are run again (default: {DEFAULT_TRIALS})")
    p.add_argument("--timeout", type=float, help="stop starting new trials after SEC seconds")
    p.add_argument("--data", help="grouped image folder ROOT/[train|val|test/]<group>/<class>/*, a CSV manifest "
                   "path,label,group[,split], or embedded:esfair (default: the space's embedded data set)")
    p.add_argument("--latency", choices=["local", "fake", "remote"], default="local",
                   help="latency backend: local = onnxruntime on this CPU; remote = the fleet of device agents; "
                   "fake = computed figures for tests, labelled FAKE (default: local)")
    p.add_argument("--latency-budget", type=float, metavar="MS",
                   help="median latency budget in ms; slower candidates are infeasible and never trained "
                   "(default: the space's budget)")
    p.add_argument("--latency-threads", type=int, default=1, help="onnxruntime threads when measuring (default 1)")
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
    p.add_argument("--fleet-timeout", type=float, default=600.0,
                   help="seconds to wait for an agent's measurement before failing the trial (default 600)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar; print one line per finished trial instead (for logs)")
    return p
