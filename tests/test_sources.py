"""Real-data sources (csv, tsv, jsonl, webdataset, array_record, tfds, mixtures): robust
decoding, exact skip counts by kind, training steps from each, held-out splits, config
errors, and the evaluation suite without shapes' labels. Datasets are written on the fly
(tests/planted_data.py) with broken and awkward samples planted among good ones."""

import io
import json
from collections import Counter

import grain
import jax
import numpy as np
import pytest
from PIL import Image

from mvl.config import ConfigError
from mvl.data import decode, pipeline
from mvl.data.bad_sample import SKIP_KINDS, BadSample
from mvl.data.tokenizer import Tokenizer
from mvl.runtime.errors import UserError
from mvl.train.loop import Trainer
from tests import planted_data

SAMPLES = planted_data.planted()
EXPECTED = planted_data.expected_kinds(SAMPLES)
USABLE = sum(s.kind is None for s in SAMPLES)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """spec of each file format -> the PLANTED samples stored in it."""
    root = tmp_path_factory.mktemp("planted")
    specs = {
        fmt: f"{fmt}:" + planted_data.write_table(str(root / fmt), SAMPLES, fmt)
        for fmt in ("csv", "tsv", "jsonl")
    }
    specs["webdataset"] = "webdataset:" + planted_data.write_webdataset(str(root / "wds"), SAMPLES)
    good = [s for s in SAMPLES if s.kind is None][:6]
    specs["eval"] = "csv:" + planted_data.write_table(str(root / "eval"), good, "csv")
    return specs


def kinds_in_a_pass(source, tokenizer_path) -> tuple[Counter, int]:
    dataset = pipeline.make_dataset(
        source,
        Tokenizer(tokenizer_path),
        batch_size=4,
        max_text_len=24,
        seed=0,
        shuffle=False,
        repeat=False,
        drop_remainder=False,
        num_threads=2,
    )
    counts, kept = Counter(), 0
    for batch in dataset:
        kept += len(batch["image"])
        assert batch["image"].shape[1:] == (32, 32, 3) and np.isfinite(batch["image"]).all()
        assert "shape" not in batch and "colour" not in batch  # real data has no labels
        for kind, n in zip(SKIP_KINDS, batch["skipped_kinds"].sum(0)):
            counts[kind] += int(n)
    return +counts, kept


def skips_before_nth_good(kinds: list, seed: int, good: int) -> Counter:
    """The skip kinds the shuffled, repeated stream passes before its `good`-th usable sample."""
    order = grain.MapDataset.range(len(kinds)).shuffle(seed=seed).repeat(None)
    counts, found, position = Counter(), 0, 0
    while found < good:
        kind = kinds[order[position]]
        if kind:
            counts[kind] += 1
        else:
            found += 1
        position += 1
    return counts


def train_and_count(tiny_config, tmp_path, steps=2, **overrides) -> tuple[Trainer, Counter]:
    trainer = Trainer(tiny_config("clip", **overrides), str(tmp_path))
    counts, total = Counter(), 0.0
    for _ in range(steps):
        metrics = jax.device_get(trainer.step(trainer.next_batch()))
        assert np.isfinite(metrics["loss"])
        total += float(metrics["data/skipped_samples"])
        for kind in SKIP_KINDS:
            counts[kind] += int(metrics[f"data/skipped/{kind}"])
    assert total == sum(counts.values())
    return trainer, +counts


# ---------------------------------------------------------------------------- decoding


def planted_sample(name):
    return next(s for s in SAMPLES if s.name == name)


