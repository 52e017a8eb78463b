"""Rules: pure functions and plain data that answer who is who and who may do what.

No Flask, no SQL, no sockets: the web views, the command line, the daemons and the use cases ask here.
"""
