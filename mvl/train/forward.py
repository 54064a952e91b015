"""The model passes of one step, each computed at most once and shared by objectives.

ITC, ITM, MIM and MLM all need encoder outputs; asking `Forward` for them means the
full-image pass that ITC uses is the same one ITM and MaskVLM's MLM pass reuse. The
cache lives only while the step is traced, so it costs nothing at run time.
"""

from __future__ import annotations

import zlib

import jax

from mvl import mask


class Forward:
    """`params` None: `model` is already bound (inside `Module.init`, mvl/train/state.py),
    so calls go to it directly. `teacher`: images -> the teacher's patch features
    (mvl/targets/teacher.py), or None. `teacher_head`: the state's teacher head (an EMA
    codebook, a centre: mvl/objectives/distill.py), or None. `cache`: encoder outputs
    computed elsewhere ({key: value} from `encoder_outputs`), which the passes below
    return instead of running the encoder (exact gradient accumulation,
    mvl/train/grad_cache.py)."""

    # The cache keys' first element for the tower passes (image, text, single stream):
    # the cut where gradient accumulation caches outputs for batch-coupled objectives.
    ENCODER_PASSES = ("image", "text", "stream")

    def __init__(
        self,
        model,
        params,
        batch,
        masks,
        rng,
        teacher=None,
        train=False,
        teacher_head=None,
        cache=None,
    ):
        self.model, self.params, self.batch, self.masks = model, params, batch, masks
        self._rng = rng
        self.teacher = teacher
        self.teacher_head = teacher_head
        self._cache = dict(cache or {})
        # Training passes get a "dropout" rng, which turns on stochastic depth
        # (model.image.drop_path); evaluation passes none and keeps every block.
        self._train = train and model.config.image.get("drop_path", 0.0) > 0

    @property
    def patch_size(self) -> int:
        return self.model.config.image.patch_size

    def call(self, method: str, *args, part: str | None = None):
        """The model's `method` on `args`; a training pass draws its stochastic-depth
        key by the name of the `part` called (default: the method)."""
        if self.params is None:
            return getattr(self.model, method)(*args)
        name = f"drop_path/{part or method}"
        rngs = {"dropout": self.rng(name)} if self._train else None
        return self.model.apply({"params": self.params}, *args, method=method, rngs=rngs)

    def head(self, attribute: str, *args):
        """Calls an objective's head (the model attribute it registered) on `args`."""
        return self.call("head", attribute, *args, part=attribute)

    def rng(self, name: str):
        """A key for one named random choice, independent of every other name."""
        return jax.random.fold_in(self._rng, zlib.crc32(name.encode()))

    def _once(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def encoder_outputs(self) -> dict:
        """{key: output} of the tower passes computed so far (see `cache`)."""
        return {
            key: value
            for key, value in self._cache.items()
            if isinstance(key, tuple) and key[0] in self.ENCODER_PASSES
        }

    def encoder_output(self, key):
        """The tower pass `key` (a key of `encoder_outputs`), computed on this batch."""
        kind, masked = key
        passes = {
            "image": self.image_tokens,
            "text": self.text_tokens,
            "stream": self.stream_tokens,
        }
        return passes[kind](masked)

    def ids(self, masked: bool = False):
        return self.masks.text_ids if masked else self.batch["text"]

    def text_valid(self, masked: bool = False):
        """bool [B, L]: the caption's positions (not pad or the tokenizer's specials)."""
        return self.model.special.valid(self.ids(masked))

    # Unimodal passes -------------------------------------------------------------
    def image_tokens(self, masked: bool = False):
        """The image encoding; `masked` hides patches as the config says (replace or drop)."""
        patches = self.masks.patches if masked else mask.NO_PATCHES_HIDDEN
        keep = self.masks.image_keep if patches == mask.DROP else None
        hidden = self.masks.image_hidden if patches == mask.REPLACE else None
        return self._once(
            ("image", masked),
            lambda: self.call("encode_image", self.batch["image"], hidden, keep),
        )

    def text_tokens(self, masked: bool = False):
        return self._once(("text", masked), lambda: self.call("encode_text", self.ids(masked)))

    def image_embedding(self, masked: bool = False):
        return self._once(
            ("image_emb", masked), lambda: self.call("embed_image", self.image_tokens(masked))
        )

    def text_embedding(self):
        return self._once(
            "text_emb", lambda: self.call("embed_text", self.text_tokens(), self.ids())
        )

    def logit_scale(self):
        return self._once("logit_scale", lambda: self.call("logit_scale"))

    def stream_tokens(self, masked: bool = True):
        """(text, patch) tokens of the single-stream encoder (MLIM); `masked` hides words
        and patches by [MASK]-embedding replacement; modality dropout always applies."""
        hides = masked and self.masks.patches != mask.NO_PATCHES_HIDDEN
        hidden = self.masks.image_hidden if hides else None
        return self._once(
            ("stream", masked),
            lambda: self.call(
                "encode_stream",
                self.batch["image"],
                self.ids(masked),
                hidden,
                self.masks.keep_text,
                self.masks.keep_image,
            ),
        )

    # Cross-modal passes: one modality (maybe masked) attends to the other, unmasked --
    def fused_image(self, masked_image: bool):
        return self._once(
            ("fused_image", masked_image),
            lambda: self.call(
                "fuse_image", self.image_tokens(masked_image), self.text_tokens(), self.ids()
            ),
        )

    def fused_text(self, masked_text: bool):
        return self._once(
            ("fused_text", masked_text),
            lambda: self.call(
                "fuse_text",
                self.text_tokens(masked_text),
                self.ids(masked_text),
                self.image_tokens(),
            ),
        )

    # Targets from a teacher ----------------------------------------------------------
    def teacher_features(self):
        """The teacher's per-patch features of the full image, with no gradient
        (`validate` has checked that an objective reading them has a teacher)."""
        return self._once("teacher_patches", lambda: self.teacher(self.batch["image"]))
