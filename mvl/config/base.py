"""`base_config`: the sections every method's config has. Method configs fill
`objectives`, `mask` and `evals`, and add the model parts they build
(mvl/config/model_sections.py)."""

from __future__ import annotations

import ml_collections

from mvl.config.data_section import data_section
from mvl.config.errors import ConfigError
from mvl.config.mesh_section import mesh_section
from mvl.config.model_sections import model_section
from mvl.config.sizes import SIZES
from mvl.config.teacher_section import teacher_section


def base_config(size: str) -> ml_collections.ConfigDict:
    """The keys every mvl config has; method configs fill `objectives` and `mask`.

    `size` is "demo" (a 2-core CPU finishes in minutes on the embedded `shapes` data)
    or "paper": ViT-B/16-shaped towers at 224 px and NO recipe: batch_size, total_steps,
    optim.lr and optim.warmup_steps are None until the method config sets its paper's
    (validate refuses a config that leaves one unset), so no method runs a generic one.
    """
    if size not in SIZES:
        raise ConfigError(f"unknown size {size!r}; use one of {sorted(SIZES)}")
    s = SIZES[size]
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Modules (names or .py paths) imported before validation: they may register
    # objectives and mask kinds of their own (mvl/user_modules.py).
    c.imports = ()
    c.total_steps = s.get("total_steps")
    # The schedule's length in passes over data.num_examples; 0 = total_steps is set
    # directly (the demos). A recipe sets it with schedule_in_epochs, which derives
    # total_steps = epochs * data.num_examples // batch_size.
    c.epochs = 0.0
    c.batch_size = s.get("batch_size")
    image_size = ml_collections.FieldReference(s["image_size"])
    max_text_len = ml_collections.FieldReference(s["max_text_len"])

    c.data = data_section(s, image_size, max_text_len)
    c.model = model_section(s, image_size, max_text_len)
    c.mask = ml_collections.ConfigDict(
        dict(
            # drop=False: hidden patches become a learned mask token (SimMIM, MaskVLM);
            # drop=True: the encoder runs on the visible patches only (MAE, FLIP).
            # kind: none | random | block (aligned block_size squares, MaskVLM) |
            # beit (BEiT's random rectangles of >= min_block_patches, aspect in
            # [block_aspect, 1 / block_aspect]).
            image=dict(
                kind="none",
                ratio=0.0,
                block_size=1,
                drop=False,
                min_block_patches=16,
                block_aspect=0.3,
            ),
            # kind: none | bert. Picked tokens become [MASK] with mask_prob, a random
            # token with random_prob, else stay (BERT's 80/10/10).
            text=dict(kind="none", ratio=0.0, mask_prob=0.8, random_prob=0.1),
            # MLIM's modality-aware masking: per example, heavy image masking with intact
            # text, heavy text masking with intact image, or light masking of both
            # (probabilities in that order); replaces image.ratio and text.ratio.
            modality_aware=dict(
                enabled=False,
                probabilities=(1 / 3, 1 / 3, 1 / 3),
                heavy_ratio=0.8,
                light_ratio=0.15,
            ),
            # MLIM's modality dropout: per example the single-stream encoder sees
            # (text only, image only, both) with these probabilities.
            modality_dropout=dict(probabilities=(0.0, 0.0, 1.0)),
        )
    )
    c.objectives = ml_collections.ConfigDict()
    c.optim = ml_collections.ConfigDict(
        dict(
            # Peak learning rate of the warmup-then-cosine schedule; a recipe stated
            # per 256 images sets it with scale_lr_with_batch (lr = base_lr * batch_size
            # / lr_reference_batch; base_lr 0 = lr given directly).
            lr=s.get("lr"),
            base_lr=0.0,
            lr_reference_batch=256,
            # Linear warmup from 0; a recipe in epochs sets warmup_epochs through
            # schedule_in_epochs (0 = warmup_steps given directly).
            warmup_steps=s.get("warmup_steps"),
            warmup_epochs=0.0,
            # Cosine decay to lr * end_lr_factor at total_steps (MaskVLM / ALBEF: 0.1).
            end_lr_factor=0.0,
            b1=0.9,
            b2=0.98,
            eps=1e-6,
            weight_decay=0.05,
            # Which parameters weight decay applies to (mvl/train/optim.py):
            # "kernels": dense and conv kernels only; biases, LayerNorm scales, token
            #   and position embeddings, [CLS] / mask tokens and the temperature are
            #   spared (FLIP's and MAE's "no decay on bias, norm, cls, pos").
            # "all_but_gains_and_biases": every parameter of 2 or more dimensions
            #   (embeddings and tokens too); spares biases, LayerNorm scales and scalars
            #   (CLIP's "all weights except gains or biases").
            weight_decay_applies_to="kernels",
            grad_clip_norm=1.0,
            # > 1: the batch's gradient is accumulated over this many slices (lax.scan),
            # holding activations for one slice at a time; see mvl/train/step.py
            microbatches=1,
            # A step whose loss or gradient is NaN / inf is skipped (no update); this many
            # in a row halt the run, naming the step and the last checkpoint (1 = halt
            # at the first).
            max_skipped_in_a_row=5,
        )
    )
    c.mesh = mesh_section()
    # Per-hardware settings that make the config fit, "key=value,..." under a hardware
    # name (h100_1x1x8, v5e_16x16); applied by mvl.main on that hardware and by
    # mvl.compile for that topology (mvl/runtime/fit.py). Empty: the config's own settings.
    c.fit = ml_collections.ConfigDict()
    c.teacher = teacher_section()  # a method with a teacher: add_teacher
    c.init = ml_collections.ConfigDict(
        dict(
            checkpoint="",  # a workdir (or checkpoints dir) whose newest params start this run
            strict=True,  # every parameter must be found there; False: take what matches
            # True for stages that only make sense from a pretrained run (fine-tuning):
            # an empty `checkpoint` is then an error, not a silent run from scratch
            required=False,
        )
    )
    c.checkpoint = ml_collections.ConfigDict(
        dict(
            every_steps=s["checkpoint_every"],
            max_to_keep=3,  # the newest N checkpoints are kept ...
            # ... and, when set, the best one by this reported metric, e.g.
            # "eval/retrieval/image_to_text/r@1" or "train/loss" (with an eval/ metric,
            # a checkpoint is also written at every evaluation: the one it scores).
            best_metric="",
            best_mode="max",  # "max" or "min"
        )
    )
    c.log_every_steps = s["log_every"]
    # Every N steps, the gradient norm of each enabled objective's weighted loss alone,
    # logged as train/grad_norm/<objective> (mvl/train/objective_grad_norms.py); costs
    # one extra forward + backward pass per objective on those steps. 0 = off.
    c.objective_grad_norm_every = 0
    c.eval = ml_collections.ConfigDict(
        dict(
            # When each declared evaluator runs (`evals.<name>.every_steps` None = this);
            # 0 = only at the end.
            every_steps=s["eval_every"],
            # A failed evaluation (the checkpoint is saved before it) is one line on
            # stderr, its traceback in WORKDIR/eval_failures.log; then "continue"
            # training, or "stop" (exit 1; rerunning the command resumes). A failed
            # final evaluation always ends the run (exit 1) with its checkpoint saved.
            on_failure="continue",
            batch_size=250,  # held-out rows through the mesh at a time
        )
    )
    # The evaluations a run reports, big_vision style: evals.<name> = dict(type=<a
    # registered evaluator (mvl/evaluate/registry.py)>, every_steps=..., <its options>),
    # declared by the method config with mvl.config.add_eval.
    c.evals = ml_collections.ConfigDict()
    return c
