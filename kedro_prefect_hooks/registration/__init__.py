"""Registering deployments: which API, what should exist (a pure plan), and bringing the server to it."""
