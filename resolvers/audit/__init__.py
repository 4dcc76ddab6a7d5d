"""The audit log: what every mutation did, for whom and with which outcome (`log.py`)."""
