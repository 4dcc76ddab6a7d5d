"""Payment providers: one small interface (`base.py`), a Stripe adapter and an embedded test-mode ledger."""
