"""Transactional email through an outbox: `outbox.enqueue` writes the email in the caller's transaction,
`delivery.OutboxWorker` sends what was committed."""
