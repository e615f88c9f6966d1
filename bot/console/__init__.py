"""The read-only web console for auditors, commanders and admins (aiohttp + Jinja2).

`/console` in a private chat with the bot gives a one-time link (`sessions.ConsoleAuth`); the
link opens a session whose role decides the pages (`app.build_app`). Nothing here imports
Telegram: the handler in `handlers/console.py` turns the command into a call on the service.
"""
