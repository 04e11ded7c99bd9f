"""The pipeline's exit handler: record a run's outcome in the database and post a summary."""
