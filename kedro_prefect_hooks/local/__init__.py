"""Operating local processes for a project: the background worker and the local Prefect server."""
