"""The demo's parts: the test rig, the sandbox host of real processes, the bundled camera frames."""
