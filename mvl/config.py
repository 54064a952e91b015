"""Configs as code: load `configs/X.py:ARG`, apply `--config.a.b=value` overrides.

ml_collections' own `config_flags` reports an unknown key as a long traceback from
inside flag parsing; mvl wants one line that names the key, so overrides are parsed
here (a few lines) and applied to the locked ConfigDict that `get_config` returns.
"""

from __future__ import annotations

import argparse

import ast
import difflib
import importlib.util
import os

import ml_collections

from mvl.errors import UserError


class ConfigError(UserError, ValueError):
    """A config file, key or value a user must fix; the message names it."""


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads `path/to/config.py[:arg]` by calling its `get_config(arg)`."""
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path!r} (from --config {spec})")
    module_spec = importlib.util.spec_from_file_location("mvl_user_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path} defines no get_config(arg)")
    try:
        config = module.get_config(arg or None)
    except ConfigError as e:  # a config argument it does not accept: name the file
        raise ConfigError(f"--config {spec}: {e}") from None
    config.lock()
    return config


def config_beside(this_file: str, name: str, arg: str | None) -> ml_collections.ConfigDict:
    """The config file `name` next to `this_file`, built with `arg` and unlocked, for a
    composition config to extend (then `lock()` it)."""
    path = os.path.join(os.path.dirname(os.path.abspath(this_file)), name)
    config = load_config(f"{path}:{arg or ''}")
    config.unlock()
    return config


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, str]):
    """Sets each dotted key to its value, parsed with the type the key already has."""
    for dotted_key, raw_value in overrides.items():
        parent, leaf = _resolve_parent(config, dotted_key)
        current = parent[leaf]
        try:
            parent[leaf] = _parse_like(raw_value, current)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"config key {dotted_key!r}: cannot use value {raw_value!r} "
                f"(expected {type(current).__name__}): {e}"
            ) from None
    return config


def command_line(prog: str, doc: str) -> argparse.ArgumentParser:
    """The parser every mvl command starts from (its module docstring as help); add
    arguments, then `parse_command_line`."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str]):
    """(config overrides from --config.a.b=v, the parser's own arguments)."""
    overrides, rest = parse_cli_overrides(argv)
    return overrides, parser.parse_args(rest)


