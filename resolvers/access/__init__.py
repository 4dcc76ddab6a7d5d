"""Who a request acts for, and what that principal may see and do."""
