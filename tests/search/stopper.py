"""A real launcher-like process for stop-path tests: the real driver, study and stop path, cheap jobs.

``python -m tests.search.stopper URL OUT_DIR [--ray]`` runs a search on study ``stop`` in ``URL``
with cheap jobs (no torch): threads of this process (:class:`tests.search.cheap.CheapSlots`), or
real Ray tasks on a private Ray instance (``--ray``: the real ``RaySlots`` with a cheap task). The
process's real signal handling applies, and it exits with the code ``search.launch`` would.
``HWSEARCH_DEBUG_DISPATCH_DELAY_S`` widens the window between asking a trial and dispatching it.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import optuna

from evaluators.contracts import LatencySettings
from search.executors.jobs import Job
from search.executors.ray_worker import WorkerConfig, WorkerResult
from search.stop import SearchStopped
from search.storage import open_storage
from spaces.candidate import Candidate
from spaces.registry import get_space
from tests.search.cheap import CheapSlots, cheap_driver, cheap_outcome


def cheap_ray_task(config: WorkerConfig, params: dict[str, Any], number: int, rung: Any,
                   checkpoint: bytes | None = None) -> WorkerResult:
    """``run_job_task``'s signature, cheap figures after a short sleep."""
    time.sleep(0.3)
    job = Job(None, Candidate.from_params(params), rung, Path(config.out_dir) / f"trial_{number}", 0.0)
    return WorkerResult(cheap_outcome(job), None, None, {"host": socket.gethostname(), "pid": os.getpid()})


def _ray_slots(out: str) -> Any:
    from search.executors.ray_executor import RaySlots
    from search.executors.ray_session import RayOptions, RaySession

    session = RaySession.connect(RayOptions(trial_cpus=1.0))
    config = WorkerConfig(space="esfair", latency_budget_ms=None, minority_group=None, floors=(), data_spec="",
                          out_dir=out, study_name="stop", storage_url="", latency_backend="fake",
                          latency_options=None, latency_settings=LatencySettings(), seed=0, train_device="cpu",
                          torch_threads=1, driver_host=socket.gethostname())
    return RaySlots(session, config, task=cheap_ray_task), session


def main(url: str, out: str, ray: bool) -> int:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url)
    study = optuna.create_study(study_name="stop", storage=storage, load_if_exists=True,
                                directions=get_space("esfair").task.directions)
    session = None
    slots, session = _ray_slots(out) if ray else (CheapSlots(2, delay_s=0.2), None)
    print("started", flush=True)
    try:
        cheap_driver(study, storage, url, Path(out), cap=None, slots=slots, rungs=(1, 2), eta=2, budget_s=600).run()
    except SearchStopped as exc:
        return exc.exit_code
    finally:
        if session is not None:
            session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], "--ray" in sys.argv[3:]))
