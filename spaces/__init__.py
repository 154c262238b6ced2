"""Search spaces: the Candidate contract, the space registry and the built-in spaces.

Pure Python: importing this package loads no torch, onnxruntime, ray or streamlit.
"""

from spaces.candidate import FAIRNESS_METHODS, QUANT_SCHEMES, Candidate, CandidateError, LossMix
from spaces.registries import Registry, UnknownNameError
from spaces.registry import SampleContext, SpaceSpec, UnknownSpaceError, get_space, list_spaces, register_space
from spaces.task import Constraint, Detail, Objective, Task
from spaces import esfair as _esfair, lpirc as _lpirc  # noqa: F401,E402  (register the built-in spaces)

__all__ = [
    "FAIRNESS_METHODS", "QUANT_SCHEMES", "Candidate", "CandidateError", "Constraint", "Detail", "LossMix", "Objective", "Registry",
    "SampleContext", "SpaceSpec", "Task", "UnknownNameError", "UnknownSpaceError", "get_space", "list_spaces",
    "register_space",
]
