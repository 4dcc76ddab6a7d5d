"""The audit log in the graph: the extension that records every mutation, and `auditEvents` to read it."""
