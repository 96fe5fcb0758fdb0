"""Processes, waits, probes and programs: the floor every other room of host/ stands on (imports no other room)."""
