"""SMTP: the adapter that sends a reminder by e-mail (smtplib; one message per recipient).

The password is read from ``[reminders] smtp_password_file``; it is never logged.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from pipeline.config import ReminderSettings
from pipeline.errors import ConfigError, DeliveryError


def _password(settings: ReminderSettings) -> str:
    path = settings.smtp_password_file
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"[reminders] smtp_password_file {path}: {exc.strerror or exc}") from exc


def send_mail(settings: ReminderSettings, *, to: str, subject: str, body: str) -> None:
    """Hand one message to the SMTP server; a refusal or a server down is a DeliveryError."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    password = _password(settings)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(
            f"reminder to {to}: SMTP {settings.smtp_host}:{settings.smtp_port}: {exc.__class__.__name__}",
            code="reminder.smtp",
        ) from exc
