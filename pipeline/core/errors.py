"""Errors users see: each message says what is wrong and names the key, column or file."""


class ConfigError(ValueError):
    """A config key is unknown or its value is bad; the message names the key."""


class InputError(ValueError):
    """An input file is missing or unusable (missing columns, unreadable, empty)."""


class StageError(RuntimeError):
    """A stage stopped part-way (e.g. a batch failed on every try); what it wrote is kept for a re-run."""


def yaml_error(source: object, exc: Exception) -> str:
    """One line saying where YAML text from `source` (a file, an override) is broken and why.

    `exc` is a yaml.YAMLError; PyYAML's own message spans several lines and repeats the text.
    """
    mark = getattr(exc, "problem_mark", None)
    reason = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if context and getattr(exc, "problem", None):
        reason = f"{reason} ({context})"
    where = f": line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    return f"{source}{where}: {reason}"
