"""Search spaces: the Candidate contract, the space registry and the built-in spaces.

Pure Python: importing this package loads no torch, onnxruntime, ray or streamlit.
"""

from spaces.candidate import FAIRNESS_METHODS, QUANT_SCHEMES, Candidate, CandidateError, LossMix
from spaces.registry import SpaceSpec, UnknownSpaceError, get_space, list_spaces, register_space
from spaces.task import Objective, Task
from spaces import esfair as _esfair  # noqa: F401  (registers the built-in space)

__all__ = [
    "FAIRNESS_METHODS", "QUANT_SCHEMES", "Candidate", "CandidateError", "LossMix", "Objective", "SpaceSpec", "Task",
    "UnknownSpaceError", "get_space", "list_spaces", "register_space",
]
