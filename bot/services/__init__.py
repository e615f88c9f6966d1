"""Services: the business rules, independent of Telegram (handlers call these)."""
