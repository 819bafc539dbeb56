"""Errors that outlearn raises for bad input: each names the problem and the fix."""


class OutlearnError(Exception):
    """Base class: a user-facing error whose message names the problem and the fix."""


class ConfigError(OutlearnError):
    """A config has an unknown key, a wrong type or an impossible value."""


class HistoryFileError(OutlearnError):
    """A history file is missing, truncated, corrupt, or of another schema version."""


class CheckpointError(OutlearnError):
    """A checkpoint is from an incompatible config or version."""


class TrainingError(OutlearnError):
    """Training diverged (a loss that is not finite)."""


class ResourceError(ConfigError):
    """A run's estimated memory exceeds what the machine has available."""


class DiskFullError(OutlearnError):
    """The disk filled up while writing an output; finished outputs are kept."""


class RunLockedError(OutlearnError):
    """Another process is running in the same run directory."""


class Stopped(KeyboardInterrupt):
    """Ctrl-C, with what was kept and how to resume (``str(err)``); the CLI prints it and
    exits with 130 as for any Ctrl-C. A KeyboardInterrupt, so whatever catches those
    still does."""
