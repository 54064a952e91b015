"""python -m mvl.bench --input: both rates and their ratio reported, the pipeline's images
equal the bare decode loop's, JPEG draft decoding matches a full decode, and mvl.compile's
decode rate is the bench's loop. No timing asserts."""

import io
import json

import numpy as np
from PIL import Image

from mvl import bench
from mvl.compile import decode_rate
from mvl.data import decode, decode_limit, pipeline, preprocess
from mvl.perf import input_pipeline


def test_input_bench_reports_both_rates_and_their_ratio(tmp_path):
    out = tmp_path / "input.json"
    argv = ["--input", "synthetic:24", "--batch_size", "4", "--seconds", "0.1", "--rounds", "2"]
    argv += ["--workers", "0", "--processes", "2", "--json", str(out)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    limit = result["decode_limit_images_per_s"]
    assert limit > 0 and result["decode_limit_images_per_s_per_core"] == limit / 2
    assert limit == np.median(result["decode_limit_measurements"])
    assert len(result["decode_limit_measurements"]) == 3  # before each round, after the last
    for which in ("default", "best"):
        rate = result[f"pipeline_{which}_images_per_s"]
        assert rate > 0 and result[f"pipeline_{which}_vs_limit"] == rate / limit
    one = result["one_thread_per_image"]
    assert one["bare_vs_mvl"] == one["bare_decode_ms"] / one["mvl_example_ms"] > 0
    rates = [row["images_per_s"] for row in result["sweep"]]
    assert all(row["images_per_s"] == np.median(row["rounds"]) for row in result["sweep"])
    assert result["pipeline_best_images_per_s"] == max(rates)  # the default is a row too
    assert result["sweep"][0]["settings"] == "trainer default"
    assert (result["samples"], result["image_size"], result["crop"]) == (24, 224, "random_resized")
    assert 40_000 < result["mean_jpeg_bytes"] < 90_000  # COCO-sized photos


def test_input_bench_names_a_bad_spec(capsys):
    assert bench.main(["--input", "synthetic:lots"]) == 2
    assert "synthetic:N needs a positive count" in capsys.readouterr().err


def test_pipeline_images_equal_the_bare_decode(tmp_path, tokenizer_path):
    from mvl.data.tokenizer import Tokenizer

    spec = input_pipeline.write_synthetic_shards(str(tmp_path), 6)
    source = pipeline.make_source(spec, "train", size=0, seed=0, image_size=64)
    dataset = pipeline.make_dataset(
        source,
        Tokenizer(tokenizer_path),
        batch_size=6,
        max_text_len=16,
        seed=0,
        shuffle=False,
        repeat=False,
        image_size=64,
    )
    images = next(iter(dataset))["image"]
    assert images.dtype == np.float32 and images.shape == (6, 64, 64, 3)
    for index, image in enumerate(images):
        reference = decode_limit.bare_decode(source.record(index)[0], 64)
        np.testing.assert_array_equal(image, preprocess.to_unit_float(reference))


def test_draft_decoding_keeps_the_centre_crop():
    """Drafting (JPEG decoded at 1/2 .. 1/8 scale) gives the full decode's crop, up to
    the DCT scaling's own smoothing; a crop 4% off-centre is much further away."""
    for seed in range(3):
        data = decode_limit.photo_like_jpeg(seed)
        full_image = Image.open(io.BytesIO(data)).convert("RGB")
        full = decode.resize_centre_crop(full_image, 64).astype(np.float64)
        drafted = decode.decode_image(data, 64).astype(np.float64)
        shifted = np.asarray(
            full_image.resize((64, 64), Image.Resampling.BICUBIC, box=(77.5, 0, 452.5, 375))
        ).astype(np.float64)
        assert np.abs(drafted - full).mean() < 4  # of 255
        assert np.abs(shifted - full).mean() > 2 * np.abs(drafted - full).mean()


def test_stacked_batches_equal_per_image_scaling():
    rng = np.random.default_rng(0)
    examples = [
        {"image": rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), "text": np.arange(3)}
        for _ in range(3)
    ]
    batch = preprocess.stack_examples(examples)
    want = np.stack([np.asarray(e["image"], np.float32) * np.float32(1 / 255) for e in examples])
    np.testing.assert_array_equal(batch["image"], want)
    mixed = examples[:2] + [{"image": want[2], "text": np.arange(3)}]  # one jittered
    np.testing.assert_array_equal(preprocess.stack_examples(mixed)["image"], want)
    assert batch["text"].shape == (3, 3)


def test_compile_decode_rate_is_the_bench_loop(monkeypatch):
    calls = []
    monkeypatch.setattr(
        decode_limit, "loop_rate", lambda jpegs, size, seconds: calls.append(size) or 123.0
    )
    assert decode_rate.images_per_second(96, 0.01) == 123.0 and calls == [96]
