"""Running a Kedro pipeline inside a Prefect flow run: the runner, its logs and its report."""
