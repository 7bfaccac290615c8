"""Development-only local mail catcher: an SMTP server that keeps messages for reading."""
