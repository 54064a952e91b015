"""Input: the embedded `shapes` dataset, the sentencepiece tokenizer, grain pipelines."""
