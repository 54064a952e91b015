"""The `data` section: what to train on, the held-out pairs, tokenizer, augmentation."""

from __future__ import annotations

import ml_collections


def data_section(s: dict, image_size, max_text_len) -> ml_collections.ConfigDict:
    """`s`: a size (mvl/config/sizes.py); image_size / max_text_len: FieldReferences
    shared with the model's towers."""
    return ml_collections.ConfigDict(
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
