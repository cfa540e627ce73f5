import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from harness import CASTGATE, Gateway, Keys, Sshd, check_record, exclusive, run  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "bulk: moves hundreds of megabytes; make test runs these "
                            "against the release build (the rest against the sanitizer build)")
    config.addinivalue_line("markers", "timing: bounds how long something takes (an echo during an "
                            "attack, a health probe): make test runs these one at a time, after the "
                            "others have run in parallel, so that no other test's load adds to it")
    if not os.path.exists(CASTGATE):
        raise pytest.UsageError(f"castgate binary not found at {CASTGATE}; run make build")


@pytest.fixture
def test_account():
    """The castgate-test account (scripts/test-setup.sh) to this test alone, for a test that sets
    its password or writes into its home directory."""
    with exclusive("castgate-test-account"):
        yield


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> Keys:
    k = Keys(tmp_path_factory.mktemp("keys"))
    r = run(["ssh-keygen", "-y", "-f", str(k.recording)])
    k.recording_pub.write_bytes(r.stdout)
    return k


@pytest.fixture
def sshd(tmp_path, keys):
    server = Sshd(tmp_path, keys.ca_pub)
    yield server
    server.stop()


@pytest.fixture
def gateway_factory(tmp_path, keys):
    """Builds gateways for a test and stops them (with SIGTERM, checking a clean exit) after."""
    made = []

    def make(targets, known_hosts, keys=keys, **kw):
        gw = Gateway(tmp_path, keys, targets, known_hosts, **kw)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        rc = gw.stop()
        if rc not in (0, None, -15) and gw.expect_complete_record:
            pytest.fail(f"castgate exited with {rc}:\n{gw.stderr()[-4000:]}")
        if gw.expect_complete_record:
            check_record(gw)


@pytest.fixture
def gateway(gateway_factory, sshd):
    """A gateway with one OpenSSH target, db1.int, reachable on the shared listener and on a
    listener bound to it."""
    return gateway_factory(
        [{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
        [sshd.known_hosts_line()],
        bound={"db1.int": "db1.int"},
    )
