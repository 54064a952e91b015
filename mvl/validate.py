"""Checks a config before anything is built or compiled; each failure names the key and
the rule it breaks (`mvl: error: config <key>=<value>: <rule>`).

The rules are the ones a run would otherwise trip over minutes later, deep inside a
trace: sizes that must divide each other, ratios and probabilities in range, names
from a fixed set. Each part checks its own section: every enabled objective its
section and the encoders and heads it uses (mvl/objectives), the mask its kinds
(mvl/mask); this module runs them all, after importing the config's `imports`, and
nothing is checked again while a step is traced.
"""

from __future__ import annotations

from mvl.config import ConfigError

DTYPES = ("float32", "bfloat16")
ACTIVATIONS = ("gelu", "gelu_tanh", "quick_gelu")


def validate(cfg, num_devices: int | None = None, platform: str | None = None) -> None:
    """Raises ConfigError for the first broken rule. `platform`: the devices' (jax's
    device.platform) when known, for the rules of kernels that run on one platform."""
    from mvl import user_modules

    user_modules.load(cfg)
    for check in (
        _recipe,
        _counts,
        _data,
        _augmentation,
        _optim,
        _model,
        _mask,
        _objectives,
        _teacher,
        _init,
        _checkpoint,
        _eval,
        _mesh_rules,
    ):
        check(cfg)
    if num_devices is not None:
        _mesh(cfg, num_devices)
    _attention(cfg, platform)


def _fail(key: str, value, rule: str):
    raise ConfigError(f"config {key}={value!r}: {rule}")


def _positive(cfg, key: str):
    value = _get(cfg, key)
    if not isinstance(value, int) or value < 1:
        _fail(key, value, "must be a positive integer")


def _in_range(cfg, key: str, low: float, high: float, high_open: bool = False):
    value = _get(cfg, key)
    if not (low <= value < high if high_open else low <= value <= high):
        bracket = ")" if high_open else "]"
        _fail(key, value, f"must be in [{low}, {high}{bracket}")


def _one_of(cfg, key: str, allowed):
    value = _get(cfg, key)
    if value not in allowed:
        _fail(key, value, f"must be one of {', '.join(allowed)}")


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _recipe(cfg):
    """base_config("paper") leaves the recipe unset for each method config to fill."""
    for key in ("batch_size", "total_steps", "optim.lr", "optim.warmup_steps"):
        if _get(cfg, key) is None:
            _fail(key, None, "unset: the config must give its recipe (see mvl/config/base.py)")
    if cfg.get("epochs", 0.0) < 0:
        _fail("epochs", cfg.epochs, "must be >= 0 (0: total_steps is set directly)")


def _augmentation(cfg):
    """Crop, flip and tokenizer keys (.get: configs saved before they existed)."""
    from mvl.data import augment

    augment.validate(cfg)  # crop and flip: the augmentation's own rules
    d = cfg.data
    kind = d.get("tokenizer_kind", "sentencepiece")
    if kind not in ("sentencepiece", "clip_bpe"):
        _fail("data.tokenizer_kind", kind, "must be one of sentencepiece, clip_bpe")
    from mvl.data import clip_bpe

    if kind == "clip_bpe" and d.tokenizer and not clip_bpe.is_clip_bpe(d.tokenizer):
        _fail(
            "data.tokenizer",
            d.tokenizer,
            f"tokenizer_kind clip_bpe needs a CLIP BPE file ({', '.join(clip_bpe.SUFFIXES)})",
        )
    if d.get("num_examples", 1) < 1:
        _fail("data.num_examples", d.num_examples, "must be a positive integer")


def _counts(cfg):
    for key in (
        "total_steps",
        "batch_size",
        "log_every_steps",
        "checkpoint.every_steps",
        "checkpoint.max_to_keep",
        "eval.batch_size",
        "data.image_size",
        "data.max_text_len",
        "data.vocab_size",
        "optim.microbatches",
        "optim.max_skipped_in_a_row",
        "data.max_skipped_in_a_row",
    ):
        _positive(cfg, key)
    if cfg.batch_size % cfg.optim.microbatches:
        _fail(
            "optim.microbatches", cfg.optim.microbatches, f"must divide batch_size {cfg.batch_size}"
        )


def _data(cfg):
    """Source specs name a known format; a mixture has (spec, weight > 0) entries and
    held-out pairs of its own. Files are opened later, when the sources are built."""
    d = cfg.data
    _source_spec("data.source", d.source, allow_mixture=True)
    if d.get("eval_source"):  # .get: absent from configs saved before it existed
        _source_spec("data.eval_source", d.eval_source)
    if d.source != "mixture":
        return
    if not d.mixture:
        _fail("data.mixture", d.mixture, "data.source='mixture' needs ((spec, weight), ...)")
    for entry in d.mixture:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            _fail("data.mixture", entry, "each entry must be a (spec, weight) pair")
        spec, weight = entry
        _source_spec("data.mixture", spec)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            _fail("data.mixture", entry, "weights must be numbers > 0")
    if not d.eval_source:
        _fail("data.eval_source", d.eval_source, "a mixture needs held-out pairs named here")


def _source_spec(key: str, spec, allow_mixture: bool = False):
    from mvl.data import pipeline, sources

    if not isinstance(spec, str):
        _fail(key, spec, "must be a source name or FORMAT:PATH string")
    if spec in pipeline.SOURCES or (allow_mixture and spec == "mixture"):
        return
    try:
        sources.parse_spec(spec)
    except sources.SpecError as e:
        _fail(key, spec, str(e))


