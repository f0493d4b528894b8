"""Shared by the whole suite: pytest's ``pytester``, for the plugin's own tests.

``pytest_plugins`` is only honoured in a conftest pytest reads at start-up,
so it lives here rather than beside the tests that use it.
"""

pytest_plugins = ["pytester"]
