"""sandbox stage of the pipeline."""
