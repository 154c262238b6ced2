"""The fleet: a coordinator (FastAPI over SQL tables) that hands latency jobs to device agents.

Importing this package loads nothing: the coordinator's modules (``app``, ``server``, ``queue``,
``tables``) need the ``search`` extra (FastAPI, SQLAlchemy, pydantic), while ``protocol`` and
``client`` need only the standard library and httpx, so the Raspberry Pi agent uses them too.
"""
