"""How a copy is rendered: its header, parts and limits (`copies.py`), dates and times in the
reader's language and the operation's time zone (`formatting.py`)."""
