"""Request ids, structured logs, Prometheus metrics and the development cost extension."""
