"""Training: state, optimizer, the one train_step, and the loop around it."""
