"""Executors: how a search runs its trials.

Both backends share one driver loop (:mod:`search.executors.driver`): it claims trials from the
study in the RDB storage (the single source of truth) under a cross-process lock, so several
launchers on one study reach exactly ``--trials`` COMPLETE trials, keeps their heartbeats, tells
their results and runs the callbacks.

- ``local`` (:mod:`search.executors.local`): ``--jobs N`` trials in threads of this process.
- ``ray`` (:mod:`search.executors.ray_executor`): trials as Ray tasks on a cluster; the driver
  samples each candidate, a worker runs the pipeline and returns a picklable result, the driver
  stores it.

Importing this package loads neither torch nor ray.
"""
