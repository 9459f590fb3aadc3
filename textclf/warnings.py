"""textclf's own warning category (tests turn it into errors)."""


class TextClfWarning(UserWarning):
    """A warning textclf emits about data or settings that still allow the run to go on."""
