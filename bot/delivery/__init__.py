"""Getting messages to and from Telegram: the durable inbox and outbox, webhook, HTTP transport,
rate limits (the one 429 policy lives in `ratelimit.py` and `outbox.py`), notices, command menu."""
