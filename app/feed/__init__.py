"""The butler's phone: current assignments (ETag, long-poll), the change feed, and wake-ups."""
