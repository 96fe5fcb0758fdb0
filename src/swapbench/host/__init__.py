"""The real host behind core's Host protocol: processes, services, candidates, llama-server, journal, watchdog,
signals, checks, probes and the GPU. Third-party and OS errors become swapbench's own here."""
