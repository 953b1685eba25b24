"""The bundled conformance suite that ``pytest --target-url=...`` runs, one module per role.

It lives inside the package so an installed copy runs from any directory; the plugin points
pytest at it (``conformance.plugin``), and its ``conftest.py`` holds the fixtures and the
parametrization, so that nothing of the suite reaches a pytest run that did not ask for it.
"""
