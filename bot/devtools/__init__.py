"""Developer tools that are not part of a deployment: the Bot API sandbox, benchmarks, the demo."""
