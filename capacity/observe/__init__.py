"""observe stage of the pipeline."""
