"""The test suite, one package per area (importers/, lm/, train/, export/, reliability/, container/,
unit/).

Where things live:
- helpers that tests import are ordinary modules of their area (`tests/<area>/helpers.py`, plus
  `importers/archives.py` and `synth.py`, `train/synth.py`, `reliability/crash_harness.py`) or shared
  ones at this level (`helpers.py`: `run_cli`, `SUBPROCESS_TIMEOUT`; `espeak.py`, `http_server.py`,
  `legacy_runtime.py`); `conftest.py` files hold pytest fixtures only and are never imported;
- a test may skip only when an external tool is missing (KenLM, the legacy runtime wheels, hadolint)
  or the machine cannot provide what it needs (a tmpfs mount); never for our own code;
- no wall-clock assumptions: training tests checkpoint by steps (CHECKPOINT_STEPS, CHECKPOINT_SECS=0),
  tiny models train for a step budget, and timeouts are hang guards (SUBPROCESS_TIMEOUT), not claims.
"""
