"""Reminders to readers: a reading is wanted, and again before its deadline (docs/phrases.md).

``due`` decides from the store what holds now (pure, with the clock passed in); ``mail`` is
the SMTP adapter; ``send`` sends what was never sent and records it.
"""
