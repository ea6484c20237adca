"""analyse stage of the pipeline."""
