"""The hwsearch dashboard: a read-only Streamlit view of the studies in an Optuna RDB storage.

Run it with ``streamlit run dashboard/app.py [-- --storage URL]``. Data shaping lives in pure
modules (:mod:`dashboard.data`, :mod:`dashboard.pareto`, :mod:`dashboard.insight`,
:mod:`dashboard.fleet`), figures in :mod:`dashboard.charts`, storage access in
:mod:`dashboard.storage`; only :mod:`dashboard.app`, :mod:`dashboard.ui` and
:mod:`dashboard.views` import Streamlit. Nothing here imports torch, timm, onnxruntime or the
evaluators' training code.
"""
