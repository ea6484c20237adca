"""size stage of the pipeline."""
