"""textclf."""
