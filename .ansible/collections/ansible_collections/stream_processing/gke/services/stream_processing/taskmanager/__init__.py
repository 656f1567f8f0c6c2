"""TaskManager: runs the tasks the JobManager assigns to its slots."""
