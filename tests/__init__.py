"""ivrkit's tests, laid out like the package: tests/call/ for ivrkit/call, tests/flow/ for
ivrkit/flow, tests/console/ for ivrkit/console, tests/livekit/ for ivrkit/livekit, tests/voice/
for ivrkit/voice, tests/dialpad/ for ivrkit/dialpad, one
test_<module>.py per module; tests/e2e/ runs against a real server with the harness in
tests/stack/.

tests/ and its folders are packages, so one basename can live in two folders
(tests/test_trace.py, tests/livekit/test_trace.py), with one exception: tests/livekit/ has no
__init__.py on purpose. `livekit` is a namespace package, and the e2e harness puts tests/ on
sys.path (to import `stack`); a regular package tests/livekit would then shadow the real
livekit. Without __init__.py pytest imports tests/livekit/test_x.py as `test_x`, so its
basenames must differ from those in tests/e2e/ (the other folder imported that way).
"""
