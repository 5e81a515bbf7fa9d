"""When the live harness counts a container as started (tests/live/runner.py): only once its
process runs the container's command, so no health check is exec'd into it before its mounts
are made. Measured on this machine: polling /proc/PID/cmdline of `sh -c '...; exec python3'`
read it empty thousands of times in 150 starts, between one exec and the next."""

from __future__ import annotations

from live.runner import running_the_command

LAUNCHING = [b"ip", b"netns", b"exec"]
SETTING_UP = [b"sh", b"-c", b"mount ...; exec \"$@\""]


def test_a_process_mid_exec_shows_an_empty_cmdline_and_is_not_started_yet():
    assert not running_the_command(True, [b""], LAUNCHING, SETTING_UP)


def test_the_launcher_and_the_setup_shell_are_not_the_command():
    assert not running_the_command(True, LAUNCHING, LAUNCHING, SETTING_UP)
    assert not running_the_command(True, SETTING_UP, LAUNCHING, SETTING_UP)
    assert not running_the_command(False, [b"python", b"app.py"], LAUNCHING, SETTING_UP)


def test_the_command_in_its_namespace_is_started():
    assert running_the_command(True, [b"python", b"/opt/prefect-stack/prefect_guard.py", b"run"],
                               LAUNCHING, SETTING_UP)