@pytest.mark.parametrize("name", ["cmyk", "rgba", "palette", "grey16", "grey", "tiny", "webp"])
def test_awkward_images_are_converted_to_rgb_at_image_size(name):
    pixels = decode.decode_image(planted_sample(name).image, 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


def test_alpha_is_composited_on_white_and_16_bit_is_scaled_down():
    rgba = decode.decode_image(planted_sample("rgba").image, 32)
    assert (rgba[:, :14] == 255).all()  # the transparent left half
    ramp = decode.decode_image(planted_sample("grey16").image, 0)
    assert ramp.max() == 255 and ramp.min() == 0 and len(np.unique(ramp)) > 200


def test_resize_keeps_the_centre_square():
    image = np.zeros((20, 60, 3), np.uint8)
    image[:, 20:40] = 255  # the centre 20x20 square of a wide image
    encoded = io.BytesIO()
    Image.fromarray(image).save(encoded, format="PNG")
    crop = decode.decode_image(encoded.getvalue(), 10)
    # Bicubic's kernel reaches a pixel past the box, so the edge columns darken slightly.
    assert crop[:, 1:-1].min() == 255 and crop.min() > 200


@pytest.mark.parametrize("name", ["truncated", "garbage"])
def test_broken_images_raise_with_their_kind(name):
    sample = planted_sample(name)
    with pytest.raises(BadSample) as raised:
        decode.decode_image(sample.image, 32)
    assert raised.value.kind == sample.kind


def test_enormous_images_are_skipped(monkeypatch):
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 40 * 40)
    with pytest.raises(BadSample, match="MAX_IMAGE_PIXELS") as raised:
        decode.decode_image(planted_data.GOOD_JPEG, 32)
    assert raised.value.kind == "huge_image"


def test_captions_are_cleaned_truncated_or_rejected():
    assert decode.clean_caption(b"  two\n lines ") == "two lines"
    long = decode.clean_caption(planted_sample("long_caption").caption)
    assert len(long) <= decode.MAX_CAPTION_CHARS and long.endswith("word")
    for raw, kind in (
        (b"caf\xe9", "caption_not_utf8"),
        ("caf\udce9", "caption_not_utf8"),
        ("  ", "empty_caption"),
        (None, "empty_caption"),
    ):
        with pytest.raises(BadSample) as raised:
            decode.clean_caption(raw)
        assert raised.value.kind == kind


# ------------------------------------------------------------------ sources, skip counts


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "webdataset"])
def test_a_pass_over_each_format_counts_every_planted_fault_by_kind(files, fmt, tokenizer_path):
    source = pipeline.make_source(files[fmt], "train", size=0, seed=0, image_size=32)
    assert len(source) == len(SAMPLES)
    assert source.describe(1).startswith(files[fmt].split(":", 1)[1])  # names the file
    counts, kept = kinds_in_a_pass(source, tokenizer_path)
    assert counts == EXPECTED and kept == USABLE


def test_two_processes_read_the_rows_of_one_and_sources_pickle_for_grain_workers(
    tmp_path, tokenizer_path
):
    import pickle

    # Good samples only: a process refills a skipped row from its own later rows, so
    # with broken samples the global batches do depend on the process count.
    good = [s for s in SAMPLES if s.kind is None]
    root = planted_data.write_webdataset(str(tmp_path / "wds"), good)
    source = pipeline.make_source(f"webdataset:{root}", "train", size=0, seed=0, image_size=32)
    assert pickle.loads(pickle.dumps(source)).describe(5) == source.describe(5)

    def batches(rows, index, count):
        return iter(
            pipeline.make_dataset(
                source,
                Tokenizer(tokenizer_path),
                batch_size=rows,
                max_text_len=24,
                seed=0,
                shuffle=True,
                repeat=True,
                process_index=index,
                process_count=count,
                num_threads=2,
            )
        )

    one, two = batches(8, 0, 1), [batches(4, i, 2) for i in range(2)]
    for _ in range(4):  # into the second epoch
        whole, halves = next(one), [next(it) for it in two]
        for key in whole:
            np.testing.assert_array_equal(whole[key], np.concatenate([h[key] for h in halves]))


def test_a_cut_short_shard_is_read_up_to_the_damage_and_a_gzipped_one_is_named(tmp_path):
    root = planted_data.write_webdataset(str(tmp_path / "wds"), SAMPLES[:10], shards=1)
    shard = tmp_path / "wds" / "00000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) * 6 // 10])  # a copy that stopped part-way
    source = pipeline.make_source(f"webdataset:{root}", "train", size=0, seed=0, image_size=32)
    assert 0 < len(source) < 10
    kinds = Counter()
    for i in range(len(source)):
        try:
            source[i]
        except BadSample as e:
            kinds[e.kind] += 1
    # No crash; what the cut leaves half-written is counted (image, or caption member).
    assert set(kinds) <= {"truncated_image", "missing_image", "empty_caption", "bad_record"}
    import gzip

    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "00000.tar").write_bytes(gzip.compress(data))
    with pytest.raises(UserError, match="is not an uncompressed tar"):
        pipeline.make_source(
            f"webdataset:{tmp_path / 'gz'}", "train", size=0, seed=0, image_size=32
        )


