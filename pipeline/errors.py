"""Errors users see: each message says what is wrong and names the key, column or file."""


class ConfigError(ValueError):
    """A config key is unknown or its value is bad; the message names the key."""


class InputError(ValueError):
    """An input file is missing or unusable (missing columns, unreadable, empty)."""
