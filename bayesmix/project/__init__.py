"""A project folder: settings, run ledger, fits, the chosen mixture, suggestions and the report.

The CLI's commands (``bayesmix runs|fit|optimise|suggest|report|quickstart``) read and write a
project folder, so every step can be rerun, inspected, and mixed with the Python API:
:class:`Project` knows where each artefact lives and :mod:`bayesmix.project.steps` holds the
steps of the workflow.
"""

from bayesmix.project.project import Project, ProjectSettings

__all__ = ["Project", "ProjectSettings"]
