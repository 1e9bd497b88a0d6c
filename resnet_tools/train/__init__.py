"""Training the same network in every framework: lockstep runs and the figures that compare them."""
