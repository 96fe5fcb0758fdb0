"""Use cases, one module per family: bench (measure a running server), swap (check, run, rollback, status, dry
run), verdict (compare, decide, report) and demo. Each CLI command is one call into one of them."""