def test_webdataset_index_is_cached_and_rebuilt_when_the_shard_changes(files, tmp_path):
    from mvl.data.sources import tar_index

    root = files["webdataset"].split(":", 1)[1]
    shard = f"{root}/00000.tar"
    cached = tar_index.index_path(shard, "")
    assert tar_index.load_or_build(shard) == tar_index.build_index(shard)
    elsewhere = tar_index.index_path(shard, str(tmp_path))
    tar_index.load_or_build(shard, str(tmp_path))
    assert elsewhere.startswith(str(tmp_path)) and cached != elsewhere
    with open(elsewhere) as f:
        assert json.load(f)["stamp"] == tar_index.stamp(shard)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "webdataset"])
def test_training_from_each_format_counts_the_planted_faults_exactly(
    files, fmt, tiny_config, tmp_path
):
    _, counts = train_and_count(
        tiny_config, tmp_path, **{"data.source": files[fmt], "data.eval_source": files["eval"]}
    )
    kinds = [s.kind for s in SAMPLES]
    assert counts == skips_before_nth_good(kinds, 0, 2 * 16)
    assert counts  # two steps of 16 pass broken samples


def test_training_from_mvl_array_record_shards(tmp_path, tiny_config, files, tokenizer_path):
    root, kinds = planted_data.write_array_record(str(tmp_path / "ar"), SAMPLES)
    source = pipeline.make_source(f"array_record:{root}", "train", size=0, seed=0, image_size=32)
    assert (
        source.describe(len(SAMPLES) // 2 + 1) == f"{root}/part1.array_record record 1 "
        f"({SAMPLES[len(SAMPLES) // 2 + 1].name})"
    )
    expected = Counter(k for k in kinds if k)
    assert kinds_in_a_pass(source, tokenizer_path) == (expected, USABLE)
    _, counts = train_and_count(
        tiny_config,
        tmp_path / "run",
        **{"data.source": f"array_record:{root}", "data.eval_source": files["eval"]},
    )
    assert counts == skips_before_nth_good(kinds, 0, 2 * 16)


def test_the_tokenizer_cli_trains_on_a_sample_of_any_source(files, tmp_path, capsys):
    from mvl.data import tokenizer

    out = str(tmp_path / "tok.model")
    tokenizer.main(
        ["--source", files["jsonl"], "--num_captions", "15", "--vocab_size", "60", "--out", out]
    )
    assert "wrote" in capsys.readouterr().out
    trained = Tokenizer(out)
    assert (
        trained.decode(trained.encode("a photo of thing number 3", 24))
        == "a photo of thing number 3"
    )
    # Evenly spaced over the file, broken captions left out.
    source = pipeline.make_source(files["jsonl"], "train", size=0, seed=0, image_size=32)
    sampled = list(tokenizer.captions_from_source(source, 15, spread=True))
    spaced = np.unique(np.linspace(0, len(SAMPLES) - 1, 15).astype(int))
    readable = [i for i in spaced if SAMPLES[i].kind not in ("empty_caption", "caption_not_utf8")]
    assert len(sampled) == len(readable) < len(spaced) and sampled[-1] == "the last good picture"


def test_training_from_a_weighted_mixture(files, tiny_config, tmp_path):
    mixture = ((files["csv"], 3.0), (files["webdataset"], 1.0))
    trainer, counts = train_and_count(
        tiny_config,
        tmp_path,
        **{
            "data.source": "mixture",
            "data.mixture": repr(mixture),
            "data.eval_source": files["eval"],
        },
    )
    source = pipeline.source_for_config(trainer.cfg.data, "train", 0)
    parts = Counter(source.locate(i)[0] for i in range(len(source)))
    assert len(source) == 2 * len(SAMPLES) and abs(parts[0] - 0.75 * len(source)) <= 1  # weights
    kinds = [SAMPLES[source.locate(i)[1]].kind for i in range(len(source))]
    assert counts == skips_before_nth_good(kinds, 0, 2 * 16)
    assert "mixture part webdataset:" in source.describe(
        next(i for i in range(8) if source.locate(i)[0])
    )


def test_the_last_eval_size_samples_are_held_out_without_eval_source(files, tiny_config):
    cfg = tiny_config("clip", **{"data.source": files["csv"], "data.eval_size": "5"})
    train = pipeline.source_for_config(cfg.data, "train", 0)
    held_out = pipeline.source_for_config(cfg.data, "val", 0)
    assert (len(train), len(held_out)) == (len(SAMPLES) - 5, 5)
    assert held_out.describe(0) == train.parent.describe(len(SAMPLES) - 5)


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"data.source": "parquet:/x"}, "data.source='parquet:/x'"),
        ({"data.source": "csv:/does/not/exist.csv"}, "data.source='csv:/does/not/exist.csv'"),
        ({"data.source": "mixture"}, "data.mixture=()"),
        (
            {"data.source": "mixture", "data.mixture": "(('shapes', 0),)"},
            "weights must be numbers > 0",
        ),
        ({"data.source": "mixture", "data.mixture": "(('shapes', 1),)"}, "data.eval_source"),
        ({"data.eval_source": "tsv"}, "data.eval_source='tsv'"),
    ],
)
def test_bad_data_settings_name_the_key(tiny_config, tmp_path, overrides, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Trainer(tiny_config("clip", **overrides), str(tmp_path))


def test_a_table_without_the_configured_columns_names_them(files, tiny_config):
    cfg = tiny_config("clip", **{"data.source": files["csv"], "data.table.caption_key": "text"})
    with pytest.raises(ConfigError, match="no column 'text'.*data.table.caption_key"):
        pipeline.source_for_config(cfg.data, "train", 0)


def test_evaluation_on_real_data_reports_retrieval_and_no_label_tasks(files, tiny_config, tmp_path):
    from mvl.evaluate.suite import EvalSuite

    cfg = tiny_config(
        "clip",
        **{"data.source": files["csv"], "data.eval_source": files["csv"], "data.eval_size": "12"},
    )
    trainer = Trainer(cfg, str(tmp_path))
    suite = EvalSuite(trainer.model, trainer.cfg, trainer.tokenizer, trainer.mesh)
    metrics = suite.run(trainer.state)
    assert "retrieval/image_to_text/r@1" in metrics
    assert not [k for k in metrics if k.startswith(("zeroshot/", "probe/", "pair_matching/"))]
    # 12 samples read, some broken: the held-out set is the usable ones among them.
    usable = sum(s.kind is None for s in SAMPLES[:12])
    assert len(suite.data["image"]) == usable


# ------------------------------------------------------------------------------- tfds


def tiny_tfds_builder(data_dir):
    import tensorflow_datasets as tfds

    class MvlTinyPairs(tfds.core.GeneratorBasedBuilder):
        """COCO-captions-like: an image and a sequence of captions."""

        VERSION = tfds.core.Version("1.0.0")
        # tfds looks for a builder's code beside its package's module; one defined in a
        # test (package `tests`) sends it to importlib_resources, which is not installed.
        __module__ = "__main__"

        def _info(self):
            features = tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "captions": tfds.features.Sequence({"text": tfds.features.Text()}),
                }
            )
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(0, 20),
                "validation": self._generate_examples(20, 26),
            }

        def _generate_examples(self, start, stop):
            for i in range(start, stop):
                size = (3, 5) if i == 4 else (40, 30)  # one image smaller than a patch
                text = "" if i in (2, 9) else f"a noisy picture number {i}"  # 2 empty captions
                yield (
                    i,
                    {
                        "image": np.asarray(planted_data.noise("RGB", size, i)),
                        "captions": [{"text": text}, {"text": "another caption"}],
                    },
                )

    builder = MvlTinyPairs(data_dir=data_dir)
    builder.download_and_prepare(file_format="array_record")
    return builder


