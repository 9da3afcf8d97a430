"""The form checker's messages in Chinese and English, written together where a problem is found.

A message is a str whose value is the English text (so logs, `flask form import` JSON and tests that
match the English keep working) and which carries .zh and .en; the /admin/forms page shows the one
of the page's language (server/services/form_publish.py)."""


class Said(str):
    """One checker message: str() is the English, .zh the Chinese."""

    def __new__(cls, zh, en):
        text = super().__new__(cls, en)
        text.zh, text.en = zh, en
        return text

    def __reduce__(self):
        return (Said, (self.zh, self.en))


def said(zh, en):
    """A bilingual message."""
    return Said(zh, en)


def zh_of(message):
    return getattr(message, "zh", str(message))


def en_of(message):
    return getattr(message, "en", str(message))


def prefixed(zh, en, message):
    """A message with a prefix in each language ("label " + a problem of the label)."""
    return Said(zh + zh_of(message), en + en_of(message))
