"""Shared pytest helpers for fer_ros: ROS isolation, child processes, discovery waits.

At import this sets, for the test process and every child it starts:
  ROS_DOMAIN_ID                     random (1..101) unless FER_TEST_ROS_DOMAIN_ID is set
  ROS_AUTOMATIC_DISCOVERY_RANGE     LOCALHOST (no traffic leaves the machine)
  RMW_IMPLEMENTATION                rmw_fastrtps_cpp
  FASTRTPS_DEFAULT_PROFILES_FILE,   config/fastdds_large_images.xml (Fast DDS 2.x reads the first,
  FASTDDS_DEFAULT_PROFILES_FILE     3.x the second)
  AMENT_PREFIX_PATH                 starts with sys.prefix (the venv holding the ROS wheels)
rclpy is imported only by the fixtures that need it, so ROS-free tests run without ROS.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FASTDDS_PROFILE = REPO_ROOT / "config" / "fastdds_large_images.xml"
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", REPO_ROOT.parent / "shared"))


def _ros_test_env() -> dict[str, str]:
    """The ROS environment variables every test process and child gets."""
    domain = os.environ.get("FER_TEST_ROS_DOMAIN_ID") or str(random.SystemRandom().randint(1, 101))
    ament = os.environ.get("AMENT_PREFIX_PATH", "")
    paths = [sys.prefix] + [p for p in ament.split(os.pathsep) if p and p != sys.prefix]
    return {
        "ROS_DOMAIN_ID": domain,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "FASTRTPS_DEFAULT_PROFILES_FILE": str(FASTDDS_PROFILE),
        "FASTDDS_DEFAULT_PROFILES_FILE": str(FASTDDS_PROFILE),
        "AMENT_PREFIX_PATH": os.pathsep.join(paths),
    }


ROS_TEST_ENV = _ros_test_env()
os.environ.update(ROS_TEST_ENV)
os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated in Jazzy; the range above replaces it


def child_env(**overrides: str | None) -> dict[str, str]:
    """A copy of this process's environment for a child; a value of None removes the variable."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def start_python(code: str, *args: str, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> subprocess.Popen[str]:
    """Starts `python -c code args...` (this interpreter) with stdout/stderr captured as text."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env if env is not None else child_env(),
        cwd=str(cwd or REPO_ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_emotion_node(*ros_args: str) -> subprocess.Popen[str]:
    """The emotion node as a child process (stdout/stderr captured as text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "fer_ros.node.emotion_node", "--ros-args", *ros_args],
        env=child_env(), cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS) in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def stop_process(proc: subprocess.Popen[str], timeout: float = 5.0) -> tuple[str, str]:
    """Terminates (then kills) a child if still running; returns its (stdout, stderr)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def pytest_collection_finish(session: pytest.Session) -> None:
    """When test_hri_output.py will run, start building its test-only hri_msgs now, at the
    lowest CPU priority (test/hri_msgs_build.py): it then costs the run almost no time."""
    if any(item.path.name == "test_hri_output.py" for item in session.items):
        from hri_msgs_build import start_background_build

        start_background_build()


@pytest.fixture
def python_child() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Factory fixture: python_child(code, *args, env=None) -> Popen; all are stopped at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def start(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = start_python(code, *args, env=env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)


@dataclass
class RosHarness:
    """An initialised rclpy context with one node and an executor to spin it."""

    context: object
    node: object
    executor: object

    def spin_until(self, predicate: Callable[[], bool], timeout: float,
                   child: subprocess.Popen[str] | None = None) -> bool:
        """Spins until predicate() is true (True) or timeout seconds pass (False).

        If `child` exits meanwhile, fails the test with its stderr.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if child is not None and child.poll() is not None:
                _, err = stop_process(child)
                pytest.fail(f"child process exited with {child.returncode}: {err.strip()[-2000:]}")
            # at most until the deadline: a short wait used as a pace must not last 50 ms
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))
        return predicate()

    def query(self, client: object, request: object, timeout: float = 30.0,
              child: subprocess.Popen[str] | None = None, resend_after: float = 5.0) -> object:
        """The response of a query service (one that may be asked twice, e.g. get_parameters).

        Sent again when no answer comes within ``resend_after`` s: a request sent just as
        discovery completes can lose its reply (the server's reply writer has not matched this
        client yet, a known Fast DDS race), and waiting longer for it never helps.
        """
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            if self.spin_until(future.done, min(resend_after, deadline - time.monotonic()), child):
                return future.result()
            client.remove_pending_request(future)
            if time.monotonic() >= deadline:
                pytest.fail(f"no answer to {type(request).__name__} within {timeout} s")

    def wait_for_subscribers(self, publisher: object, count: int = 1, timeout: float = 15.0,
                             child: subprocess.Popen[str] | None = None) -> None:
        """Waits until `publisher` has matched at least `count` subscriptions (DDS discovery)."""
        if not self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout, child):
            pytest.fail(f"no subscriber matched {publisher.topic_name} within {timeout} s")

    def wait_for_publishers(self, subscription: object, count: int = 1, timeout: float = 15.0,
                            child: subprocess.Popen[str] | None = None) -> None:
        """Waits until `subscription` has matched at least `count` publishers (DDS discovery)."""
        if not self.spin_until(lambda: subscription.get_publisher_count() >= count, timeout, child):
            pytest.fail(f"no publisher matched {subscription.topic_name} within {timeout} s")


@pytest.fixture
def ros() -> Iterator[RosHarness]:
    """A fresh rclpy context + node ('fer_test') + SingleThreadedExecutor, shut down afterwards."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run `make setup`)")
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"fer_test_{os.getpid()}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield RosHarness(context=context, node=node, executor=executor)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.fixture
def shared_models_dir() -> Path:
    """../shared/models (the read-only model mirror); skips the test when it is absent."""
    path = Path(os.environ.get("FER_MODEL_MIRROR", SHARED_DIR / "models"))
    if not path.is_dir():
        pytest.skip(f"model mirror {path} is absent (tests using ../shared need it beside the repo)")
    return path
