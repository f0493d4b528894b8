"""The app reads its API key from the environment when it is imported, as apps do.

A dummy key lets it import; no request ever leaves the machine (fakellm's
network guard is on in every test that uses it).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENAI_API_KEY", "sk-dummy-key-for-tests")
