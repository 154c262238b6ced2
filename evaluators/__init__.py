"""Evaluators: everything that turns a Candidate into measured Metrics.

Submodules load torch/onnxruntime lazily; importing this package itself loads neither.
"""
