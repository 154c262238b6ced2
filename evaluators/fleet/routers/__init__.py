"""The coordinator's routers: agents, jobs, artifacts and stats (all under ``/v1``)."""
