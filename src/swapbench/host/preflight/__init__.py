"""Phase 0: the contracts a window must meet before anything is touched, and the plan's declared checks (verify
runs them again after restore)."""
