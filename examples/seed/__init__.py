"""The seed tutorial's programs S2-S7, replayed offline as tests."""
