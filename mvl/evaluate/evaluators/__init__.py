"""mvl's own evaluators, one per module, each registered under its type name."""
