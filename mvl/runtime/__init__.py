"""What a run stands on, whatever the method: the device mesh and sharding,
multi-host start-up, checkpoints (with their checksums), one-line errors and the
commands' exit codes, the run's identity and JSON records, per-hardware fit settings.
"""
