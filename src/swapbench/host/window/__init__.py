"""Window safety: the journal, the lock and the registry of live windows, the watchdog, signals, the supervisor
that hands a window to systemd, the files that never fail a window. It needs no service manager and no GPU."""
