"""Messages that leave the process (butler app, SMS), written to an outbox in the transaction."""
