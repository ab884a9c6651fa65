"""Test doubles that speak real protocols on loopback (Graph API, Slack, ...).

Not product code: the tests, the demo and the benchmarks start them. Nothing under
``monitor`` outside ``testing`` imports from here.
"""