def parse_cli_overrides(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Splits `--config.a.b=v` / `--config.a.b v` arguments from the rest."""
    overrides, rest = {}, []
    it = iter(argv)
    for arg in it:
        if arg.startswith("--config."):
            key_value = arg[len("--config.") :]
            if "=" in key_value:
                key, value = key_value.split("=", 1)
            else:
                key, value = key_value, next(it, None)
                if value is None:
                    raise ConfigError(f"--config.{key} needs a value")
            overrides[key] = value
        else:
            rest.append(arg)
    return overrides, rest


def _resolve_parent(config, dotted_key: str):
    parts = dotted_key.split(".")
    node, walked = config, []
    for part in parts:
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            known = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            hint = difflib.get_close_matches(part, known, n=1)
            where = ".".join(walked) or "the top level"
            suggestion = f"; did you mean {'.'.join(walked + hint[:1])!r}?" if hint else ""
            raise ConfigError(
                f"unknown config key {dotted_key!r}: no {part!r} in {where}{suggestion}"
            )
        walked.append(part)
        parent, node = node, node[part]
    return parent, parts[-1]


def _parse_like(raw: str, current):
    """Parses a command-line string into the type of the value it replaces."""
    if isinstance(current, bool):
        lowered = raw.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError("use true or false")
        return lowered in ("true", "1")
    if isinstance(current, str):
        return raw
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a None-valued key given a plain word
    if isinstance(current, (tuple, list)):
        value = type(current)(value if isinstance(value, (tuple, list)) else (value,))
    return value


# The sizes every config accepts as a bare word (its first argument, or `size=`).
SIZE_NAMES = ("demo", "paper")


def parse_arg(arg: str | None, **declared) -> ml_collections.ConfigDict:
    """The config argument ("demo", "paper,ratio=0.75", "demo,tune") typed by its
    declaration, big_vision-style: each config says what it accepts, with defaults

        args = parse_arg(arg, ratio=0.5, tune=False)   # -> args.size, args.ratio, args.tune

    A bare word is a size (SIZE_NAMES; default "demo") or a declared bool flag (True);
    `key=value` sets a declared key, parsed as its default's type (bool: true/false).
    Anything else raises ConfigError naming every accepted argument, so a typo such as
    `:demoo` or `ration=0.75` stops the run instead of silently running the defaults.
    """
    values = {"size": SIZE_NAMES[0], **declared}
    for item in filter(None, (part.strip() for part in (arg or "").split(","))):
        key, has_value, raw = item.partition("=")
        key = key.strip()
        if not has_value and key in SIZE_NAMES:
            values["size"] = key
        elif not has_value and isinstance(declared.get(key), bool):
            values[key] = True
        elif has_value and key == "size" and raw.strip() in SIZE_NAMES:
            values["size"] = raw.strip()
        elif has_value and key in declared:
            values[key] = _typed_arg(key, raw.strip(), declared[key], declared)
        else:
            raise ConfigError(
                f"config argument {item!r} is not accepted; {accepted_args(declared)}"
            )
    return ml_collections.ConfigDict(values)


def _typed_arg(key: str, raw: str, default, declared: dict):
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError("use true or false")
            return raw.lower() == "true"
        return type(default)(raw)
    except ValueError as e:
        raise ConfigError(
            f"config argument {key}={raw!r} is not a {type(default).__name__} ({e}); "
            f"{accepted_args(declared)}"
        ) from None


def accepted_args(declared: dict) -> str:
    """One line naming what a config accepts (its parse_arg declaration)."""
    parts = [f"a size ({' | '.join(SIZE_NAMES)}, default {SIZE_NAMES[0]})"]
    for key, default in declared.items():
        if isinstance(default, bool):
            parts.append(f"{key} (flag)")
        else:
            parts.append(f"{key}=<{type(default).__name__}> (default {default!r})")
    return "accepted, joined by commas: " + ", ".join(parts)


# Recipes in epochs ---------------------------------------------------------------------
# A paper states its schedule in passes over its dataset and its peak lr per 256 images;
# these link the steps and the lr to batch_size (ml_collections FieldReferences), so
# `--config.batch_size=...` or `--config.epochs=...` on the command line recompute them.
# Setting total_steps, optim.warmup_steps or optim.lr explicitly replaces the link.


def schedule_in_epochs(c, *, epochs: float, num_examples: int, warmup_epochs: float | None = None):
    """total_steps = epochs * data.num_examples // batch_size (and warmup_steps from
    warmup_epochs likewise, when given)."""
    c.epochs = float(epochs)
    c.data.num_examples = int(num_examples)
    c.total_steps = _steps_of(c, c.get_ref("epochs"))
    if warmup_epochs is not None:
        c.optim.warmup_epochs = float(warmup_epochs)
        c.optim.warmup_steps = _steps_of(c, c.optim.get_ref("warmup_epochs"))


def _steps_of(c, epochs_ref):
    return (epochs_ref * c.data.get_ref("num_examples") / c.get_ref("batch_size")).to_int()


def scale_lr_with_batch(c, *, base_lr: float, reference_batch: int = 256):
    """optim.lr = optim.base_lr * batch_size / optim.lr_reference_batch (the linear
    scaling rule MAE and FLIP state their lr with)."""
    c.optim.base_lr = float(base_lr)
    c.optim.lr_reference_batch = int(reference_batch)
    c.optim.lr = (
        c.optim.get_ref("base_lr") * c.get_ref("batch_size") / c.optim.get_ref("lr_reference_batch")
    )


def set_image_tower(c, **values):
    """Sets model.image keys and the same teacher.image keys (an EMA teacher is a copy of
    the student's tower; a frozen one is replaced by its checkpoint's at run start)."""
    c.model.image.update(values)
    c.teacher.image.update({k: v for k, v in values.items() if k in c.teacher.image})


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

    c.data = ml_collections.ConfigDict(
        dict(
            # What to train on (README "Bring your data"): "shapes" (generated,
            # mvl/data/shapes.py); a spec FORMAT:PATH with FORMAT csv, tsv, jsonl,
            # webdataset, array_record (PATH: a file, directory, glob, or several joined
            # by commas) or tfds:NAME[:VERSION]:SPLIT; or "mixture" (data.mixture).
            # Real images are decoded and converted as mvl/data/decode.py says (shorter
            # side resized to image_size, centre crop).
            source="shapes",
            # data.source="mixture": ((spec, weight), ...), e.g.
            # (("csv:/data/a.csv", 3.0), ("webdataset:/data/laion", 1.0)); samples are
            # drawn in proportion to the weights (mvl/data/sources/mixture.py).
            mixture=(),
            # The held-out pairs for evaluation: a spec like data.source (its first
            # eval_size samples). "" = shapes' val split for shapes; for a single real
            # source, its LAST eval_size samples (train uses the rest); a mixture needs
            # one.
            eval_source="",
            # Column (csv, tsv) or field (jsonl) names; open_clip's defaults. Image paths
            # are relative to the table file's directory.
            table=dict(image_key="filepath", caption_key="title"),
            # tfds sources: data_dir ("" = TFDS_DATA_DIR or ~/tensorflow_datasets) and
            # feature names, "/" for nested ones (COCO captions: "captions/text").
            tfds=dict(data_dir="", image_key="image", caption_key="caption"),
            # webdataset tar indexes (offsets of each sample's members) are cached as
            # SHARD.tar.mvl-index.json beside the shard, or here when set.
            index_cache_dir="",
            image_size=image_size,
            max_text_len=max_text_len,
            train_size=1_000_000,  # shapes is generated per index: any size works
            # (real sources use all their samples)
            # The dataset size a recipe's epochs are counted in (the paper's dataset;
            # schedule_in_epochs); only used to derive total_steps and warmup_steps.
            num_examples=1_000_000,
            eval_size=1000,  # held-out pairs for retrieval / zero-shot (see eval_source)
            # Training-image augmentation (mvl/data/augment.py; held-out images are
            # always centre-cropped). augment: light brightness/contrast jitter (mvl's
            # own; no paper uses it). crop: "centre" (the shorter side resized to
            # image_size, centre square) or "random_resized" (Inception-style: a random
            # box of crop_scale x the image's area and aspect ratio in crop_ratio,
            # resized to image_size). flip: random horizontal flip; off for `shapes`,
            # whose captions say left / right (a flip would make them false). Random
            # choices come from (seed, position in the stream): exact on resume.
            augment=True,
            crop="centre",
            crop_scale=(0.08, 1.0),
            crop_ratio=(3 / 4, 4 / 3),
            flip=False,
            # tokenizer_kind "sentencepiece": data.tokenizer is a sentencepiece model
            # ("" = WORKDIR/tokenizer.model, trained from the train captions with
            # vocab_size pieces if missing); "clip_bpe": data.tokenizer must name CLIP's
            # BPE merges file (bpe_simple_vocab_16e6.txt.gz, shipped with open_clip;
            # 49408 ids plus the [MASK] id mvl appends; see mvl/data/clip_bpe.py).
            tokenizer_kind="sentencepiece",
            tokenizer="",
            vocab_size=256,
            tokenizer_captions=20_000,  # captions it trains on (evenly spaced over real data)
            # Broken samples are skipped and counted (data/skipped_samples, and per reason
            # data/skipped/<kind>, kinds in mvl/data/bad_sample.py); this many
            # in a row stop the run, naming the last one (a dataset of junk, or a bug).
            max_skipped_in_a_row=1000,
        )
    )
    c.model = ml_collections.ConfigDict(
        dict(
            image=dict(
                image_size=image_size,
                patch_size=s["patch_size"],
                # Stochastic depth: each block's residual branches are dropped per
                # example with this probability during training (BEiT / MVP: 0.1).
                drop_path=0.0,
                # > 0: each residual branch is scaled by a learned per-channel vector
                # initialised at this value (CaiT / BEiT's layer scale; BEiT-B: 0.1).
                layer_scale=0.0,
                width=s["width"],
                depth=s["image_depth"],
                num_heads=s["heads"],
                mlp_dim=4 * s["width"],
                stem=s["stem"],  # "patch" (ViT's linear embedding) or "conv" (shallow CNN)
                pixel_mean=(0.5, 0.5, 0.5),
                pixel_std=(0.25, 0.25, 0.25),
                pre_norm=False,  # LayerNorm the embedded tokens first (CLIP's ln_pre)
            ),
            text=dict(
                max_len=max_text_len,
                width=s["width"],
                depth=s["text_depth"],
                num_heads=s["heads"],
                mlp_dim=4 * s["width"],
                # CLIP's text tower (imported weights): causal attention, pooled at the
                # last non-pad token (end-of-text); mvl's own: bidirectional, [CLS] first
                causal=False,
                pool="first",  # first | last
            ),
            fusion=dict(depth=s["fusion_depth"], num_heads=s["heads"], mlp_dim=4 * s["width"]),
            pixel_decoder=dict(
                width=s["decoder_width"],
                depth=s["fusion_depth"],
                num_heads=s["heads"],
                mlp_dim=4 * s["decoder_width"],
                cross_attention=True,
            ),
            # MaskCLIP: predicts the teacher's features of hidden patches (shallow [?]).
            feature_decoder=dict(
                width=s["decoder_width"],
                depth=s["fusion_depth"],
                num_heads=s["heads"],
                mlp_dim=4 * s["decoder_width"],
            ),
            # MaskCLIP: text-only transformer between the text tower and the MLM head.
            text_decoder=dict(
                depth=s["text_decoder_depth"], num_heads=s["heads"], mlp_dim=4 * s["width"]
            ),
            # MLIM: one transformer over [text; CNN patch embeddings].
            single_stream=dict(
                width=s["width"],
                depth=s["image_depth"],
                num_heads=s["heads"],
                mlp_dim=4 * s["width"],
            ),
            # MLIM: channels of the first of log2(patch_size) transposed convolutions
            # (halving after each); the paper does not give them [?].
            deconv_decoder=dict(width=s["deconv_width"]),
            embed_dim=s["embed_dim"],
            init_temperature=0.07,
            act="gelu",
            ln_eps=1e-6,
            # compute dtype (float32 | bfloat16); parameters and optimizer state stay float32
            dtype=s.get("dtype", "float32"),
            remat="none",  # recompute blocks in the backward pass: none | full | dots
            # each block stack as one nn.scan: compile time independent of depth
            scan_layers=s.get("scan_layers", False),
        )
    )
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
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    # Per-hardware settings that make the config fit, "key=value,..." under a hardware
    # name (h100_1x1x8, v5e_16x16); applied by mvl.main on that hardware and by
    # mvl.compile for that topology (mvl/fit.py). Empty: the config's own settings.
    c.fit = ml_collections.ConfigDict()
    c.teacher = ml_collections.ConfigDict(
        dict(
            # "frozen": a fixed image tower from `checkpoint` (MVP); "ema": a moving average
            # of the student's image tower, updated every step (MaskCLIP's mean teacher).
            kind="none",
            checkpoint="",  # frozen: a run (workdir) whose image tower becomes the teacher
            momentum=0.996,  # ema: momentum at step 0, cosine to 1 at the end [?]
            # The teacher tower's architecture. frozen: replaced, when the run starts, by
            # what `checkpoint` was saved with (its model.image, act and ln_eps), so any
            # run's image tower or imported CLIP weights work as they are (the patch grids
            # must match); ema: the student's.
            image=dict(c.model.image),
            act="",  # "" = model.act
            ln_eps=0.0,  # 0 = model.ln_eps
        )
    )
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
    c.eval = ml_collections.ConfigDict(
        dict(
            every_steps=s["eval_every"],  # 0 = only at the end
            # A failed evaluation (the checkpoint is saved before it) is one line on
            # stderr, its traceback in WORKDIR/eval_failures.log; then "continue"
            # training, or "stop" (exit 1; rerunning the command resumes). A failed
            # final evaluation always ends the run (exit 1) with its checkpoint saved.
            on_failure="continue",
            batch_size=250,
            num_reconstructions=8,  # images in the PNG grid (needs the `mim` objective)
            held_out_losses=False,  # also report each objective's loss on val batches
            # held-out losses under each of these modality-dropout modes (both, text_only,
            # image_only); modes other than both need a single-stream model (MLIM)
            modalities=("both",),
            # linear probe (optax softmax regression, `steps` full-batch steps) and
            # weighted kNN (`knn_k` neighbours) on the image tower's pooled features
            # ("mean" of the patch tokens, or "cls"), per label task of the held-out set
            probe=dict(enabled=False, pool="mean", steps=300, knn_k=20),
            # > 0: retrieval also re-ranks each query's top k candidates with the ITM
            # head (retrieval_itm/...), when the model has one (ALBEF / MaskVLM protocol)
            itm_rerank_k=0,
            # MLIM's pair matching: average precision of cosine similarity between
            # items (image + text, or one of them under each eval.modalities mode)
            pair_matching=False,
        )
    )
    return c


SIZES = {
    # Sized so the MaskVLM demo trains in minutes on 2 CPU cores (see README).
    "demo": dict(
        total_steps=300,
        batch_size=64,
        image_size=64,
        patch_size=8,
        max_text_len=32,
        width=96,
        image_depth=3,
        text_depth=2,
        fusion_depth=1,
        text_decoder_depth=2,
        deconv_width=32,  # full-resolution convolutions dominate a CPU step: keep them thin
        heads=4,
        decoder_width=96,
        embed_dim=96,
        lr=1e-3,
        warmup_steps=30,
        checkpoint_every=100,
        stem="patch",
        log_every=25,
        eval_every=0,
    ),
    # ViT-B/16-shaped towers at 224 px, 12-layer text, 3-block fusion and decoder. No
    # recipe: each method config sets its paper's batch, schedule, lr, tokenizer and
    # sizes (base_config leaves batch_size, total_steps, lr and warmup_steps None).
    "paper": dict(
        image_size=224,
        patch_size=16,
        max_text_len=77,
        width=768,
        image_depth=12,
        text_depth=12,
        fusion_depth=3,
        text_decoder_depth=4,
        deconv_width=256,
        heads=12,
        decoder_width=768,
        embed_dim=512,
        # Every paper trained in mixed precision (fp16 on GPUs, bf16 on TPUs); mvl
        # computes in bf16 with float32 parameters and optimizer state.
        dtype="bfloat16",
        scan_layers=True,  # a pod-scale compile in minutes rather than tens of minutes
        checkpoint_every=5000,
        stem="patch",
        log_every=100,
        eval_every=10_000,
    ),
}