def _optim(cfg):
    o = cfg.optim
    if not o.lr > 0:
        _fail("optim.lr", o.lr, "must be > 0")
    from mvl.train.optim import DECAY_RULES

    rule = o.get("weight_decay_applies_to", "kernels")
    if rule not in DECAY_RULES:
        _fail("optim.weight_decay_applies_to", rule, f"must be one of {', '.join(DECAY_RULES)}")
    _in_range(cfg, "optim.b1", 0.0, 1.0, high_open=True)
    _in_range(cfg, "optim.b2", 0.0, 1.0, high_open=True)
    if not o.eps > 0:
        _fail("optim.eps", o.eps, "must be > 0")
    # .get: base_lr and warmup_epochs are absent from configs saved before they existed
    non_negative = ("base_lr", "warmup_epochs", "warmup_steps", "weight_decay")
    for name in non_negative + ("grad_clip_norm", "end_lr_factor"):
        if o.get(name, 0.0) < 0:
            _fail(f"optim.{name}", o[name], "must be >= 0")


def _model(cfg):
    m = cfg.model
    _one_of(cfg, "model.dtype", DTYPES)
    _one_of(cfg, "model.act", ACTIVATIONS)
    _one_of(cfg, "model.text.pool", ("first", "last"))
    from mvl.models.transformer import REMAT_POLICIES

    _one_of(cfg, "model.remat", tuple(REMAT_POLICIES))
    if not 0 <= m.image.get("drop_path", 0.0) < 1:
        _fail("model.image.drop_path", m.image.drop_path, "must be in [0, 1)")
    if m.image.get("layer_scale", 0.0) < 0:
        _fail("model.image.layer_scale", m.image.layer_scale, "must be >= 0 (0 = off)")
    size, patch = m.image.image_size, m.image.patch_size
    if size % patch:
        _fail("model.image.patch_size", patch, f"must divide the image size {size}")
    if cfg.data.max_text_len > m.text.max_len:
        _fail(
            "data.max_text_len",
            cfg.data.max_text_len,
            f"exceeds model.text.max_len {m.text.max_len}",
        )


def _attention(cfg, platform):
    from mvl.models import attention

    broken = attention.check(cfg.model, platform)
    if broken:
        _fail("model.attention", cfg.model.get("attention", "xla"), broken)


def _mask(cfg):
    from mvl import mask

    _as_config_error(mask.validate, cfg)


def _objectives(cfg):
    """Each enabled objective checks its section and the parts it uses."""
    from mvl import objectives

    try:
        enabled = objectives.enabled(cfg.objectives)
    except KeyError as e:
        raise ConfigError(f"config objectives: {e.args[0]}") from None
    if not enabled:
        raise ConfigError("config objectives: no objective has a non-zero weight")
    for name in enabled:
        _as_config_error(objectives.get(name).validate, cfg)
    from mvl.objectives import stages

    stages.validate(cfg)  # objectives.<name>.start_step / start_fraction


def _as_config_error(check, *args):
    """Runs a part's own check (mask, objectives), reporting its failure as a
    ConfigError so mvl.main prints one line."""
    try:
        return check(*args)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _teacher(cfg):
    from mvl.train import teacher_architecture

    _as_config_error(teacher_architecture.validate, cfg, ACTIVATIONS)


def _init(cfg):
    if cfg.init.required and not cfg.init.checkpoint:
        _fail(
            "init.checkpoint",
            cfg.init.checkpoint,
            "this config fine-tunes a pretrained run: set --config.init.checkpoint=WORKDIR",
        )


def _eval(cfg):
    from mvl.evaluate import registry

    if "evals" in cfg:  # configs saved before it: declared when evaluated (legacy_evals)
        registry.validate_sections(cfg.evals)


def _checkpoint(cfg):
    _one_of(cfg, "checkpoint.best_mode", ("max", "min"))
    best = cfg.checkpoint.best_metric
    if best and not best.startswith(("train/", "eval/")):
        _fail(
            "checkpoint.best_metric",
            best,
            "must name a reported metric, starting with train/ or eval/ (e.g. train/loss)",
        )
    if best.startswith("train/") and cfg.checkpoint.every_steps % cfg.log_every_steps:
        _fail(
            "checkpoint.best_metric",
            best,
            f"train/ metrics are reported every log_every_steps={cfg.log_every_steps}: "
            f"checkpoint.every_steps={cfg.checkpoint.every_steps} must be a multiple of it",
        )
    from mvl.evaluate import registry

    if best.startswith("eval/") and not registry.evaluates_periodically(cfg):
        _fail(
            "checkpoint.best_metric",
            best,
            "an eval/ metric needs periodic evaluation: set eval.every_steps",
        )


def _mesh_rules(cfg):
    from mvl.runtime.sharding import rules

    rules(cfg.mesh)


def _mesh(cfg, num_devices: int):
    from mvl.runtime.sharding import mesh_shape

    try:
        data, fsdp, _ = mesh_shape(cfg.mesh, num_devices)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg.batch_size % (data * fsdp):
        _fail(
            "batch_size", cfg.batch_size, f"must be divisible by mesh data x fsdp = {data * fsdp}"
        )
