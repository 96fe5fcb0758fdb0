"""swapbench: benchmark a candidate model on a production GPU host, then put production back."""

__version__ = "0.1.0"
