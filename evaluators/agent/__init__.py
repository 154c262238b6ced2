"""The fleet agent: a daemon on the target device that measures latency jobs from the coordinator.

Runs with the base install only (numpy, onnxruntime, httpx): ``pip install '.[agent]'`` on a
Raspberry Pi, then ``python -m evaluators.agent --fleet https://HOST:8765 --ca ca.pem --token
ENROLMENT_TOKEN --device rpi4b``; once enrolled it uses its own credential.
It never imports torch, FastAPI, pydantic or SQLAlchemy, and only ever loads ONNX files.
"""
