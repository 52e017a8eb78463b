"""A hostile corpus: member lists, uploads, ZIPs, saved OParl JSON, chat payloads and tampered forms, each with
the German words its refusal must contain (tests/test_hostile.py sends each through the web form and the
command line). Generated in corpus.py rather than kept as files: a 100 000-row list or a ZIP bomb is a few
lines of code but megabytes on disk."""
