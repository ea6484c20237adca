"""Planning: the experiment file and the sequence of stage rates (linear, geometric, adaptive)."""
