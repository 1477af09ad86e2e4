"""The run path: plan jobs, run each in a worker process, write its record."""