def test_training_from_a_tfds_dataset_read_through_data_source(tiny_config, tmp_path):
    tiny_tfds_builder(str(tmp_path / "tfds"))
    settings = {
        "data.source": "tfds:mvl_tiny_pairs:train",
        "data.eval_source": "tfds:mvl_tiny_pairs:validation",
        "data.tfds.data_dir": str(tmp_path / "tfds"),
        "data.tfds.caption_key": "captions/text",
    }
    cfg = tiny_config("clip", **settings)
    source = pipeline.source_for_config(cfg.data, "train", 0)
    assert len(source) == 20 and "tfds mvl_tiny_pairs split train" in source.describe(0)
    kinds = []
    for i in range(len(source)):
        try:
            assert source[i]["image"].shape == (32, 32, 3)
            kinds.append(None)
        except BadSample as e:
            kinds.append(e.kind)
    assert Counter(kinds) == {None: 18, "empty_caption": 2}
    _, counts = train_and_count(tiny_config, tmp_path / "run", **settings)
    assert counts == skips_before_nth_good(kinds, 0, 2 * 16)
    # The converter reads it too (stored JPEG/PNG bytes, first caption of the sequence).
    from mvl.data import convert

    assert (
        convert.main(
            [
                "--from",
                "tfds",
                "--input",
                "mvl_tiny_pairs:train",
                "--output",
                str(tmp_path / "ar"),
                "--tfds_data_dir",
                str(tmp_path / "tfds"),
                "--tfds_caption_key",
                "captions/text",
            ]
        )
        == 0
    )
    with open(tmp_path / "ar" / "convert_report.json") as f:
        report = json.load(f)
    assert (report["written"], report["skipped_by_kind"]) == (18, {"empty_caption": 2})


