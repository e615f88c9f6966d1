"""The `daraja bench` benchmarks, one module per benchmark (registered by `bot/cli/bench.py`)."""
