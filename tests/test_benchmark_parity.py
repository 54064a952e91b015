"""mvl's benchmark metrics against the reference implementations' own numbers on the
same fixed embeddings: CLIP_benchmark's multi-caption recall@K and open_clip's prompt
ensemble + CLIP_benchmark's top-K accuracy. The fixture was made offline with those
packages (tests/fixtures/make_benchmark_fixtures.py); this test needs no torch."""

import os

import numpy as np
import pytest

from mvl.evaluate import benchmark_zeroshot
from mvl.evaluate.multi_caption_retrieval import multi_caption_recall

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "benchmark_reference.npz")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURE))


def test_multi_caption_recall_equals_clip_benchmark(reference):
    got = multi_caption_recall(
        reference["image_emb"], reference["text_emb"], reference["caption_image"], block_size=4
    )
    for k in (1, 5, 10):
        assert got[f"image_to_text/r@{k}"] == pytest.approx(float(reference[f"image_to_text_r{k}"]))
        assert got[f"text_to_image/r@{k}"] == pytest.approx(float(reference[f"text_to_image_r{k}"]))
    # The fixture is informative: neither direction is all hits or all misses at K=1.
    assert 0 < got["image_to_text/r@1"] < 1 and 0 < got["text_to_image/r@1"] < 1


def test_zeroshot_top_k_equals_open_clip_and_clip_benchmark(reference):
    prompt_emb = reference["prompt_emb"]
    names = [f"class{c}" for c in range(12)]
    templates = ["a {}.", "the {}!", "one {}?"]
    prompts = [t.format(n) for n in names for t in templates]
    row = {p: i for i, p in enumerate(prompts)}

    classes = benchmark_zeroshot.ensembled_class_embeddings(
        lambda texts: prompt_emb[[row[t] for t in texts]], names, templates
    )
    np.testing.assert_allclose(classes, reference["zs_classifier"], atol=1e-6)
    got = benchmark_zeroshot.top_k_accuracy(
        reference["zs_image_emb"], classes, reference["zs_labels"], block_size=7
    )
    assert got["top1"] == pytest.approx(float(reference["zs_top1"]))
    assert got["top5"] == pytest.approx(float(reference["zs_top5"]))
    assert 0 < got["top1"] < 1
