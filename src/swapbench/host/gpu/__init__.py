"""The GPU as NVML (or nvidia-smi) reports it: device readings, the ledger of a window's VRAM, the sampler."""
