"""cli stage of the pipeline."""
