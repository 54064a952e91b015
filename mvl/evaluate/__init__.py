"""Evaluators: zero-shot classification, retrieval, reconstructions; `suite` runs them."""
