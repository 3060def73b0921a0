"""The client actions of the lab's benign generators (benign.py, styles.py): a
command run in a client's namespace, counted as done or failed with the reason
logged, and every action in flight ended together when the generator is
stopped (like a user closing the laptop)."""
import subprocess
import threading
from typing import Callable, Protocol

RUNNING: set[subprocess.Popen] = set()
LOCK = threading.Lock()


class Counted(Protocol):
    name: str
    ns: str
    done: int
    failed: int


def run_counted(client: Counted, cmd: list[str], timeout: float, log: Callable[[str], None], env: dict[str, str] | None = None) -> bool:
    """Runs cmd in the client's namespace; True when it exited 0 within timeout."""
    p = subprocess.Popen(["ip", "netns", "exec", client.ns, *cmd], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    with LOCK:
        RUNNING.add(p)
    try:
        _, err = p.communicate(timeout=timeout)
        if p.returncode == 0:
            client.done += 1
            return True
        client.failed += 1
        log(f"{client.name}: {cmd[0]} exited {p.returncode}: {err.decode(errors='replace').strip()[:200]}")
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        client.failed += 1
        log(f"{client.name}: {cmd[0]} timed out")
    finally:
        with LOCK:
            RUNNING.discard(p)
    return False


def terminate_all() -> None:
    """Ends every action in flight (SIGTERM)."""
    with LOCK:
        for p in RUNNING:
            try:
                p.terminate()
            except ProcessLookupError:
                pass