def karpathy_file(folder, images: int = 12):
    """A Karpathy split JSON: images 0-5 train (two nested under train2014/), 6-7 restval,
    8-11 test; 5 captions each; image 3's file is missing."""
    entries = []
    for i in range(images):
        split = "train" if i < 6 else "restval" if i < 8 else "test"
        nested = "train2014" if i in (0, 1) else ""
        if i != 3:
            pixels = np.full((20, 24, 3), (20 * i, 100, 200 - 15 * i), np.uint8)
            (folder / nested).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(folder / nested / f"im{i}.png")
        sentences = [{"raw": f"picture {i} caption {j}"} for j in range(5)]
        entry = {"filename": f"im{i}.png", "split": split, "sentences": sentences}
        if nested:
            entry["filepath"] = nested
        entries.append(entry)
    path = folder / "dataset_coco.json"
    path.write_text(json.dumps({"images": entries}))
    return path


def test_a_karpathy_split_is_a_training_source_of_every_caption(tmp_path, tiny_config):
    from mvl.data.sources import from_spec

    path = karpathy_file(tmp_path)
    train = from_spec(f"karpathy:{path}", 32)
    assert len(train) == 30  # 6 train images x 5 captions
    both = from_spec(f"karpathy:{path}:train+restval", 32)
    assert len(both) == 40
    image, caption = both.record(36)  # restval image 7's 2nd caption
    assert caption == "picture 7 caption 1" and image[:4] == b"\x89PNG"
    assert both.record(2)[1] == "picture 0 caption 2"  # nested under train2014/
    with pytest.raises(BadSample) as missing:
        both.record(15)  # image 3's file is not there: skipped and counted
    assert missing.value.kind == "missing_image"
    with pytest.raises(UserError, match="no captioned image in splits val"):
        from_spec(f"karpathy:{path}:val", 32)
    with pytest.raises(UserError, match="karpathy:FILE.json"):
        from_spec(f"karpathy:{tmp_path}", 32)
    # a run trains on it; the missing image's 5 captions are skipped and counted
    _, counts = train_and_count(
        tiny_config, tmp_path / "run", steps=3, **{"data.source": f"karpathy:{path}",
                                                  "data.eval_source": f"karpathy:{path}:test"}
    )  # fmt: skip
    assert set(counts) == {"missing_image"} and counts["missing_image"] >= 5  # a full epoch
