"""Flax linen modules: towers, fusion, heads, and the model that assembles them."""
