"""The plugin's tests run small suites with pytest's own ``pytester``."""

pytest_plugins = ["pytester"]
