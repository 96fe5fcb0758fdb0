"""Use cases, one module per family: bench (measure a running server), swap (check, run, rollback), dry_run,
status, verdict (compare, decide, report), judge (the blinded describe verdict), export and demo. Each CLI command
is one call into one of them."""
