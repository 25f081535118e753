# Two commands on a fresh machine with only Python: `make demo` and `make test`.
# TORCH_SPEC pins the CPU wheel these machines carry; on a CUDA machine pass TORCH_SPEC=torch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0
TRITON_SPEC ?= triton==3.9.0
# Everything else the package, its tests and the demo use (pyproject.toml lists the runtime ones).
DEPS := numpy tqdm opencv-python-headless pycocotools matplotlib tensorboard pybind11 scipy \
	onnx onnxruntime onnxscript pytest hypothesis pytest-benchmark
DEMO_OUT ?= outputs/demo

.PHONY: install test demo clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q setuptools wheel
	$(PIP) install -q "$(TORCH_SPEC)" "$(TRITON_SPEC)" $(DEPS)
	$(PIP) install -q -e . --no-build-isolation --no-deps
	touch $@

test: install
	$(PY) -m pytest -q

demo: install
	$(VENV)/bin/srpose-fast demo --out $(DEMO_OUT)

clean:
	rm -rf $(VENV) build *.egg-info
