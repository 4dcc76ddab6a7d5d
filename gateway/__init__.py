"""The server: settings, app factory, HTTP handling, CLI. The top layer; nothing imports it."""
