"""Shared by the whole suite: pytest's ``pytester``, for the plugin's own tests.

``pytest_plugins`` is only honoured in a conftest pytest reads at start-up,
so it lives here rather than beside the tests that use it.
"""

# An in-process pytester run drops every module first imported during the run
# from sys.modules afterwards. langchain-core keeps global state in modules it
# imports lazily (the configure hooks behind get_usage_metadata_callback live in
# langchain_core.tracers.context), so a later test would get a fresh copy with
# empty state while older modules still point at the dropped one. Importing them
# here, before any pytester run, keeps one copy for the whole session.
import langchain_core.callbacks.manager
import langchain_core.language_models
import langchain_core.output_parsers
import langchain_core.prompts
import langchain_core.runnables
import langchain_core.tracers.context
import langchain_core.tracers.langchain  # noqa: F401

pytest_plugins = ["pytester"]
