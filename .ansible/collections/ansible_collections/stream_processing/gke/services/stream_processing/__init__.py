"""JobManager and TaskManager services of the stream_processing.gke platform."""
