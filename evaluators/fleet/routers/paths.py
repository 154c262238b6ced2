"""Validated path parameters: an id that does not match its pattern is a 422 before any lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from evaluators.fleet.protocol import AGENT_ID_PATTERN, JOB_ID_PATTERN, SHA256_PATTERN

AgentIdPath = Annotated[str, Path(pattern=AGENT_ID_PATTERN, description="agent id")]
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="job id (32 hex digits)")]
Sha256Path = Annotated[str, Path(pattern=SHA256_PATTERN, description="artifact sha256 (64 hex digits)")]
