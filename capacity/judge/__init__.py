"""judge stage of the pipeline."""
