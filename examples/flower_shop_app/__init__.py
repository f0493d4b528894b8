"""The flower-shop assistant of issue 5 and its tests."""
