"""Mask: which inputs a step hides, drawn from the step's rng inside jit.

Image masks are bool [B, N] over patches (True = hidden); text masking returns the
corrupted ids plus the positions the loss scores. Every function hides an exact count
per example, so ratios are exact up to rounding and tests can check them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.data import special_tokens


def _hide_lowest(scores: jax.Array, count: jax.Array | int) -> jax.Array:
    """True where a score ranks among the `count` lowest of its row."""
    ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
    count = jnp.asarray(count)
    return ranks < (count[:, None] if count.ndim else count)


def random_patch_mask(rng, batch_size: int, num_patches: int, ratio) -> jax.Array:
    """Hides round(ratio * N) patches per example, uniformly at random.

    `ratio` is one float, or a [B] array of per-example ratios (modality-aware masking).
    """
    if isinstance(ratio, (int, float)):
        count = int(round(ratio * num_patches))
    else:
        count = jnp.round(ratio * num_patches).astype(jnp.int32)
    return _hide_lowest(jax.random.uniform(rng, (batch_size, num_patches)), count)


def block_patch_mask(rng, batch_size: int, grid: int, ratio: float, block: int) -> jax.Array:
    """Hides round(ratio * blocks) aligned `block` x `block` squares of patches.

    MaskVLM masks 60% of the image in 32x32-pixel blocks: with 16-pixel patches that is
    block=2. The grid must be divisible by the block so every block is whole.
    """
    if grid % block:
        raise ValueError(f"patch grid {grid} is not divisible by mask block size {block}")
    blocks_per_side = grid // block
    hidden_blocks = random_patch_mask(rng, batch_size, blocks_per_side**2, ratio)
    hidden_blocks = hidden_blocks.reshape(batch_size, blocks_per_side, 1, blocks_per_side, 1)
    hidden = jnp.broadcast_to(
        hidden_blocks, (batch_size, blocks_per_side, block, blocks_per_side, block)
    )
    return hidden.reshape(batch_size, grid * grid)


def beit_block_mask(
    rng,
    batch_size: int,
    grid: int,
    ratio: float,
    min_patches: int = 16,
    min_aspect: float = 0.3,
    attempts: int = 0,
) -> jax.Array:
    """BEiT's block-wise masking, hiding exactly round(ratio * N) patches per example.

    Rectangles of random area (at least `min_patches`, at most what is still to hide)
    and aspect ratio (log-uniform in [min_aspect, 1 / min_aspect]) are placed at random
    positions; one is kept when it hides at least one new patch without overshooting.
    BEiT loops until the count is reached; inside jit the loop runs a fixed number of
    `attempts` (default 4 per patch to hide) and any shortfall, rare, is made up with
    random single patches so the count stays exact.
    """
    count = int(round(ratio * grid * grid))
    attempts = attempts or 4 * max(count, 1)
    rows, cols = jnp.divmod(jnp.arange(grid * grid), grid)

    def propose(hidden, key):
        area_key, aspect_key, top_key, left_key = jax.random.split(key, 4)
        remaining = count - hidden.sum()
        area = jax.random.uniform(
            area_key, minval=min_patches, maxval=jnp.maximum(min_patches, remaining)
        )
        log_aspect = jax.random.uniform(
            aspect_key, minval=jnp.log(min_aspect), maxval=-jnp.log(min_aspect)
        )
        height = jnp.round(jnp.sqrt(area * jnp.exp(log_aspect))).astype(jnp.int32)
        width = jnp.round(jnp.sqrt(area / jnp.exp(log_aspect))).astype(jnp.int32)
        top = jax.random.randint(top_key, (), 0, jnp.maximum(grid - height + 1, 1))
        left = jax.random.randint(left_key, (), 0, jnp.maximum(grid - width + 1, 1))
        rect = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
        new = (rect & ~hidden).sum()
        fits = (height < grid) & (width < grid) & (new > 0) & (new <= remaining)
        return jnp.where(fits, hidden | rect, hidden), None

    def one_example(key):
        block_key, fill_key = jax.random.split(key)
        hidden, _ = jax.lax.scan(
            propose, jnp.zeros(grid * grid, bool), jax.random.split(block_key, attempts)
        )
        shortfall = count - hidden.sum()
        scores = jnp.where(hidden, 2.0, jax.random.uniform(fill_key, hidden.shape))
        return hidden | _hide_lowest(scores[None], shortfall[None])[0]

    return jax.vmap(one_example)(jax.random.split(rng, batch_size))


IMAGE_MASK_KINDS = ("none", "random", "block", "beit")
TEXT_MASK_KINDS = ("none", "bert")


def image_mask(rng, cfg, batch_size: int, grid: int, ratio=None) -> jax.Array | None:
    """Dispatches on `cfg.kind`; `ratio` ([B], modality-aware masking) replaces cfg.ratio."""
    if cfg.kind == "none":
        return None
    if cfg.kind == "random":
        return random_patch_mask(
            rng, batch_size, grid * grid, cfg.ratio if ratio is None else ratio
        )
    if cfg.kind == "block":
        return block_patch_mask(rng, batch_size, grid, cfg.ratio, cfg.block_size)
    if cfg.kind == "beit":
        return beit_block_mask(
            rng, batch_size, grid, cfg.ratio, cfg.min_block_patches, cfg.block_aspect
        )
    raise ValueError(f"mask.image.kind={cfg.kind!r} is not one of {', '.join(IMAGE_MASK_KINDS)}")


def hidden_count(cfg, grid: int) -> int:
    """How many patches `image_mask` hides per example (static, so dropping can slice)."""
    if cfg.kind in ("random", "beit"):
        return int(round(cfg.ratio * grid * grid))
    if cfg.kind == "block":
        return int(round(cfg.ratio * (grid // cfg.block_size) ** 2)) * cfg.block_size**2
    return 0


def visible_indices(hidden: jax.Array, num_hidden: int) -> jax.Array:
    """[B, N - num_hidden] indices of the visible patches, in ascending (raster) order.

    A stable sort puts False (visible) first and keeps their order, so an encoder that
    runs on these tokens only (MAE, FLIP) and a decoder that scatters them back see
    patches where they belong.
    """
    order = jnp.argsort(hidden, axis=1, stable=True)
    return order[:, : hidden.shape[1] - num_hidden]


def bert_text_mask(
    rng,
    ids: jax.Array,
    ratio,
    vocab_size: int,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
    special: special_tokens.SpecialIds = special_tokens.SENTENCEPIECE,
):
    """BERT masking: picks max(1, round(ratio * n)) of each row's n maskable tokens
    (none where the ratio is 0; `ratio` may be a [B] array of per-example ratios).

    Maskable means a caption token: not pad nor the tokenizer's start / end / class
    tokens (`special`, the tokenizer's ids). Of the picked tokens, `mask_prob` become
    [MASK], `random_prob` a random ordinary token, the rest stay unchanged.
    Returns (corrupted ids, picked positions).
    """
    pick_rng, kind_rng, token_rng = jax.random.split(rng, 3)
    maskable = special.maskable(ids)
    num_maskable = maskable.sum(-1)
    ratio = jnp.broadcast_to(jnp.asarray(ratio, jnp.float32), num_maskable.shape)
    wanted = jnp.maximum(1, jnp.round(ratio * num_maskable))
    count = jnp.where((num_maskable > 0) & (ratio > 0), wanted, 0).astype(jnp.int32)
    scores = jnp.where(maskable, jax.random.uniform(pick_rng, ids.shape), 2.0)
    picked = _hide_lowest(scores, count) & maskable
    kind = jax.random.uniform(kind_rng, ids.shape)
    low, high = special.ordinary_range(vocab_size)
    random_ids = jax.random.randint(token_rng, ids.shape, low, high)
    corrupted = jnp.where(
        kind < mask_prob,
        special.mask,
        jnp.where(kind < mask_prob + random_prob, random_ids, ids),
    )
    return jnp.where(picked, corrupted, ids).astype(ids.dtype), picked


# Modality-aware masking (MLIM): per example, one of these modes, each with its ratios.
MAM_MODES = ("image_heavy", "text_heavy", "light")
# Modality dropout (MLIM): per example, which modalities the single-stream encoder sees.
MDO_MODES = ("text_only", "image_only", "both")


def draw_modes(rng, batch_size: int, probabilities) -> jax.Array:
    """[B] int mode indices drawn independently with the given probabilities."""
    probabilities = jnp.asarray(probabilities, jnp.float32)
    return jax.random.choice(rng, len(probabilities), (batch_size,), p=probabilities)


def modality_aware_ratios(rng, cfg, batch_size: int):
    """(mode [B], image ratio [B], text ratio [B]) of MLIM's modality-aware masking:
    heavy image masking with intact text, heavy text masking with intact image, or light
    masking of both, drawn per example with `cfg.probabilities` (in MAM_MODES order)."""
    mode = draw_modes(rng, batch_size, cfg.probabilities)
    image_ratio = jnp.array([cfg.heavy_ratio, 0.0, cfg.light_ratio])[mode]
    text_ratio = jnp.array([0.0, cfg.heavy_ratio, cfg.light_ratio])[mode]
    return mode, image_ratio, text_ratio


def modality_dropout_enabled(cfg) -> bool:
    return cfg.probabilities[MDO_MODES.index("both")] < 1.0


def check_mask_config(cfg, grid: int) -> None:
    """The rules of the `mask` section; ValueError names the key and the rule.

    mvl/validate.py runs this before anything is built; make_masks runs it too, so a
    mask drawn outside a run (tests, notebooks) is held to the same rules.
    """

    def fail(key, value, rule):
        raise ValueError(f"config mask.{key}={value!r}: {rule}")

    if cfg.image.kind not in IMAGE_MASK_KINDS:
        fail("image.kind", cfg.image.kind, f"must be one of {', '.join(IMAGE_MASK_KINDS)}")
    if cfg.text.kind not in TEXT_MASK_KINDS:
        fail("text.kind", cfg.text.kind, f"must be one of {', '.join(TEXT_MASK_KINDS)}")
    ratios = ("image.ratio", "text.ratio", "text.mask_prob", "text.random_prob")
    ratios += ("modality_aware.heavy_ratio", "modality_aware.light_ratio")
    for key in ratios:
        section, name = key.split(".")
        if not 0.0 <= cfg[section][name] <= 1.0:
            fail(key, cfg[section][name], "must be in [0.0, 1.0]")
    if cfg.text.mask_prob + cfg.text.random_prob > 1:
        fail("text.random_prob", cfg.text.random_prob, "mask_prob + random_prob must be <= 1")
    if cfg.image.kind == "block" and grid % cfg.image.block_size:
        fail("image.block_size", cfg.image.block_size, f"must divide the patch grid {grid}")
    for section, modes in (("modality_aware", MAM_MODES), ("modality_dropout", MDO_MODES)):
        probabilities = tuple(cfg[section].probabilities)
        key = f"{section}.probabilities"
        if len(probabilities) != len(modes) or min(probabilities) < 0:
            fail(key, probabilities, f"must be {len(modes)} probabilities ({', '.join(modes)})")
        if abs(sum(probabilities) - 1.0) > 1e-6:
            fail(key, probabilities, "must sum to 1")
    aware = cfg.modality_aware.enabled
    if aware and (cfg.image.kind != "random" or cfg.image.drop or cfg.text.kind != "bert"):
        fail(
            "modality_aware.enabled",
            aware,
            "needs mask.image.kind='random', mask.image.drop=False and mask.text.kind='bert'",
        )


def make_masks(
    rng,
    cfg,
    batch,
    grid: int,
    vocab_size: int,
    special: special_tokens.SpecialIds = special_tokens.SENTENCEPIECE,
) -> dict:
    """All masks of one step: {"image": [B, N] | None, "image_keep" (when hidden patches
    are dropped rather than replaced), "text_ids", "text_picked"}; with modality-aware
    masking also "mam_mode" [B]; with modality dropout "keep_text" / "keep_image" [B].
    `special`: the tokenizer's ids (which tokens text masking may pick, [MASK]'s id)."""
    check_mask_config(cfg, grid)
    image_rng, text_rng, mam_rng, mdo_rng = jax.random.split(rng, 4)
    batch_size = batch["image"].shape[0]
    masks, image_ratio, text_ratio = {}, None, cfg.text.ratio
    if cfg.modality_aware.enabled:
        masks["mam_mode"], image_ratio, text_ratio = modality_aware_ratios(
            mam_rng, cfg.modality_aware, batch_size
        )
    masks["image"] = image_mask(image_rng, cfg.image, batch_size, grid, image_ratio)
    if cfg.image.drop and masks["image"] is not None:
        masks["image_keep"] = visible_indices(masks["image"], hidden_count(cfg.image, grid))
    if cfg.text.kind == "bert":
        masks["text_ids"], masks["text_picked"] = bert_text_mask(
            text_rng,
            batch["text"],
            text_ratio,
            vocab_size,
            cfg.text.mask_prob,
            cfg.text.random_prob,
            special,
        )
    if modality_dropout_enabled(cfg.modality_dropout):
        mode = draw_modes(mdo_rng, batch_size, cfg.modality_dropout.probabilities)
        masks["keep_text"] = mode != MDO_MODES.index("image_only")
        masks["keep_image"] = mode != MDO_MODES.index("text_only")
    return masks
