"""The hwsearch dashboard: a read-only Streamlit view of the studies in an Optuna RDB storage.

Run it with ``streamlit run dashboard/app.py [-- --storage URL]``. Data shaping lives in pure
modules (:mod:`dashboard.info` reads a study's attributes and task record, :mod:`dashboard.data`
frames its trials, :mod:`dashboard.pareto` marks the front computed by :mod:`search.front`,
:mod:`dashboard.study` ties them together, :mod:`dashboard.fidelity`, :mod:`dashboard.summary`,
:mod:`dashboard.detail`, :mod:`dashboard.insight`, :mod:`dashboard.fleet`), figures in
:mod:`dashboard.charts` and :mod:`dashboard.trial_charts`, storage access in
:mod:`dashboard.storage`; only :mod:`dashboard.app`, :mod:`dashboard.ui` and :mod:`dashboard.views`
import Streamlit. Nothing here imports torch, timm, onnxruntime or the evaluators' training code.
"""
