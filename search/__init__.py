"""Search drivers: the CLI, the Optuna study, executors, export and reports.

Importing this package loads no torch, onnxruntime, ray or streamlit (they load lazily).
"""
