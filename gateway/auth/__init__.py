"""Authentication: turn a request's credentials (JWT bearer token, partner API key, or none) into a Principal."""
