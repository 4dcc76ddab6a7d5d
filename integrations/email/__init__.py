"""Email delivery backends chosen by URL: ``smtp://``, ``smtps://``, ``file://`` (the default) and ``console://``.

Importing this package imports no mail library; `email_backend` loads the one its URL needs.
"""

from integrations.email.backends import email_backend
from integrations.email.base import EmailBackend, EmailDeliveryError, OutgoingEmail

__all__ = ["EmailBackend", "EmailDeliveryError", "OutgoingEmail", "email_backend"]
